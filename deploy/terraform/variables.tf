variable "name" {
  description = "Name of every resource, and the prefix of their names."
  type        = string
  default     = "wharf"
}

variable "image" {
  description = "The wharf image (deploy/Dockerfile), by digest: ACCOUNT.dkr.ecr.REGION.amazonaws.com/wharf@sha256:..."
  type        = string
}

variable "bucket_name" {
  description = "The S3 bucket for Parquet files, dead letters and backfill checkpoints (created here)."
  type        = string
}

variable "s3_prefix" {
  description = "The key prefix wharf writes under (WHARF_S3_PREFIX)."
  type        = string
  default     = "events/"
}

variable "queue_visibility_timeout_seconds" {
  description = "The queue's visibility timeout; wharf extends held messages at half of it."
  type        = number
  default     = 120
}

variable "queue_retention_seconds" {
  description = "How long SQS keeps a message nobody deleted (the longest outage wharf can catch up from). The maximum, 14 days."
  type        = number
  default     = 1209600
}

variable "max_receive_count" {
  description = "Receives after which SQS moves a message to the dead-letter queue. wharf itself dead-letters bad input to S3 at once, so a message reaches the DLQ only when wharf kept failing on it (crash loops, an S3 or Mongo outage longer than this many visibility timeouts)."
  type        = number
  default     = 10
}

variable "drain_timeout_seconds" {
  description = "WHARF_DRAIN_TIMEOUT: how long wharf flushes and deletes after SIGTERM. stopTimeout is set 15 s above it (120 s at most)."
  type        = number
  default     = 25
  validation {
    condition     = var.drain_timeout_seconds > 0 && var.drain_timeout_seconds <= 105
    error_message = "drain_timeout_seconds must be 1..105, so that stopTimeout (drain + 15 s) stays within ECS's 120 s."
  }
}

variable "warehouse_dialect" {
  description = "WHARF_WAREHOUSE_DIALECT: redshift or postgres. No default, as in wharf: loading into the wrong kind of warehouse fails late."
  type        = string
  validation {
    condition     = contains(["redshift", "postgres"], var.warehouse_dialect)
    error_message = "warehouse_dialect must be redshift or postgres."
  }
}

variable "warehouse_schema" {
  description = "WHARF_WAREHOUSE_SCHEMA."
  type        = string
  default     = "public"
}

variable "warehouse_dsn_secret_arn" {
  description = "The warehouse DSN (WHARF_WAREHOUSE_DSN): the ARN of a Secrets Manager secret (optionally with :json-key:: after it) or of an SSM Parameter Store parameter (a SecureString). Read by the execution role at task start, never by wharf."
  type        = string
  validation {
    condition     = can(regex("^arn:[^:]+:(secretsmanager:[^:]*:[0-9]+:secret:|ssm:[^:]*:[0-9]+:parameter/)", var.warehouse_dsn_secret_arn))
    error_message = "warehouse_dsn_secret_arn must be the ARN of a Secrets Manager secret (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME) or of an SSM parameter (arn:aws:ssm:REGION:ACCOUNT:parameter/NAME)."
  }
}

variable "mongo_uri_secret_arn" {
  description = "The Mongo URI (WHARF_MONGO_URI), as warehouse_dsn_secret_arn: a Secrets Manager secret or an SSM parameter ARN; empty to run without raw writes."
  type        = string
  default     = ""
  validation {
    condition     = var.mongo_uri_secret_arn == "" || can(regex("^arn:[^:]+:(secretsmanager:[^:]*:[0-9]+:secret:|ssm:[^:]*:[0-9]+:parameter/)", var.mongo_uri_secret_arn))
    error_message = "mongo_uri_secret_arn must be empty, or the ARN of a Secrets Manager secret or of an SSM parameter."
  }
}

