# One role per function or service, one policy per concern, every statement scoped to the exact resource.

data "aws_iam_policy_document" "assume_lambda" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "assume_firehose" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["firehose.amazonaws.com"]
    }
    # Confused-deputy guard: only Firehose acting for this account may assume the role.
    condition {
      test     = "StringEquals"
      variable = "sts:ExternalId"
      values   = [local.account_id]
    }
  }
}

# -------------------------------------------------------------------------------------------------------
# Fan-out Lambda
# -------------------------------------------------------------------------------------------------------
resource "aws_iam_role" "fanout" {
  name               = "${local.names.fanout}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "fanout_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.fanout.arn}:*"]
  }
}

resource "aws_iam_role_policy" "fanout_logs" {
  name   = "logs"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_logs.json
}

data "aws_iam_policy_document" "fanout_sales_table" {
  statement {
    actions   = ["dynamodb:PutItem"]
    resources = [aws_dynamodb_table.sales.arn]
  }
}

resource "aws_iam_role_policy" "fanout_sales_table" {
  name   = "sales-table"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_sales_table.json
}

data "aws_iam_policy_document" "fanout_idempotency_table" {
  # Powertools idempotency: put INPROGRESS, read an existing record, mark COMPLETED, delete on failure.
  statement {
    actions   = ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]
    resources = [aws_dynamodb_table.idempotency.arn]
  }
}

resource "aws_iam_role_policy" "fanout_idempotency_table" {
  name   = "idempotency-table"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_idempotency_table.json
}

data "aws_iam_policy_document" "fanout_delivery_stream" {
  # Every stream of firehose_stream_count, and only those: the fan-out spreads a batch over all of them. (ARNs
  # from the names, main.tf; each stream's postcondition checks that its ARN is the one granted here.)
  statement {
    actions   = ["firehose:PutRecordBatch"]
    resources = local.delivery_stream_arns
  }
}

resource "aws_iam_role_policy" "fanout_delivery_stream" {
  name   = "delivery-stream"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_delivery_stream.json
}

data "aws_iam_policy_document" "fanout_dead_letter" {
  # The handler sends invalid events; Lambda's on-failure destination uses this role too.
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
  }
}

resource "aws_iam_role_policy" "fanout_dead_letter" {
  name   = "dead-letter-queue"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_dead_letter.json
}

data "aws_iam_policy_document" "fanout_kms" {
  # Environment variables are encrypted with the pipeline key (the statement both functions share).
  source_policy_documents = [data.aws_iam_policy_document.lambda_environment_kms.json]

  # The tables are encrypted with the pipeline key: DynamoDB uses it on the caller's behalf.
  statement {
    sid       = "TablesEncryptedWithThePipelineKey"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "fanout_kms" {
  name   = "kms"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_kms.json
}

# -------------------------------------------------------------------------------------------------------
# Transform Lambda
# -------------------------------------------------------------------------------------------------------
resource "aws_iam_role" "transform" {
  name               = "${local.names.transform}-lambda"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
}

data "aws_iam_policy_document" "transform_logs" {
  statement {
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.transform.arn}:*"]
  }
}

resource "aws_iam_role_policy" "transform_logs" {
  name   = "logs"
  role   = aws_iam_role.transform.id
  policy = data.aws_iam_policy_document.transform_logs.json
}

# Both functions: their environment variables are encrypted with the pipeline key.
data "aws_iam_policy_document" "lambda_environment_kms" {
  statement {
    sid       = "EnvironmentEncryptedWithThePipelineKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "transform_kms" {
  name   = "kms"
  role   = aws_iam_role.transform.id
  policy = data.aws_iam_policy_document.lambda_environment_kms.json
}

# -------------------------------------------------------------------------------------------------------
# Firehose delivery streams: one role for all of them (the same bucket, transform, Glue table and log group)
# -------------------------------------------------------------------------------------------------------
resource "aws_iam_role" "firehose" {
  name               = "${local.names.delivery_stream}-firehose"
  assume_role_policy = data.aws_iam_policy_document.assume_firehose.json
}

data "aws_iam_policy_document" "firehose_lake" {
  statement {
    sid       = "LakeBucket"
    actions   = ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    sid       = "LakeObjects"
    actions   = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"]
    resources = ["${aws_s3_bucket.lake.arn}/*"]
  }
  dynamic "statement" {
    for_each = local.lake_kms_enabled ? [1] : []
    content {
      sid       = "LakeObjectsEncryptedWithThePipelineKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [aws_kms_key.this.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
      condition {
        test     = "StringLike"
        variable = "kms:EncryptionContext:aws:s3:arn"
        values   = ["${aws_s3_bucket.lake.arn}/*", aws_s3_bucket.lake.arn]
      }
    }
  }
}

resource "aws_iam_role_policy" "firehose_lake" {
  name   = "lake-bucket"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_lake.json
}

data "aws_iam_policy_document" "firehose_transform" {
  statement {
    actions   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    resources = [aws_lambda_function.transform.arn, local.transform_processor_arn]
  }
}

resource "aws_iam_role_policy" "firehose_transform" {
  name   = "transform-lambda"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_transform.json
}

data "aws_iam_policy_document" "firehose_glue" {
  # Record format conversion reads the table schema (version LATEST) on every conversion.
  statement {
    actions = ["glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions"]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.this.arn,
      local.lake_table_arn,
    ]
  }
}

resource "aws_iam_role_policy" "firehose_glue" {
  name   = "glue-schema"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_glue.json
}

data "aws_iam_policy_document" "firehose_logs" {
  statement {
    actions   = ["logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.firehose.arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "firehose_logs" {
  name   = "logs"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_logs.json
}
