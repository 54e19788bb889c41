# The lake table, built from glue_schemas/sales_history.json (the one contract) with partition projection,
# so Athena finds new tenant/year/month partitions without crawlers or MSCK REPAIR.
locals {
  # Projection per partition key. Every key in the schema must have one (checked by a precondition).
  partition_projection = merge(
    {
      "projection.year.type"   = "integer"
      "projection.year.range"  = local.sold_date_years
      "projection.month.type"  = "integer"
      "projection.month.range" = "1,12"
      # Firehose writes month=03 (the transform zero-pads); projection must produce the same strings.
      "projection.month.digits" = "2"
    },
    length(var.tenant_ids) == 0 ? {
      "projection.tenant_id.type" = "injected"
      } : {
      "projection.tenant_id.type"   = "enum"
      "projection.tenant_id.values" = join(",", var.tenant_ids)
    },
  )
  lake_table_location = "s3://${aws_s3_bucket.lake.bucket}/${local.lake_table_prefix}"
}

resource "aws_glue_catalog_database" "this" {
  name        = local.names.glue_database
  description = "Carousel sales lake (tables defined in glue_schemas/)"
}

resource "aws_glue_catalog_table" "sales_history" {
  # The Parquet table (lake_table_format = "parquet", the default); iceberg.tf declares the Iceberg one.
  count = local.iceberg_enabled ? 0 : 1

  database_name = aws_glue_catalog_database.this.name
  name          = local.schema.table
  description   = local.schema.description
  table_type    = "EXTERNAL_TABLE"

  parameters = merge(local.partition_projection, {
    "EXTERNAL"                  = "TRUE"
    "classification"            = "parquet"
    "parquet.compression"       = local.firehose.parquet_compression
    "projection.enabled"        = "true"
    "storage.location.template" = "s3://${aws_s3_bucket.lake.bucket}/${local.lake_location_template}"
  })

  storage_descriptor {
    location      = local.lake_table_location
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.schema.columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = lookup(columns.value, "comment", null)
      }
    }
  }

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
      condition     = alltrue([for k in local.schema.partition_keys : contains(keys(local.partition_projection), "projection.${k.name}.type")])
      error_message = "Every partition key in glue_schemas/sales_history.json needs a projection in glue.tf."
    }
    precondition {
      condition     = alltrue([for k in local.schema.partition_keys : strcontains(local.lake_location_template, "${k.name}=$${${k.name}}")])
      error_message = "pipeline.json's Firehose prefix must contain every partition key of glue_schemas/sales_history.json as key=!{partitionKeyFromLambda:key}."
    }
    precondition {
      condition     = startswith(local.firehose.prefix, local.lake_table_prefix) && endswith(local.lake_location_template, "/")
      error_message = "pipeline.json's Firehose prefix must start with lake.table_prefix and end with '/'."
    }
  }
}

# The table was a single resource before lake_table_format: its state moves to index 0 (same table, same
# configuration), so an existing Parquet stack plans no change.
moved {
  from = aws_glue_catalog_table.sales_history
  to   = aws_glue_catalog_table.sales_history[0]
}
