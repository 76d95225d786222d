# Alarms that page (docs/operations.md says what each means and what to do).

variable "deadletter_alarm_per_hour" {
  description = "Messages wharf dead-letters to S3 in an hour above which the dead-letter alarm fires (bad input: a schema change upstream)."
  type        = number
  default     = 100
}

variable "memory_alarm_percent" {
  description = "Memory use of one serve task (percent of its memory) above which the memory alarm fires."
  type        = number
  default     = 85
}

resource "aws_sns_topic" "alarms" {
  count = var.alarm_topic_arn == "" ? 1 : 0
  name  = "${var.name}-alarms"
  tags  = local.tags
}

locals {
  alarm_topic = var.alarm_topic_arn != "" ? var.alarm_topic_arn : aws_sns_topic.alarms[0].arn
}

# SQS's own dead-letter queue: messages wharf received max_receive_count
# times without ever deleting them.
resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Messages reached the SQS dead-letter queue ${aws_sqs_queue.dlq.name}: wharf received them ${var.max_receive_count} times and could not finish them. See docs/operations.md#alarm-dlq-not-empty."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "oldest_message" {
  alarm_name          = "${var.name}-oldest-message-age"
  alarm_description   = "The oldest message in ${aws_sqs_queue.main.name} is older than ${var.oldest_message_alarm_seconds} s: wharf is not keeping up or not running. See docs/operations.md#alarm-oldest-message-age."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = aws_sqs_queue.main.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 2
  threshold           = var.oldest_message_alarm_seconds
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

# Table freshness, from wharf's JSON logs: every merged batch logs
# {"msg":"loaded","table":...,"files":...}; a table with no such line for
# its target is stale.
resource "aws_cloudwatch_log_metric_filter" "files_loaded" {
  name           = "${var.name}-files-loaded"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ $.msg = \"loaded\" }"
  metric_transformation {
    namespace  = "wharf"
    name       = "FilesLoaded"
    value      = "$.files"
    unit       = "Count"
    dimensions = { table = "$.table" }
  }
}

