output "queue_url" {
  description = "Where applications send events (WHARF_SQS_QUEUE_URL)."
  value       = aws_sqs_queue.main.id
}

output "dlq_url" {
  description = "SQS's dead-letter queue."
  value       = aws_sqs_queue.dlq.id
}

output "queue_arn" {
  description = "The queue's ARN: for a producer's IAM policy (sqs:SendMessage) or an SNS subscription."
  value       = aws_sqs_queue.main.arn
}

output "dlq_arn" {
  description = "SQS's dead-letter queue's ARN (docs/operations.md#alarm-dlq-not-empty)."
  value       = aws_sqs_queue.dlq.arn
}

output "bucket" {
  description = "The bucket wharf writes Parquet files, dead letters and checkpoints to (WHARF_S3_BUCKET)."
  value       = aws_s3_bucket.data.bucket
}

output "bucket_arn" {
  description = "The bucket's ARN."
  value       = aws_s3_bucket.data.arn
}

output "ecr_repository_url" {
  description = "Where to push the image (create_ecr_repository = true); null otherwise."
  value       = one(aws_ecr_repository.wharf[*].repository_url)
}

output "redshift_copy_role_arn" {
  description = "Attach this role to the Redshift cluster (or workgroup); wharf passes it to COPY (WHARF_WAREHOUSE_IAM_ROLE)."
  value       = aws_iam_role.redshift_copy.arn
}

output "task_role_arn" {
  value = aws_iam_role.task.arn
}

output "service_name" {
  value = aws_ecs_service.serve.name
}

output "cluster_arn" {
  value = local.cluster_arn
}

output "backfill_task_definition" {
  value = aws_ecs_task_definition.backfill.arn
}

output "log_group" {
  value = aws_cloudwatch_log_group.wharf.name
}

output "alarm_topic_arn" {
  value = local.alarm_topic
}

output "backfill_run_task_example" {
  description = "One shard of a backfill; run it for i = 0..N-1 (docs/operations.md)."
  value       = "aws ecs run-task --cluster ${local.cluster_arn} --launch-type FARGATE --task-definition ${aws_ecs_task_definition.backfill.family} --network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.subnet_ids)}],securityGroups=[${join(",", var.security_group_ids)}],assignPublicIp=DISABLED}' --overrides '{\"containerOverrides\":[{\"name\":\"wharf\",\"command\":[\"backfill\",\"--table\",\"TABLE\",\"--shard\",\"0/8\",\"--job\",\"JOB\"]}]}'"
}
