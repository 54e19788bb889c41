# lake_table_format = "iceberg": the lake as an Apache Iceberg table in the Glue Data Catalog, on the lake bucket
# under the same table prefix, written by Firehose streams with destination "iceberg" that upsert on sale_id, and
# kept small and tidy by Glue's table optimizers. "parquet" (the default) deploys none of this (count = 0) and
# leaves today's stack unchanged.
#
# Pages followed (Amazon Data Firehose developer guide unless named):
# - "Prerequisites to use Apache Iceberg Tables as a destination" (apache-iceberg-prereq.html): with unique keys,
#   Firehose validates at stream creation that the table and the keys exist, so the table must exist first
#   (depends_on below); Firehose writes format v2 only, Parquet data files, merge-on-read row-level changes.
# - "Route incoming records to a single Iceberg table" / "... to different Iceberg tables": update and delete need
#   the operation per record from JQ or the Lambda (metadata.otfMetadata); the transform returns operation
#   "update" when LAKE_TABLE_FORMAT is iceberg (transform_lambda/handler.py). metadata.partitionKeys is not used:
#   the table's partition spec places rows, so the row itself carries tenant_id, year and month.
# - "Grant Firehose access to ... Apache Iceberg Tables": glue:GetTable, GetDatabase, UpdateTable on the catalog,
#   the database and the table; S3 read/write/delete on the bucket (firehose_iceberg below).
# - AWS Glue DG "Table optimization prerequisites" (optimization-prerequisites.html): the optimizers' role (S3
#   read/write/delete on the table's location, glue:GetTable/UpdateTable on the table, logs).
# - hashicorp/aws 5.100.0: open_table_format_input { iceberg_input { metadata_operation, version } } only (no
#   schema or partition spec input: Glue builds the Iceberg schema from the columns and an identity partition per
#   partition key); aws_glue_catalog_table_optimizer types compaction, retention, orphan_file_deletion.
locals {
  iceberg_enabled  = var.lake_table_format == "iceberg"
  glue_catalog_arn = "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog"

  # The deployed streams and lake table, whichever format: exactly one of each pair has instances.
  delivery_streams = concat(aws_kinesis_firehose_delivery_stream.sales_history, aws_kinesis_firehose_delivery_stream.sales_history_iceberg)
  lake_table_arn   = one(concat(aws_glue_catalog_table.sales_history[*].arn, aws_glue_catalog_table.sales_history_iceberg[*].arn))
  lake_table_name  = one(concat(aws_glue_catalog_table.sales_history[*].name, aws_glue_catalog_table.sales_history_iceberg[*].name))
  # The transform's answer for an Iceberg destination (transform_lambda/handler.py LakeTarget); nothing for parquet,
  # so the default stack's function keeps its environment.
  transform_lake_environment = local.iceberg_enabled ? {
    LAKE_TABLE_FORMAT  = "iceberg"
    LAKE_DATABASE_NAME = aws_glue_catalog_database.this.name
  } : {}
  # An Iceberg table's location has no trailing slash (its data/ and metadata/ folders go below it).
  iceberg_table_location = trimsuffix(local.lake_table_location, "/")
  iceberg_table_arn      = "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${aws_glue_catalog_database.this.name}/${local.schema.table}"
}

