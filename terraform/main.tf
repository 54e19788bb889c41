# The shared declarations are read, never restated: pipeline.json (event pattern, prefixes, buffering) and
# the lake table contract (columns, partition keys). Variables may override a value; `null` keeps the file's.

provider "aws" {
  region = var.aws_region

  # Only the offline test (moto_server on 127.0.0.1) sets these; a real deployment leaves the defaults.
  skip_credentials_validation = var.aws_skip_checks
  skip_metadata_api_check     = var.aws_skip_checks
  skip_region_validation      = var.aws_skip_checks
  s3_use_path_style           = var.aws_s3_use_path_style

  dynamic "endpoints" {
    for_each = length(var.aws_endpoints) > 0 ? [var.aws_endpoints] : []
    content {
      athena     = lookup(endpoints.value, "athena", null)
      cloudwatch = lookup(endpoints.value, "cloudwatch", null)
      dynamodb   = lookup(endpoints.value, "dynamodb", null)
      events     = lookup(endpoints.value, "events", null)
      firehose   = lookup(endpoints.value, "firehose", null)
      glue       = lookup(endpoints.value, "glue", null)
      iam        = lookup(endpoints.value, "iam", null)
      kms        = lookup(endpoints.value, "kms", null)
      lambda     = lookup(endpoints.value, "lambda", null)
      logs       = lookup(endpoints.value, "logs", null)
      s3         = lookup(endpoints.value, "s3", null)
      sns        = lookup(endpoints.value, "sns", null)
      sqs        = lookup(endpoints.value, "sqs", null)
      sts        = lookup(endpoints.value, "sts", null)
    }
  }

  default_tags {
    tags = var.tags
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  pipeline = jsondecode(file("${path.module}/../pipeline_config/pipeline.json"))
  schema   = jsondecode(file("${path.module}/../glue_schemas/sales_history.json"))

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  # `.name` is deprecated in provider 6 in favour of `.region`; `.id` is the region in both 5.x and 6.x.
  region = data.aws_region.current.id

  # pipeline.json values, each overridable by a variable (null keeps the file's value).
  embedding_dimension = coalesce(var.embedding_dimension, local.pipeline.embedding_dimension)
  # The sales item's embedding encoding (the fan-out's DYNAMODB_EMBEDDING_ENCODING) and GSI2's projection.
  dynamodb_embedding_encoding = coalesce(var.dynamodb_embedding_encoding, local.pipeline.dynamodb.embedding_encoding)
  gsi2_projected_attributes   = var.gsi2_projected_attributes == null ? local.pipeline.dynamodb.gsi2_projected_attributes : var.gsi2_projected_attributes
  firehose = {
    prefix                     = local.pipeline.firehose.prefix
    error_output_prefix        = local.pipeline.firehose.error_output_prefix
    file_extension             = local.pipeline.firehose.file_extension
    buffering_size_mib         = coalesce(var.firehose_buffering_size_mib, local.pipeline.firehose.buffering_size_mib)
    buffering_interval_seconds = coalesce(var.firehose_buffering_interval_seconds, local.pipeline.firehose.buffering_interval_seconds)
    processor_buffer_size_mib  = coalesce(var.processor_buffer_size_mib, local.pipeline.firehose.processor_buffer_size_mib)
    processor_buffer_interval  = coalesce(var.processor_buffer_interval_seconds, local.pipeline.firehose.processor_buffer_interval_seconds)
    processor_retries          = coalesce(var.processor_number_of_retries, local.pipeline.firehose.processor_number_of_retries)
    parquet_compression        = coalesce(var.parquet_compression, local.pipeline.firehose.parquet_compression)
  }

  # firehose_stream_count identical Direct PUT streams (firehose.tf). Stream 0 keeps the one stream's name of
  # before; the others get "-2", "-3", ... Firehose names cannot contain commas, so the fan-out gets the names
  # comma-separated in DELIVERY_STREAM_NAME.
  firehose_stream_count = coalesce(var.firehose_stream_count, local.pipeline.firehose.stream_count)
  delivery_stream_names = [
    for i in range(local.firehose_stream_count) : i == 0 ? local.names.delivery_stream : "${local.names.delivery_stream}-${i + 1}"
  ]
  # Built from the names, as kms.tf builds the log groups' and alarms' ARNs: known at plan time, so the fan-out's
  # PutRecordBatch grant can be read (and tested) in a plan; each stream's postcondition checks its real ARN.
  delivery_stream_arns = [
    for name in local.delivery_stream_names : "arn:${local.partition}:firehose:${local.region}:${local.account_id}:deliverystream/${name}"
  ]
  # The largest compact record the sizing assumes, and each stream's Direct PUT byte quota in this region
  # (pipeline.json; regions it does not name have the "default" quota).
  firehose_record_bytes = local.pipeline.firehose.record_bytes
  direct_put_bytes_per_second = lookup(
    local.pipeline.firehose.direct_put_bytes_per_second, local.region,
    try(local.pipeline.firehose.direct_put_bytes_per_second["default"], 0), # no "default": firehose.tf's precondition says so
  )

  # The sold-date years the lake shows: Athena's year projection covers them, and the fan-out (SOLD_DATE_YEARS)
  # refuses a sale outside them into the dead-letter queue instead of writing a row Athena would never show.
  sold_date_years = coalesce(var.partition_projection_year_range, "${local.pipeline.sold_date_years.first},${local.pipeline.sold_date_years.last}")

  # The error prefix's static root ("errors/"): the lifecycle rule expires what lands below it.
  error_prefix_root = regex("^[^!]*", local.firehose.error_output_prefix)

  # Athena's partition projection template is the Firehose prefix with every
  # `!{partitionKeyFromLambda:x}` turned into `${x}`, so the two can never drift apart.
  # (`$${` is HCL's escape for a literal `${`; `$1` is the captured key name.)
  lake_location_template = replace(local.firehose.prefix, "/!\\{partitionKeyFromLambda:([A-Za-z0-9_]+)\\}/", "$${$1}")
  lake_table_prefix      = local.pipeline.lake.table_prefix

  names = {
    fanout          = "${var.name_prefix}-fanout"
    transform       = "${var.name_prefix}-transform"
    sales_table     = "${var.name_prefix}-sales"
    idempotency     = "${var.name_prefix}-idempotency"
    delivery_stream = "${var.name_prefix}-sales-history"
    dead_letter     = "${var.name_prefix}-dead-letter"
    rule            = "${var.name_prefix}-product-sold"
    alarms_topic    = "${var.name_prefix}-alarms"
    workgroup       = "${var.name_prefix}-analytics"
    dashboard       = "${var.name_prefix}-pipeline"
    # Glue names are lowercase with underscores, and a database is per account and region: the stage's
    # prefix keeps two stacks apart. The table keeps the schema's name (tables live in their database),
    # which the SQL in athena_queries/ reads unqualified.
    glue_database = replace("${var.name_prefix}_${local.schema.database}", "-", "_")
  }

  lake_bucket_name = coalesce(var.lake_bucket_name, "${var.name_prefix}-lake-${local.account_id}-${local.region}")
}
