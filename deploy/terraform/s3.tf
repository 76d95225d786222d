# The bucket: Parquet files under PREFIX/TABLE/dt=DAY/, dead letters under
# PREFIX/_deadletter/, backfill checkpoints under PREFIX/_backfill/ and COPY
# manifests under PREFIX/_manifests/ (design §5).
resource "aws_kms_key" "data" {
  description         = "${var.name}: the bucket's objects"
  enable_key_rotation = true
  tags                = local.tags
}

resource "aws_kms_alias" "data" {
  name          = "alias/${var.name}-data"
  target_key_id = aws_kms_key.data.key_id
}

resource "aws_s3_bucket" "data" {
  bucket = var.bucket_name
  tags   = local.tags
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket                  = aws_s3_bucket.data.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.data.arn
    }
    # One data key per bucket, not per object: far fewer KMS calls.
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.bucket.json
  # The public access block first, or AWS may refuse the policy.
  depends_on = [aws_s3_bucket_public_access_block.data]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.data.arn, "${aws_s3_bucket.data.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  # Parquet files: the ledger in the warehouse records each one loaded, so
  # after load they are only kept for replays and audits. S3 applies the
  # shortest expiration when rules overlap, so the dead-letter rule below
  # wins for dead letters.
  rule {
    id     = "parquet"
    status = "Enabled"
    filter {
      prefix = local.prefix
    }
    transition {
      days          = var.parquet_infrequent_access_days
      storage_class = "STANDARD_IA"
    }
    expiration {
      days = var.parquet_retention_days
    }
  }

  rule {
    id     = "dead-letters"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}_deadletter/"
    }
    expiration {
      days = var.deadletter_retention_days
    }
  }

  # A COPY manifest is deleted after its load; one left by a crash is
  # useless after a day.
  rule {
    id     = "manifests"
    status = "Enabled"
    filter {
      prefix = "${local.prefix}_manifests/"
    }
    expiration {
      days = 2
    }
  }

  rule {
    id     = "incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}