resource "aws_glue_catalog_table" "sales_history_iceberg" {
  count = local.iceberg_enabled ? 1 : 0

  database_name = aws_glue_catalog_database.this.name
  name          = local.schema.table
  description   = "${local.schema.description} As an Apache Iceberg v${local.schema.iceberg.format_version} table: Firehose upserts on ${join(", ", local.schema.iceberg.unique_keys)}, so a redelivered sale is one row."
  table_type    = "EXTERNAL_TABLE"

  open_table_format_input {
    iceberg_input {
      metadata_operation = "CREATE"
      version            = local.schema.iceberg.format_version
    }
  }

  storage_descriptor {
    location = local.iceberg_table_location

    dynamic "columns" {
      for_each = local.schema.columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = lookup(columns.value, "comment", null)
      }
    }
  }

  # Identity partitions on tenant_id, year and month (the transform puts them in the row). A hidden
  # month(sold_date) spec would need Glue's IcebergTableInput.PartitionSpec, which 5.100.0 cannot send.
  dynamic "partition_keys" {
    for_each = local.schema.partition_keys
    content {
      name    = partition_keys.value.name
      type    = partition_keys.value.type
      comment = lookup(partition_keys.value, "comment", null)
    }
  }

  lifecycle {
    precondition {
      condition     = local.schema.iceberg.format_version == "2"
      error_message = "glue_schemas/sales_history.json's iceberg.format_version must be \"2\": Firehose writes only Iceberg v2 tables."
    }
    precondition {
      condition     = alltrue([for key in local.schema.iceberg.unique_keys : contains([for c in local.schema.columns : c.name], key)])
      error_message = "Every unique key in glue_schemas/sales_history.json's iceberg section must be a column of the table."
    }
    # Glue may add Iceberg parameters (metadata_location, table_type) as Firehose and the optimizers commit.
    ignore_changes = [parameters]
  }
}

resource "aws_kinesis_firehose_delivery_stream" "sales_history_iceberg" {
  count = local.iceberg_enabled ? local.firehose_stream_count : 0

  name        = local.delivery_stream_names[count.index]
  destination = "iceberg"

  lifecycle {
    postcondition {
      condition     = self.arn == local.delivery_stream_arns[count.index]
      error_message = "Firehose stream ${self.name}'s ARN (${self.arn}) differs from the one main.tf builds for the fan-out's PutRecordBatch grant (${local.delivery_stream_arns[count.index]})."
    }
  }

  server_side_encryption {
    enabled  = true
    key_type = "CUSTOMER_MANAGED_CMK"
    key_arn  = aws_kms_key.this.arn
  }

  iceberg_configuration {
    role_arn           = aws_iam_role.firehose.arn
    catalog_arn        = local.glue_catalog_arn
    buffering_size     = local.firehose.buffering_size_mib
    buffering_interval = local.firehose.buffering_interval_seconds
    retry_duration     = 300
    # Only records Firehose could not deliver go to S3 (the error prefix); the table holds the rest.
    s3_backup_mode = "FailedDataOnly"

    destination_table_configuration {
      database_name          = aws_glue_catalog_database.this.name
      table_name             = aws_glue_catalog_table.sales_history_iceberg[0].name
      unique_keys            = local.schema.iceberg.unique_keys
      s3_error_output_prefix = local.firehose.error_output_prefix
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.firehose.name
      log_stream_name = aws_cloudwatch_log_stream.firehose_delivery.name
    }

    processing_configuration {
      enabled = true
      processors {
        type = "Lambda"
        parameters {
          parameter_name  = "LambdaArn"
          parameter_value = local.transform_processor_arn
        }
        dynamic "parameters" {
          for_each = local.processor_parameters
          content {
            parameter_name  = parameters.key
            parameter_value = parameters.value
          }
        }
      }
    }

    s3_configuration {
      role_arn            = aws_iam_role.firehose.arn
      bucket_arn          = aws_s3_bucket.lake.arn
      error_output_prefix = local.firehose.error_output_prefix
    }
  }

  # The table must exist before a stream with unique keys (Firehose validates it at creation), and the role's
  # policies before Firehose validates access.
  depends_on = [
    aws_glue_catalog_table.sales_history_iceberg,
    aws_iam_role_policy.firehose_lake,
    aws_iam_role_policy.firehose_transform,
    aws_iam_role_policy.firehose_glue,
    aws_iam_role_policy.firehose_logs,
    aws_iam_role_policy.firehose_iceberg,
  ]
}

# Firehose commits to the table through the Glue Data Catalog and deletes replaced files' references; the lake
# bucket policy (s3.tf) and firehose_lake already cover reading and writing objects.
data "aws_iam_policy_document" "firehose_iceberg" {
  statement {
    sid       = "IcebergTableCommits"
    actions   = ["glue:GetTable", "glue:GetDatabase", "glue:UpdateTable"]
    resources = [local.glue_catalog_arn, aws_glue_catalog_database.this.arn, local.iceberg_table_arn]
  }
  statement {
    sid       = "IcebergTableFiles"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${local.lake_table_prefix}*"]
  }
}

