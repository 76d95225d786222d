# Target tracking on the backlog per task, AWS's pattern for SQS consumers
# (Application Auto Scaling: "Example: Amazon SQS queue backlog per task"):
# the visible messages divided by the service's task count, held at the
# backlog one task clears within the accepted latency. Unlike steps of one
# task, the policy sets the count the backlog needs in one move, so a
# sudden backlog takes the service from min_tasks to max_tasks at once.
#
# The task count is ECS/ContainerInsights DesiredTaskCount, not
# RunningTaskCount: tasks that are starting already count, so a scale-out
# is not repeated while they start. It needs Container Insights on the
# cluster (the cluster made here has it; enable it on one given as
# cluster_arn).

locals {
  cluster_name = element(split("/", local.cluster_arn), 1)
  # The backlog one task clears within acceptable_latency_seconds.
  backlog_per_task_target = var.task_events_per_second * var.acceptable_latency_seconds
  # A task removed by scale-in drains for up to stop_timeout; the next
  # scale-in waits at least that long, so tasks are removed one drain at a
  # time and the backlog they released is seen before more go.
  scale_in_cooldown = max(var.scale_in_cooldown_seconds, local.stop_timeout)
}

resource "aws_appautoscaling_target" "serve" {
  service_namespace  = "ecs"
  resource_id        = "service/${local.cluster_name}/${aws_ecs_service.serve.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_tasks
  max_capacity       = var.max_tasks
}

resource "aws_appautoscaling_policy" "backlog_per_task" {
  name               = "${var.name}-backlog-per-task"
  service_namespace  = aws_appautoscaling_target.serve.service_namespace
  resource_id        = aws_appautoscaling_target.serve.resource_id
  scalable_dimension = aws_appautoscaling_target.serve.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = local.backlog_per_task_target
    scale_out_cooldown = var.scale_out_cooldown_seconds
    scale_in_cooldown  = local.scale_in_cooldown

    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "Visible messages in ${aws_sqs_queue.main.name}"
        return_data = false
        metric_stat {
          stat = "Sum"
          metric {
            namespace   = "AWS/SQS"
            metric_name = "ApproximateNumberOfMessagesVisible"
            dimensions {
              name  = "QueueName"
              value = aws_sqs_queue.main.name
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        label       = "Desired tasks of ${aws_ecs_service.serve.name}"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "DesiredTaskCount"
            dimensions {
              name  = "ClusterName"
              value = local.cluster_name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.serve.name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "Visible messages per task"
        expression  = "backlog / tasks"
        return_data = true
      }
    }
  }
}
