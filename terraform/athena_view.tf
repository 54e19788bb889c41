# The deduplicated view every dashboard reads (athena_queries/sales_history_dedup.sql), created at apply so
# the dashboards work with no manual step. Athena keeps a view as a Glue table of type VIRTUAL_VIEW whose
# view_original_text is "/* Presto View: <base64 of a JSON definition> */": the SQL, the catalog and schema it
# resolves names in, and the output columns with Presto types; the storage descriptor repeats the columns
# with Hive types. The SQL comes from the file (never restated), so a change to the file changes the view.
locals {
  dedup_view_sql_file = "${local.athena_queries_dir}/sales_history_dedup.sql"
  # "-- comment" lines, then CREATE OR REPLACE VIEW <name> AS <query>: the view's name and its query.
  dedup_view_statement = regex(
    "(?is)^(?:\\s*--[^\\n]*\\n)*\\s*CREATE\\s+OR\\s+REPLACE\\s+VIEW\\s+([a-z_][a-z0-9_]*)\\s+AS\\s+(.*?)[\\s;]*$",
    file(local.dedup_view_sql_file),
  )
  dedup_view_name = lower(local.dedup_view_statement[0])
  dedup_view_sql  = local.dedup_view_statement[1]

  # Glue (Hive) type -> the type Athena's engine reports for it (array<float> reads back as array(real)).
  presto_types = {
    "string"       = "varchar"
    "double"       = "double"
    "float"        = "real"
    "int"          = "integer"
    "bigint"       = "bigint"
    "boolean"      = "boolean"
    "date"         = "date"
    "timestamp"    = "timestamp(3)"
    "array<float>" = "array(real)"
  }
  # The query is `SELECT * FROM (SELECT s.*, row_number() ... AS delivery_rank FROM sales_history AS s)`:
  # the table's columns, then its partition keys, then what the SQL adds (row_number() is a bigint). The
  # apply test runs the file's SQL on DuckDB and compares its output columns with these.
  dedup_view_added_columns = [{ name = "delivery_rank", type = "bigint", comment = "1 for the earliest event of the sale (the view keeps only those)" }]
  dedup_view_columns       = concat(local.schema.columns, local.schema.partition_keys, local.dedup_view_added_columns)

  dedup_view_definition = {
    originalSql = local.dedup_view_sql
    catalog     = "awsdatacatalog"
    schema      = aws_glue_catalog_database.this.name
    columns     = [for c in local.dedup_view_columns : { name = c.name, type = local.presto_types[c.type] }]
    # No owner: the view runs with the querying principal's permissions (the engine's behaviour for a view
    # without owner), and the definition does not depend on who ran `terraform apply`.
    runAsInvoker = false
  }
}

resource "aws_glue_catalog_table" "sales_history_dedup" {
  database_name = aws_glue_catalog_database.this.name
  name          = local.dedup_view_name
  description   = "Deduplicated view of ${local.lake_table_name} (athena_queries/sales_history_dedup.sql): one row per sale."
  table_type    = "VIRTUAL_VIEW"

  parameters = {
    presto_view = "true"
    comment     = "Presto View"
  }
  view_original_text = "/* Presto View: ${base64encode(jsonencode(local.dedup_view_definition))} */"
  view_expanded_text = "/* Presto View */"

  storage_descriptor {
    ser_de_info {
      name                  = "-"
      serialization_library = "-"
    }

    dynamic "columns" {
      for_each = local.dedup_view_columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = lookup(columns.value, "comment", null)
      }
    }
  }

  lifecycle {
    precondition {
      condition     = alltrue([for c in local.dedup_view_columns : contains(keys(local.presto_types), c.type)])
      error_message = "A column type in glue_schemas/sales_history.json has no Presto type in athena_view.tf's presto_types."
    }
    precondition {
      condition     = alltrue([for c in local.dedup_view_added_columns : strcontains(lower(local.dedup_view_sql), " as ${c.name}")])
      error_message = "athena_queries/sales_history_dedup.sql no longer adds the columns athena_view.tf declares (dedup_view_added_columns): update them together."
    }
  }
}
