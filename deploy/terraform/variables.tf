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
  description = "WHARF_WAREHOUSE_DIALECT: redshift or postgres."
  type        = string
  default     = "redshift"
}

variable "warehouse_schema" {
  description = "WHARF_WAREHOUSE_SCHEMA."
  type        = string
  default     = "public"
}

variable "warehouse_dsn_secret_arn" {
  description = "Secrets Manager secret holding the warehouse DSN (WHARF_WAREHOUSE_DSN). Read by the execution role at task start, never by wharf."
  type        = string
}

variable "mongo_uri_secret_arn" {
  description = "Secrets Manager secret holding the Mongo URI (WHARF_MONGO_URI); empty to run without raw writes."
  type        = string
  default     = ""
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
  description = "More WHARF_* variables for both task definitions, such as WHARF_BATCH_MAX_AGE."
  type        = map(string)
  default     = {}
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
  description = "Fewest serve tasks."
  type        = number
  default     = 2
}

variable "max_tasks" {
  description = "Most serve tasks. Each holds up to sqs.max_in_flight messages; SQS allows about 120,000 in flight per queue across all of them."
  type        = number
  default     = 8
}

variable "scale_out_backlog" {
  description = "Visible messages above which the service adds a task."
  type        = number
  default     = 50000
}

variable "scale_in_backlog" {
  description = "Visible messages below which (for 15 minutes) the service removes a task."
  type        = number
  default     = 1000
}

variable "scale_out_oldest_age_seconds" {
  description = "Age of the oldest message above which the service adds a task."
  type        = number
  default     = 600
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
