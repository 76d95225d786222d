# An example: terraform apply -var-file=example.tfvars
image             = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/wharf@sha256:0000000000000000000000000000000000000000000000000000000000000000"
bucket_name       = "acme-wharf-events"
warehouse_dialect = "redshift"
# A Secrets Manager secret or an SSM parameter (SecureString), by ARN.
warehouse_dsn_secret_arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:wharf/warehouse-dsn-AbCdEf"
mongo_uri_secret_arn     = "arn:aws:ssm:eu-west-1:123456789012:parameter/wharf/mongo-uri"
subnet_ids               = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
security_group_ids       = ["sg-0123456789abcdef0"]
# Measured: one task's wharf_deleted_messages_total rate while it drains a backlog.
task_events_per_second     = 1000
acceptable_latency_seconds = 300
table_freshness_minutes = {
  page_views    = 15
  actions_taken = 15
  orders        = 60
  signups       = 240
}