resource "aws_iam_role_policy" "firehose_iceberg" {
  count  = local.iceberg_enabled ? 1 : 0
  name   = "iceberg-table"
  role   = aws_iam_role.firehose.id
  policy = data.aws_iam_policy_document.firehose_iceberg.json
}

# -------------------------------------------------------------------------------------------------------
# Glue table optimizers: compaction (Firehose writes small files and, with unique keys, delete files every buffer
# interval), snapshot retention (every commit is a snapshot) and orphan file deletion (files no snapshot names).
# -------------------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume_glue" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["glue.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "table_optimizer" {
  count              = local.iceberg_enabled ? 1 : 0
  name               = "${var.name_prefix}-lake-table-optimizer"
  assume_role_policy = data.aws_iam_policy_document.assume_glue.json
}

data "aws_iam_policy_document" "table_optimizer" {
  statement {
    sid       = "TableFiles"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.lake.arn}/${local.lake_table_prefix}*"]
  }
  statement {
    sid       = "TableListing"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.lake.arn]
  }
  statement {
    sid       = "TableMetadata"
    actions   = ["glue:GetTable", "glue:UpdateTable"]
    resources = [local.glue_catalog_arn, aws_glue_catalog_database.this.arn, local.iceberg_table_arn]
  }
  statement {
    sid       = "OptimizerLogs"
    actions   = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws-glue/iceberg-compaction/logs:*"]
  }
  dynamic "statement" {
    for_each = local.lake_kms_enabled ? [1] : []
    content {
      sid       = "TableFilesEncryptedWithThePipelineKey"
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [aws_kms_key.this.arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_role_policy" "table_optimizer" {
  count  = local.iceberg_enabled ? 1 : 0
  name   = "lake-table"
  role   = aws_iam_role.table_optimizer[0].id
  policy = data.aws_iam_policy_document.table_optimizer.json
}

resource "aws_glue_catalog_table_optimizer" "compaction" {
  count = local.iceberg_enabled ? 1 : 0

  catalog_id    = local.account_id
  database_name = aws_glue_catalog_database.this.name
  table_name    = aws_glue_catalog_table.sales_history_iceberg[0].name
  type          = "compaction"

  configuration {
    role_arn = aws_iam_role.table_optimizer[0].arn
    enabled  = true
  }

  depends_on = [aws_iam_role_policy.table_optimizer]
}

resource "aws_glue_catalog_table_optimizer" "retention" {
  count = local.iceberg_enabled ? 1 : 0

  catalog_id    = local.account_id
  database_name = aws_glue_catalog_database.this.name
  table_name    = aws_glue_catalog_table.sales_history_iceberg[0].name
  type          = "retention"

  configuration {
    role_arn = aws_iam_role.table_optimizer[0].arn
    enabled  = true
    retention_configuration {
      iceberg_configuration {
        snapshot_retention_period_in_days = var.iceberg_snapshot_retention_days
        number_of_snapshots_to_retain     = 1
        clean_expired_files               = true
      }
    }
  }

  depends_on = [aws_iam_role_policy.table_optimizer]
}

resource "aws_glue_catalog_table_optimizer" "orphan_file_deletion" {
  count = local.iceberg_enabled ? 1 : 0

  catalog_id    = local.account_id
  database_name = aws_glue_catalog_database.this.name
  table_name    = aws_glue_catalog_table.sales_history_iceberg[0].name
  type          = "orphan_file_deletion"

  configuration {
    role_arn = aws_iam_role.table_optimizer[0].arn
    enabled  = true
    orphan_file_deletion_configuration {
      iceberg_configuration {
        orphan_file_retention_period_in_days = var.iceberg_orphan_file_retention_days
        location                             = local.iceberg_table_location
      }
    }
  }

  depends_on = [aws_iam_role_policy.table_optimizer]
}