variable "replay_key_secret_arn" {
  description = "deadletter.replay_key (WHARF_DEADLETTER_REPLAY_KEY), the key that signs the wharf.* attributes of replayed dead letters, as warehouse_dsn_secret_arn: a Secrets Manager secret or an SSM parameter ARN. Empty: serve ignores every wharf.* attribute, and wharf deadletter replay refuses to send."
  type        = string
  default     = ""
  validation {
    condition     = var.replay_key_secret_arn == "" || can(regex("^arn:[^:]+:(secretsmanager:[^:]*:[0-9]+:secret:|ssm:[^:]*:[0-9]+:parameter/)", var.replay_key_secret_arn))
    error_message = "replay_key_secret_arn must be empty, or the ARN of a Secrets Manager secret or of an SSM parameter."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the secrets or SecureString parameters above; the execution role may decrypt with them, through Secrets Manager and SSM only. Empty when they use the AWS-managed keys (aws/secretsmanager, aws/ssm)."
  type        = list(string)
  default     = []
}

variable "warehouse_max_connections" {
  description = "WHARF_WAREHOUSE_MAX_CONNECTIONS: the warehouse connection pool of each task (serve and backfill). The warehouse sees up to this many from each task: keep max_tasks × deployment_maximum_percent/100 × it, plus the backfill shards', under its connection limit (Redshift: 500)."
  type        = number
  default     = 8
  validation {
    condition     = var.warehouse_max_connections >= 1 && var.warehouse_max_connections <= 100 && floor(var.warehouse_max_connections) == var.warehouse_max_connections
    error_message = "warehouse_max_connections must be a whole number, 1..100."
  }
}

variable "mongo_database" {
  description = "WHARF_MONGO_DATABASE."
  type        = string
  default     = "growth"
}

variable "load_interval" {
  description = "WHARF_WAREHOUSE_LOAD_INTERVAL."
  type        = string
  default     = "5m"
}

variable "extra_environment" {
  description = "More WHARF_* variables for both task definitions, such as WHARF_BATCH_MAX_AGE. Not WHARF_SQS_MAX_IN_FLIGHT (derived from max_tasks) nor WHARF_WAREHOUSE_MAX_CONNECTIONS (warehouse_max_connections)."
  type        = map(string)
  default     = {}
  validation {
    condition     = !contains(keys(var.extra_environment), "WHARF_SQS_MAX_IN_FLIGHT") && !contains(keys(var.extra_environment), "WHARF_WAREHOUSE_MAX_CONNECTIONS")
    error_message = "extra_environment must not set WHARF_SQS_MAX_IN_FLIGHT (Terraform derives it from max_tasks and sqs_in_flight_budget) or WHARF_WAREHOUSE_MAX_CONNECTIONS (set warehouse_max_connections)."
  }
}

variable "cluster_arn" {
  description = "The ECS cluster to run in; empty creates one."
  type        = string
  default     = ""
}

variable "subnet_ids" {
  description = "Private subnets for the tasks (with a route to SQS, S3, the warehouse and Mongo)."
  type        = list(string)
}

variable "security_group_ids" {
  description = "Security groups of the tasks."
  type        = list(string)
}

variable "cpu" {
  description = "Fargate CPU units of a serve task."
  type        = number
  default     = 1024
}

variable "memory" {
  description = "Fargate memory (MiB) of a serve task; keep batch.max_bytes well below it."
  type        = number
  default     = 2048
}

variable "min_tasks" {
  description = "Fewest serve tasks (at least 1: the backlog per task divides by the task count)."
  type        = number
  default     = 2
  validation {
    condition     = var.min_tasks >= 1
    error_message = "min_tasks must be at least 1."
  }
}

variable "max_tasks" {
  description = "Most serve tasks. Each task's WHARF_SQS_MAX_IN_FLIGHT is derived from it: sqs_in_flight_budget / (max_tasks × deployment_maximum_percent / 100)."
  type        = number
  default     = 8
  validation {
    condition     = var.max_tasks >= 1 && var.max_tasks <= 100
    error_message = "max_tasks must be 1..100 (each task's in-flight share of the queue shrinks with it)."
  }
}

variable "deployment_maximum_percent" {
  description = "ECS's deployment_maximum_percent: a deploy runs up to this share of the task count, old and new tasks together, each polling. Counted in the in-flight budget; lower it (above 100) for a larger in-flight share per task at the cost of slower deploys."
  type        = number
  default     = 200
  validation {
    condition     = var.deployment_maximum_percent > 100 && var.deployment_maximum_percent <= 200
    error_message = "deployment_maximum_percent must be 101..200 (deployment_minimum_healthy_percent is 100, so a deploy needs room above it)."
  }
}

variable "sqs_in_flight_budget" {
  description = "Messages all serve tasks may hold in flight together. SQS refuses receives (OverLimit) past about 120,000 in flight per standard queue; the default leaves 10,000 of margin for other consumers and redelivery races."
  type        = number
  default     = 110000
  validation {
    condition     = var.sqs_in_flight_budget >= 1000 && var.sqs_in_flight_budget <= 120000
    error_message = "sqs_in_flight_budget must be 1,000..120,000 (SQS's in-flight limit per standard queue)."
  }
}

variable "task_events_per_second" {
  description = "Events one serve task moves per second at full load, as measured on your data (the task's wharf_deleted_messages_total rate while a backlog drains). With acceptable_latency_seconds it sets the autoscaling target: the backlog one task clears in that time."
  type        = number
  default     = 1000
  validation {
    condition     = var.task_events_per_second > 0
    error_message = "task_events_per_second must be positive."
  }
}

variable "acceptable_latency_seconds" {
  description = "How long an event may wait in the queue under load. The service scales to keep the visible backlog per task at task_events_per_second × this."
  type        = number
  default     = 300
  validation {
    condition     = var.acceptable_latency_seconds >= 60
    error_message = "acceptable_latency_seconds must be at least 60 (SQS's metrics come once a minute)."
  }
}

variable "scale_out_cooldown_seconds" {
  description = "Seconds after a scale-out before the next: about the time a new task takes to start and poll."
  type        = number
  default     = 60
}

variable "scale_in_cooldown_seconds" {
  description = "Seconds after a scale-in before the next; raised to the task's stopTimeout when below it, so that a removed task finishes its drain first."
  type        = number
  default     = 300
}

variable "cpu_architecture" {
  description = "The tasks' CPU (runtime_platform): X86_64 or ARM64. Build the image for the same platform: make image PLATFORM=linux/amd64 or linux/arm64."
  type        = string
  default     = "X86_64"
  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "backfill_cpu" {
  description = "Fargate CPU units of a backfill task."
  type        = number
  default     = 2048
}

variable "backfill_memory" {
  description = "Fargate memory (MiB) of a backfill task."
  type        = number
  default     = 4096
}

variable "parquet_retention_days" {
  description = "Days a Parquet file is kept after it is written; it must be longer than any warehouse outage you want to catch up from (a file deleted before it is loaded is lost to the warehouse, though its event stays in Mongo for wharf backfill)."
  type        = number
  default     = 400
}

variable "parquet_infrequent_access_days" {
  description = "Days after which Parquet files (loaded long ago) move to STANDARD_IA."
  type        = number
  default     = 30
}

variable "deadletter_retention_days" {
  description = "Days dead letters are kept for wharf deadletter list and replay."
  type        = number
  default     = 90
}

variable "log_retention_days" {
  description = "Days the log group keeps wharf's logs."
  type        = number
  default     = 30
}

variable "table_freshness_minutes" {
  description = "Per warehouse table, the freshness target in minutes: the table alarm fires when no file was loaded into it for that long. Quiet tables need a longer target."
  type        = map(number)
  default     = {}
}

variable "oldest_message_alarm_seconds" {
  description = "Oldest-message age that pages."
  type        = number
  default     = 1800
}

variable "alarm_topic_arn" {
  description = "SNS topic for alarms; empty creates one (subscribe to it)."
  type        = string
  default     = ""
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
