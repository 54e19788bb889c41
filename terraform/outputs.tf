output "lake_bucket_name" {
  description = "S3 lake bucket: Parquet under the table prefix, Firehose errors under the error prefix, Athena results under athena-results/."
  value       = aws_s3_bucket.lake.id
}

output "lake_table_location" {
  description = "S3 location of the sales_history table (what DuckDB or Spark would read)."
  value       = local.lake_table_location
}

output "firehose_error_prefix" {
  description = "Where Firehose puts records it could not transform, convert or partition (look here when the failure alarms fire)."
  value       = "s3://${aws_s3_bucket.lake.bucket}/${local.error_prefix_root}"
}

output "delivery_stream_name" {
  description = "Firehose delivery stream 0 (the only one when firehose_stream_count is 1); delivery_stream_names lists them all."
  value       = local.delivery_streams[0].name
}

output "delivery_stream_arn" {
  description = "ARN of Firehose delivery stream 0; delivery_stream_arns lists them all."
  value       = local.delivery_streams[0].arn
}

output "delivery_stream_names" {
  description = "Every Firehose delivery stream the fan-out Lambda writes to, stream 0 first (DELIVERY_STREAM_NAME joins them with commas)."
  value       = local.delivery_streams[*].name
}

output "delivery_stream_arns" {
  description = "ARNs of every Firehose delivery stream, in the order of delivery_stream_names."
  value       = local.delivery_streams[*].arn
}

output "sales_table_name" {
  description = "DynamoDB sales table (SALES_TABLE_NAME); GSI2 serves embedding queries."
  value       = aws_dynamodb_table.sales.name
}

output "idempotency_table_name" {
  description = "DynamoDB idempotency table of the fan-out Lambda (IDEMPOTENCY_TABLE_NAME)."
  value       = aws_dynamodb_table.idempotency.name
}

output "dead_letter_queue_url" {
  description = "SQS dead-letter queue (DEAD_LETTER_QUEUE_URL): invalid events, events EventBridge could not deliver and events that failed after Lambda's retries."
  value       = aws_sqs_queue.dead_letter.url
}

output "dead_letter_queue_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dead_letter.arn
}

output "event_rule_arn" {
  description = "EventBridge rule that routes carousel.product.sold events to the fan-out Lambda."
  value       = aws_cloudwatch_event_rule.product_sold.arn
}

output "event_bus_name" {
  description = "Event bus producers publish to (PutEvents with source carousel.products, detail-type carousel.product.sold)."
  value       = var.event_bus_name
}

output "fanout_lambda_name" {
  description = "Fan-out Lambda function name."
  value       = aws_lambda_function.fanout.function_name
}

output "transform_lambda_name" {
  description = "Transform (Firehose processor) Lambda function name."
  value       = aws_lambda_function.transform.function_name
}

output "glue_database_name" {
  description = "Glue database of the lake (Athena database)."
  value       = aws_glue_catalog_database.this.name
}

output "glue_table_name" {
  description = "Glue table of the lake (partition projection on tenant_id/year/month)."
  value       = local.lake_table_name
}

output "athena_workgroup_name" {
  description = "Athena workgroup to run the dashboard queries in (results encrypted, configuration enforced)."
  value       = aws_athena_workgroup.this.name
}

output "athena_named_query_ids" {
  description = "Named query id per file in athena_queries/ (Athena console → Saved queries)."
  value       = { for k, q in aws_athena_named_query.dashboard : k => q.id }
}

output "alarm_topic_arn" {
  description = "SNS topic every alarm notifies; subscribe e-mail, chat or paging here."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms (CloudWatch console → Alarms, filter by the name prefix)."
  value       = concat([for a in aws_cloudwatch_metric_alarm.this : a.alarm_name], [for a in aws_cloudwatch_metric_alarm.incoming_limit : a.alarm_name], local.buffer_queue_alarm_names, local.dynamodb_alarm_names)
}

output "dashboard_name" {
  description = "CloudWatch dashboard of Firehose delivery beside the Lambdas and the DLQ."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}

output "dashboard_url" {
  description = "Console URL of the CloudWatch dashboard."
  value       = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards:name=${aws_cloudwatch_dashboard.this.dashboard_name}"
}

output "kms_key_arn" {
  description = "KMS key encrypting the pipeline's data at rest (grant kms:Decrypt to readers of the lake when lake_sse_algorithm = aws:kms)."
  value       = aws_kms_key.this.arn
}

output "aws_region" {
  description = "Region the stack is deployed in (operator commands default --region to it)."
  value       = local.region
}

output "fanout_trigger" {
  description = "How EventBridge reaches the fan-out Lambda: \"queue\" (through the buffer queue, in batches) or \"direct\"."
  value       = local.fanout_trigger
}

output "buffer_queue_url" {
  description = "URL of the SQS buffer queue between the rule and the fan-out Lambda (queue trigger); null with the direct trigger."
  value       = one(aws_sqs_queue.buffer[*].url)
}

output "buffer_queue_arn" {
  description = "ARN of the SQS buffer queue (queue trigger); null with the direct trigger."
  value       = one(aws_sqs_queue.buffer[*].arn)
}

output "lake_table_format" {
  description = "The lake's table format: parquet (objects under dynamic partitions) or iceberg (an Iceberg table upserted on sale_id); monitor reads it to watch the right delivery metrics."
  value       = var.lake_table_format
}

output "iceberg_table_optimizers" {
  description = "The Glue table optimizers of the Iceberg lake table (empty for parquet)."
  value       = [for o in concat(aws_glue_catalog_table_optimizer.compaction, aws_glue_catalog_table_optimizer.retention, aws_glue_catalog_table_optimizer.orphan_file_deletion) : o.type]
}
