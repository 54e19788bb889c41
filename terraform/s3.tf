# The lake bucket: Parquet under the table prefix, Firehose errors under the error prefix root, Athena
# results under athena-results/.
locals {
  athena_results_prefix = "athena-results/"
  lake_kms_enabled      = var.lake_sse_algorithm == "aws:kms"
}

resource "aws_s3_bucket" "lake" {
  #checkov:skip=CKV_AWS_18:Access logging needs a separate log bucket per account; CloudTrail data events are the recommended audit trail and are an account-level decision.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; the lake can be rebuilt from DynamoDB and is not a system of record.
  #checkov:skip=CKV2_AWS_62:No consumer listens for object events; Athena reads by partition projection.
  #checkov:skip=CKV_AWS_145:SSE-KMS with the module's key is the default; SSE-S3 is a documented opt-in (lake_sse_algorithm).
  bucket = local.lake_bucket_name
}

resource "aws_s3_bucket_ownership_controls" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "lake" {
  bucket                  = aws_s3_bucket.lake.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "lake" {
  bucket = aws_s3_bucket.lake.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.lake_sse_algorithm
      kms_master_key_id = local.lake_kms_enabled ? aws_kms_key.this.arn : null
    }
    # A bucket key cuts KMS requests (and their cost) for the many small Firehose and Athena objects.
    bucket_key_enabled = local.lake_kms_enabled
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id

  rule {
    id     = "expire-firehose-errors"
    status = "Enabled"
    filter {
      prefix = local.error_prefix_root
    }
    expiration {
      days = var.error_objects_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "expire-athena-results"
    status = "Enabled"
    filter {
      prefix = local.athena_results_prefix
    }
    expiration {
      days = var.athena_results_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
  }

  rule {
    id     = "abort-incomplete-uploads-and-old-versions"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
    # Versioning leaves a delete marker behind every expired object (the error prefix above): remove them.
    expiration {
      expired_object_delete_marker = true
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
  }

  depends_on = [aws_s3_bucket_versioning.lake]
}

resource "aws_s3_bucket_policy" "lake" {
  bucket = aws_s3_bucket.lake.id
  policy = data.aws_iam_policy_document.lake_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.lake]
}

data "aws_iam_policy_document" "lake_bucket" {
  # A Deny on every S3 action is the documented TLS-only pattern; it grants nothing.
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.lake.arn,
      "${aws_s3_bucket.lake.arn}/*",
    ]
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
