# Roles. The task role holds exactly the AWS calls wharf makes
# (deploy/terraform_test.go compares them with the Go code): nothing else
# reads the queue, and every S3 action is on wharf's prefix only.

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- the serve task's role: what wharf calls ---

resource "aws_iam_role" "task" {
  name               = "${var.name}-task"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "task" {
  name   = "wharf"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

data "aws_iam_policy_document" "task" {
  # ingest: ReceiveMessage; DeleteMessageBatch and ChangeMessageVisibilityBatch
  # (authorized as DeleteMessage and ChangeMessageVisibility); GetQueueAttributes
  # (the visibility timeout at start, the backlog on /status).
  statement {
    sid       = "ConsumeQueue"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.main.arn]
  }

  # The loader lists day partitions and files; dead-letter list reads.
  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix}*"]
    }
  }

  # batcher and dead letters put; the loader and backfill checkpoints get.
  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}*"]
  }

  # The Redshift loader deletes each COPY manifest after its load.
  statement {
    sid       = "DeleteManifests"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}_manifests/*"]
  }

  # SSE-KMS: PutObject needs a data key, GetObject a decrypt; only through S3.
  statement {
    sid       = "BucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# --- the backfill task's role: the S3 part only (backfill never touches SQS) ---

resource "aws_iam_role" "backfill" {
  name               = "${var.name}-backfill"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "backfill" {
  name   = "wharf-backfill"
  role   = aws_iam_role.backfill.id
  policy = data.aws_iam_policy_document.backfill.json
}

data "aws_iam_policy_document" "backfill" {
  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix}*"]
    }
  }

  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}*"]
  }

  statement {
    sid       = "DeleteManifests"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}_manifests/*"]
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

# --- the execution role: ECS pulls the image, writes logs, reads the secrets
# (from Secrets Manager or SSM Parameter Store) ---

resource "aws_iam_role" "execution" {
  name               = "${var.name}-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

resource "aws_iam_role_policy" "execution_secrets" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secrets.json
}

# Each secret is a Secrets Manager secret or an SSM parameter, told apart by
# its ARN's service. A Secrets Manager valueFrom may name a JSON key
# (ARN:json-key:version-stage:version-id): IAM wants the secret's own ARN,
# its first seven fields.
locals {
  secret_arns                = compact([var.warehouse_dsn_secret_arn, var.mongo_uri_secret_arn, var.replay_key_secret_arn])
  secretsmanager_secret_arns = distinct([for a in local.secret_arns : join(":", slice(split(":", a), 0, 7)) if split(":", a)[2] == "secretsmanager"])
  ssm_parameter_arns         = distinct([for a in local.secret_arns : a if split(":", a)[2] == "ssm"])
}

data "aws_iam_policy_document" "execution_secrets" {
  dynamic "statement" {
    for_each = length(local.secretsmanager_secret_arns) > 0 ? [1] : []
    content {
      sid       = "ReadSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secretsmanager_secret_arns
    }
  }

  # ECS reads parameters with GetParameters (SecureString values decrypted).
  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) > 0 ? [1] : []
    content {
      sid       = "ReadParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.ssm_parameter_arns
    }
  }

  # A secret or SecureString under a customer-managed key needs kms:Decrypt
  # on that key, and only through the two services that hold the secrets.
  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com", "ssm.${local.region}.amazonaws.com"]
      }
    }
  }
}

# --- the role Redshift assumes for COPY: read on wharf's prefix only ---

resource "aws_iam_role" "redshift_copy" {
  name               = "${var.name}-redshift-copy"
  assume_role_policy = data.aws_iam_policy_document.redshift_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "redshift_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["redshift.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role_policy" "redshift_copy" {
  name   = "wharf-copy"
  role   = aws_iam_role.redshift_copy.id
  policy = data.aws_iam_policy_document.redshift_copy.json
}

data "aws_iam_policy_document" "redshift_copy" {
  statement {
    sid       = "ListPrefix"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${local.prefix}*"]
    }
  }

  statement {
    sid       = "ReadFiles"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}*"]
  }

  # Dead letters hold raw event bodies; COPY never needs them.
  statement {
    sid       = "NoDeadLetters"
    effect    = "Deny"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${local.prefix}_deadletter/*"]
  }

  statement {
    sid       = "BucketKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.data.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}
