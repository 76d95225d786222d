# wharf on AWS: the queue and its dead-letter queue, the bucket, the roles,
# the Fargate service, the backfill task, logs, autoscaling and alarms.
# docs/operations.md says how to deploy it, scale it and read the alarms.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 6.8.0 is the first to accept max_message_size up to 1048576 (SQS's
      # 1 MiB, 2025); earlier ones refuse the queue. Within 6.x,
      # data.aws_region's name is deprecated for region.
      version = ">= 6.8.0, < 7.0.0"
    }
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.region
  account_id = data.aws_caller_identity.current.account_id
  # The S3 key prefix wharf writes under (design §5), with its slash.
  prefix = trimsuffix(var.s3_prefix, "/") == "" ? "" : "${trimsuffix(var.s3_prefix, "/")}/"
  # ECS sends SIGKILL stop_timeout seconds after SIGTERM: leave wharf its
  # whole drain, plus time to exit (design §2, guarantee 6).
  stop_timeout = min(var.drain_timeout_seconds + 15, 120)
  tags         = merge({ app = "wharf" }, var.tags)
}