resource "aws_cloudwatch_metric_alarm" "table_freshness" {
  for_each            = var.table_freshness_minutes
  alarm_name          = "${var.name}-table-stale-${each.key}"
  alarm_description   = "No file was loaded into ${each.key} for ${each.value} minutes (its freshness target). See docs/operations.md#alarm-table-stale."
  namespace           = "wharf"
  metric_name         = "FilesLoaded"
  dimensions          = { table = each.key }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = max(1, ceil(each.value / 5))
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

# wharf's own dead-letter store in S3: bad input, counted from the log line
# {"msg":"dead letters written","rows":N,...}.
resource "aws_cloudwatch_log_metric_filter" "dead_letters" {
  name           = "${var.name}-dead-letters"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ $.msg = \"dead letters written\" }"
  metric_transformation {
    namespace = "wharf"
    name      = "DeadLetters"
    value     = "$.rows"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "dead_letters" {
  alarm_name          = "${var.name}-dead-letters"
  alarm_description   = "More than ${var.deadletter_alarm_per_hour} messages an hour went to wharf's dead-letter store: events no longer match the schema. See docs/operations.md#alarm-dead-letters."
  namespace           = "wharf"
  metric_name         = "DeadLetters"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.deadletter_alarm_per_hour
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  tags                = local.tags
}

resource "aws_cloudwatch_log_metric_filter" "load_failures" {
  name           = "${var.name}-load-failures"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ $.msg = \"load failed; will retry\" }"
  metric_transformation {
    namespace = "wharf"
    name      = "LoadFailures"
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "load_failures" {
  alarm_name          = "${var.name}-load-failing"
  alarm_description   = "Warehouse loads have failed for 15 minutes; files wait in S3. See docs/operations.md#alarm-load-failing."
  namespace           = "wharf"
  metric_name         = "LoadFailures"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

resource "aws_cloudwatch_log_metric_filter" "files_quarantined" {
  name           = "${var.name}-files-quarantined"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ $.msg = \"file quarantined\" }"
  metric_transformation {
    namespace = "wharf"
    name      = "FilesQuarantined"
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "files_quarantined" {
  alarm_name          = "${var.name}-file-quarantined"
  alarm_description   = "A file could not load and was set aside; the rest of its table loads. See docs/operations.md#alarm-file-quarantined."
  namespace           = "wharf"
  metric_name         = "FilesQuarantined"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  tags                = local.tags
}

# Tasks that keep stopping: fewer running than desired, for longer than a
# start or a scale-out takes (a task starts within two minutes). A
# crash-looping task is mostly not running, so the average shortfall stays
# near one task. From Container Insights (the cluster made here has it).
resource "aws_cloudwatch_metric_alarm" "tasks_not_running" {
  alarm_name          = "${var.name}-tasks-not-running"
  alarm_description   = "Fewer ${aws_ecs_service.serve.name} tasks run than ECS wants, for 15 minutes: tasks crash or fail their health check. See docs/operations.md#alarm-tasks-not-running."
  evaluation_periods  = 3
  threshold           = 0.5
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags

  metric_query {
    id          = "shortfall"
    expression  = "desired - running"
    label       = "Tasks desired but not running"
    return_data = true
  }
  metric_query {
    id = "desired"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "DesiredTaskCount"
      dimensions  = { ClusterName = local.cluster_name, ServiceName = aws_ecs_service.serve.name }
      stat        = "Average"
      period      = 300
    }
  }
  metric_query {
    id = "running"
    metric {
      namespace   = "ECS/ContainerInsights"
      metric_name = "RunningTaskCount"
      dimensions  = { ClusterName = local.cluster_name, ServiceName = aws_ecs_service.serve.name }
      stat        = "Average"
      period      = 300
    }
  }
}

# A task near its memory limit is about to be OOM-killed (its held
# messages then wait out their visibility timeout). Maximum: the
# fullest task, not the service's average.
resource "aws_cloudwatch_metric_alarm" "memory" {
  alarm_name          = "${var.name}-memory-high"
  alarm_description   = "A ${aws_ecs_service.serve.name} task used more than ${var.memory_alarm_percent}% of its memory for 10 minutes. See docs/operations.md#alarm-memory-high."
  namespace           = "AWS/ECS"
  metric_name         = "MemoryUtilization"
  dimensions          = { ClusterName = local.cluster_name, ServiceName = aws_ecs_service.serve.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 10
  datapoints_to_alarm = 8
  threshold           = var.memory_alarm_percent
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

# Raw writes to Mongo that failed, from the consumer's log lines (ingest:
# "raw write failed; …"). Each leaves its message for redelivery.
resource "aws_cloudwatch_log_metric_filter" "raw_write_errors" {
  name           = "${var.name}-raw-write-errors"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ ($.msg = \"raw write failed; message left for redelivery\") || ($.msg = \"raw write failed: Mongo unreachable; retrying\") }"
  metric_transformation {
    namespace = "wharf"
    name      = "RawWriteErrors"
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "raw_write_errors" {
  alarm_name          = "${var.name}-raw-writes-failing"
  alarm_description   = "Raw writes to Mongo have failed for 15 minutes; messages are redelivered and may reach the DLQ. See docs/operations.md#alarm-raw-writes-failing."
  namespace           = "wharf"
  metric_name         = "RawWriteErrors"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}

# Flushes that did not reach S3 after their retries (batcher: "flush
# failed", "flush failed: cannot encode", "flush failed: no file name").
resource "aws_cloudwatch_log_metric_filter" "flush_failures" {
  name           = "${var.name}-flush-failures"
  log_group_name = aws_cloudwatch_log_group.wharf.name
  pattern        = "{ ($.msg = \"flush failed\") || ($.msg = \"flush failed: cannot encode\") || ($.msg = \"flush failed: no file name\") }"
  metric_transformation {
    namespace = "wharf"
    name      = "FlushFailures"
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "flush_failures" {
  alarm_name          = "${var.name}-flush-failing"
  alarm_description   = "Parquet files could not be written to S3 (after retries) in 2 of the last 3 5-minute periods; their messages are redelivered. See docs/operations.md#alarm-flush-failing."
  namespace           = "wharf"
  metric_name         = "FlushFailures"
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [local.alarm_topic]
  ok_actions          = [local.alarm_topic]
  tags                = local.tags
}
