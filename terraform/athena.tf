# The analytics workgroup and the dashboard queries. The SQL lives in athena_queries/*.sql (shared with the
# local DuckDB run); each file becomes one named query, never copied into Terraform.
locals {
  athena_queries_dir = "${path.module}/../athena_queries"
  athena_queries     = fileset(local.athena_queries_dir, "*.sql")
}

resource "aws_athena_workgroup" "this" {
  name        = local.names.workgroup
  description = "Queries over the carousel sales lake"
  # Deleting the workgroup also deletes its saved query history; results stay in S3 (with a lifecycle rule).
  force_destroy = true

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true

    result_configuration {
      output_location = "s3://${aws_s3_bucket.lake.bucket}/${local.athena_results_prefix}"

      encryption_configuration {
        encryption_option = local.lake_kms_enabled ? "SSE_KMS" : "SSE_S3"
        kms_key_arn       = local.lake_kms_enabled ? aws_kms_key.this.arn : null
      }
    }
  }
}

resource "aws_athena_named_query" "dashboard" {
  for_each = var.athena_named_queries_enabled ? local.athena_queries : toset([])

  name        = trimsuffix(each.value, ".sql")
  description = "athena_queries/${each.value}"
  workgroup   = aws_athena_workgroup.this.id
  database    = aws_glue_catalog_database.this.name
  query       = file("${local.athena_queries_dir}/${each.value}")
}
