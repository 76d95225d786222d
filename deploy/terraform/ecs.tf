# The always-on service (wharf serve) and the backfill task definition.

resource "aws_ecs_cluster" "this" {
  count = var.cluster_arn == "" ? 1 : 0
  name  = var.name
  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = local.tags
}

locals {
  cluster_arn = var.cluster_arn != "" ? var.cluster_arn : aws_ecs_cluster.this[0].arn

  # SQS allows about 120,000 messages in flight per queue, across every
  # consumer. The most serve tasks that poll at once is max_tasks, times
  # deployment_maximum_percent during a deploy (old tasks poll until the new
  # ones are healthy); each may hold sqs_max_in_flight, so together they
  # stay within sqs_in_flight_budget.
  peak_tasks        = ceil(var.max_tasks * var.deployment_maximum_percent / 100)
  sqs_max_in_flight = floor(var.sqs_in_flight_budget / local.peak_tasks)

  base_environment = {
    AWS_REGION                      = local.region
    WHARF_SQS_QUEUE_URL             = aws_sqs_queue.main.id
    WHARF_S3_BUCKET                 = aws_s3_bucket.data.bucket
    WHARF_S3_PREFIX                 = local.prefix
    WHARF_WAREHOUSE_DIALECT         = var.warehouse_dialect
    WHARF_WAREHOUSE_SCHEMA          = var.warehouse_schema
    WHARF_WAREHOUSE_IAM_ROLE        = aws_iam_role.redshift_copy.arn
    WHARF_WAREHOUSE_LOAD_INTERVAL   = var.load_interval
    WHARF_WAREHOUSE_MAX_CONNECTIONS = tostring(var.warehouse_max_connections)
    WHARF_MONGO_DATABASE            = var.mongo_database
    WHARF_DRAIN_TIMEOUT             = "${var.drain_timeout_seconds}s"
    WHARF_LOG_FORMAT                = "json"
    WHARF_LOG_LEVEL                 = "info"
  }

  # The backfill task's environment. It reads no queue, so sqs.max_in_flight
  # only bounds what its batcher holds: the application's default.
  backfill_environment = [for k, v in merge(local.base_environment, var.extra_environment) : { name = k, value = v }]

  # The serve tasks': the derived in-flight limit comes last, so that
  # extra_environment cannot raise it (its validation refuses it too).
  serve_environment = [for k, v in merge(local.base_environment, var.extra_environment, {
    WHARF_SQS_MAX_IN_FLIGHT = tostring(local.sqs_max_in_flight)
  }) : { name = k, value = v }]

  # Secrets reach the container as environment variables, injected by ECS
  # with the execution role; wharf never logs them (docs/design.md §8).
  secrets = concat(
    [{ name = "WHARF_WAREHOUSE_DSN", valueFrom = var.warehouse_dsn_secret_arn }],
    var.mongo_uri_secret_arn == "" ? [] : [{ name = "WHARF_MONGO_URI", valueFrom = var.mongo_uri_secret_arn }],
    var.replay_key_secret_arn == "" ? [] : [{ name = "WHARF_DEADLETTER_REPLAY_KEY", valueFrom = var.replay_key_secret_arn }],
  )

  log_configuration = {
    logDriver = "awslogs"
    options = {
      awslogs-group         = aws_cloudwatch_log_group.wharf.name
      awslogs-region        = local.region
      awslogs-stream-prefix = "wharf"
    }
  }
}

resource "aws_cloudwatch_log_group" "wharf" {
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

resource "aws_ecs_task_definition" "serve" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  container_definitions = jsonencode([{
    name      = "wharf"
    image     = var.image
    essential = true
    # The image's ENTRYPOINT is /wharf; wharf is PID 1 and gets SIGTERM.
    command                = ["serve", "--http", ":8080"]
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    environment            = local.serve_environment
    secrets                = local.secrets
    portMappings           = [{ containerPort = 8080, protocol = "tcp" }]
    # /healthz: the poll loop and the batcher are alive; it does not depend
    # on the warehouse, so a warehouse outage does not restart tasks.
    healthCheck = {
      command     = ["CMD", "/wharf", "healthcheck", "--url", "http://127.0.0.1:8080/healthz"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = 30
    }
    # Above drain_timeout: ECS waits this long after SIGTERM before SIGKILL.
    stopTimeout      = local.stop_timeout
    logConfiguration = local.log_configuration
    ulimits          = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]
  }])
  tags = local.tags
}

resource "aws_ecs_service" "serve" {
  name            = var.name
  cluster         = local.cluster_arn
  task_definition = aws_ecs_task_definition.serve.arn
  desired_count   = var.min_tasks
  launch_type     = "FARGATE"

  # A deploy starts new tasks before it stops old ones; each old task
  # drains on SIGTERM, so nothing is lost or redelivered late. The surge
  # counts in local.peak_tasks (the in-flight budget).
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = var.deployment_maximum_percent
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = var.security_group_ids
    assign_public_ip = false
  }

  propagate_tags = "SERVICE"
  tags           = local.tags

  lifecycle {
    # Autoscaling owns the task count.
    ignore_changes = [desired_count]
  }
}

# wharf backfill, for RunTask: the command is given per run, e.g.
#   backfill --table orders --since 2019-01-01 --shard 3/8 --job orders-2019
# (docs/operations.md has the whole aws ecs run-task line).
resource "aws_ecs_task_definition" "backfill" {
  family                   = "${var.name}-backfill"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.backfill_cpu
  memory                   = var.backfill_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.backfill.arn
  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
  container_definitions = jsonencode([{
    name                   = "wharf"
    image                  = var.image
    essential              = true
    command                = ["backfill", "--help"]
    user                   = "65532:65532"
    readonlyRootFilesystem = true
    environment            = local.backfill_environment
    secrets                = local.secrets
    # A stopped backfill resumes from its checkpoint; give it time to write one.
    stopTimeout      = local.stop_timeout
    logConfiguration = local.log_configuration
  }])
  tags = local.tags
}
