# Direct PUT stream → transform Lambda → Parquet (Glue schema) → S3, partitioned by the keys the transform
# returns in metadata.partitionKeys. Keys come from the Lambda, so no MetadataExtraction (jq) processor is
# needed, and no RecordDeAggregation either (the fan-out Lambda puts one JSON sale per record).
locals {
  # Firehose invokes this exact qualified ARN; the IAM policy grants exactly it.
  transform_processor_arn = "${aws_lambda_function.transform.arn}:$LATEST"

  # The processor's buffer hints from pipeline.json. Firehose's documented defaults for a Lambda processor
  # are listed so that a hint equal to its default is left out: the provider does not keep default-valued
  # parameters in state, so sending them would show a change on every plan. Either way Firehose applies
  # exactly pipeline.json's value.
  processor_parameter_defaults = { BufferSizeInMBs = "1", BufferIntervalInSeconds = "60", NumberOfRetries = "3" }
  processor_parameters = {
    for name, value in {
      BufferSizeInMBs         = tostring(local.firehose.processor_buffer_size_mib)
      BufferIntervalInSeconds = tostring(local.firehose.processor_buffer_interval)
      NumberOfRetries         = tostring(local.firehose.processor_retries)
    } : name => value if value != local.processor_parameter_defaults[name]
  }
}

resource "aws_cloudwatch_log_group" "firehose" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): delivery error logs are operational.
  name              = local.log_group_names.firehose
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_cloudwatch_log_stream" "firehose_delivery" {
  name           = "DestinationDelivery"
  log_group_name = aws_cloudwatch_log_group.firehose.name
}

# firehose_stream_count identical Direct PUT streams (pipeline.json's firehose.stream_count unless overridden):
# the same bucket, prefixes, transform, Glue table, error prefix, log group and role. The fan-out spreads a
# batch over them (DELIVERY_STREAM_NAME lists them all), so the Direct PUT quotas, which are per stream,
# multiply by the count. Firehose names every S3 object after its stream ("<evaluated prefix><stream
# name>-<stream version>-<yyyy>-<MM>-<dd>-<HH>-<mm>-<ss>-<uuid><file extension>", Amazon Data Firehose DG,
# "Configure Amazon S3 object name format"), so the streams never write the same key in a shared prefix.
# Stream 0 keeps the name (and, through the moved block below, the address's state) it had as the only
# stream: adding streams replaces nothing.
resource "aws_kinesis_firehose_delivery_stream" "sales_history" {
  # Parquet streams (lake_table_format = "parquet", the default); iceberg.tf declares the Iceberg ones.
  count = local.iceberg_enabled ? 0 : local.firehose_stream_count

  name        = local.delivery_stream_names[count.index]
  destination = "extended_s3"

  lifecycle {
    # The variables' validation blocks only see overrides; pipeline.json's own values are checked here, so a
    # bad edit of the file fails at plan time instead of at the Firehose API (moto would accept it).
    precondition {
      condition = alltrue([
        local.firehose.buffering_size_mib >= 64, local.firehose.buffering_size_mib <= 128,
        local.firehose.buffering_interval_seconds >= 60, local.firehose.buffering_interval_seconds <= 900,
        local.firehose.processor_buffer_size_mib >= 0.2, local.firehose.processor_buffer_size_mib <= 0.7,
        local.firehose.processor_buffer_interval >= 0, local.firehose.processor_buffer_interval <= 900,
        contains(["SNAPPY", "GZIP", "UNCOMPRESSED"], local.firehose.parquet_compression),
        strcontains(local.firehose.error_output_prefix, "!{firehose:error-output-type}"),
        !strcontains(local.firehose.prefix, "!{firehose:error-output-type}"),
        length(local.firehose.prefix) <= 512, length(local.firehose.error_output_prefix) <= 512,
        local.firehose_stream_count >= 1, local.firehose_stream_count <= 50,
        floor(local.firehose_stream_count) == local.firehose_stream_count,
        local.firehose_record_bytes >= 1, local.firehose_record_bytes <= 1024000,
        can(local.pipeline.firehose.direct_put_bytes_per_second["default"]),
      ])
      error_message = "pipeline_config/pipeline.json's firehose values break a Firehose or pipeline rule: buffering 64-128 MiB and 60-900 s (dynamic partitioning), processor buffer 0.2-0.7 MiB (got ${local.firehose.processor_buffer_size_mib}: compact records widen ~7.7x in the transform's answer, base64 included, and the Lambda response is capped at 6 MB), parquet compression SNAPPY/GZIP/UNCOMPRESSED, error prefix with !{firehose:error-output-type} and prefix without it, both at most 512 characters, stream_count an integer 1-50 (got ${local.firehose_stream_count}), record_bytes 1-1,024,000 (a Firehose record is at most 1,000 KiB), direct_put_bytes_per_second with a \"default\" entry."
    }
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

  extended_s3_configuration {
    role_arn            = aws_iam_role.firehose.arn
    bucket_arn          = aws_s3_bucket.lake.arn
    prefix              = local.firehose.prefix
    error_output_prefix = local.firehose.error_output_prefix
    file_extension      = local.firehose.file_extension
    buffering_size      = local.firehose.buffering_size_mib
    buffering_interval  = local.firehose.buffering_interval_seconds
    # Parquet compresses inside the file; the stream-level compression must stay UNCOMPRESSED.
    compression_format = "UNCOMPRESSED"
    custom_time_zone   = "UTC"

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

    dynamic_partitioning_configuration {
      enabled        = true
      retry_duration = 300
    }

    data_format_conversion_configuration {
      enabled = true
      input_format_configuration {
        deserializer {
          open_x_json_ser_de {}
        }
      }
      output_format_configuration {
        serializer {
          parquet_ser_de {
            compression = local.firehose.parquet_compression
          }
        }
      }
      schema_configuration {
        database_name = aws_glue_catalog_table.sales_history[0].database_name
        table_name    = aws_glue_catalog_table.sales_history[0].name
        role_arn      = aws_iam_role.firehose.arn
        region        = local.region
        catalog_id    = local.account_id
        version_id    = "LATEST"
      }
    }
  }

  # The role's policies must exist before Firehose validates access at creation.
  depends_on = [
    aws_iam_role_policy.firehose_lake,
    aws_iam_role_policy.firehose_transform,
    aws_iam_role_policy.firehose_glue,
    aws_iam_role_policy.firehose_logs,
  ]
}

# The stream was a single resource before firehose_stream_count: its state moves to index 0 (same name, same
# configuration), so an existing stack gets the new streams added and stream 0 is neither replaced nor changed.
moved {
  from = aws_kinesis_firehose_delivery_stream.sales_history
  to   = aws_kinesis_firehose_delivery_stream.sales_history[0]
}
