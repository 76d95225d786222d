# wharf on AWS: the queue and its dead-letter queue, the bucket, the roles,
# the Fargate service, the backfill task, logs, autoscaling and alarms.
# docs/operations.md says how to deploy it, scale it and read the alarms.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40, < 7.0"
    }
  }
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id
  # The S3 key prefix wharf writes under (design §5), with its slash.
  prefix = trimsuffix(var.s3_prefix, "/") == "" ? "" : "${trimsuffix(var.s3_prefix, "/")}/"
  # ECS sends SIGKILL stop_timeout seconds after SIGTERM: leave wharf its
  # whole drain, plus time to exit (design §2, guarantee 6).
  stop_timeout = min(var.drain_timeout_seconds + 15, 120)
  tags         = merge({ app = "wharf" }, var.tags)
}
