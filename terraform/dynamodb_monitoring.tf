# DynamoDB write throttling: alarms and dashboard widgets for the sales table, its GSI2 and the idempotency
# table (joined to monitoring.tf's alarm list and dashboard, as buffer_queue.tf's are).
#
# A throttled write is not a failure here: the fan-out resends it within the invocation and then backs the SQS
# message off (flow control, README "The fan-out Lambda"), so a throttled sale arrives late, not lost. Throttling
# that goes on means the tables serve less than the traffic: pre-warm them (terraform/README.md, "DynamoDB
# throughput at a launch") or the buffer queue's backlog grows. `sales-pipeline monitor` warns on the same
# metric, per table and index ("DynamoDB write throttles").
#
# Metrics (Amazon DynamoDB Developer Guide, "DynamoDB Metrics and dimensions",
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html, and "CloudWatch
# throttling metrics", https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TroubleshootingThrottling-cloudwatch.html):
#  - WriteThrottleEvents counts every throttled write event: the table's, and each GSI's. With TableName alone it
#    is the table's only; a GSI's needs TableName and GlobalSecondaryIndexName. CloudWatch never adds up over a
#    dimension left out, so each alarm names all of its dimensions ("Creating CloudWatch alarms in DynamoDB",
#    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Monitoring-metrics-creating-cloudwatch-alarms.html).
#  - ThrottledRequests (TableName, Operation) counts requests with any throttled event; for BatchWriteItem only
#    a call whose every item was throttled. It understates throttling, so it is on the dashboard, not alarmed.
#  - ConsumedWriteCapacityUnits (Sum) per table and per GSI: the write rate to size warm throughput by.
locals {
  # The one GSI every sale writes, by the name dynamodb.tf gives it (operations/metrics.py SALES_TABLE_INDEX;
  # the declaration test checks they agree).
  sales_table_gsi2_name = one([for index in aws_dynamodb_table.sales.global_secondary_index : index.name])

  dynamodb_sales_advice = "Pre-warm the sales table and GSI2 together (aws dynamodb update-table --warm-throughput; terraform/README.md, \"DynamoDB throughput at a launch\"), sized by their ConsumedWriteCapacityUnits on the dashboard."
  dynamodb_write_targets = {
    "sales-table" = {
      what       = "the sales table ${aws_dynamodb_table.sales.name}"
      advice     = local.dynamodb_sales_advice
      dimensions = { TableName = aws_dynamodb_table.sales.name }
    }
    "sales-table-gsi2" = {
      what       = "GSI2 of the sales table ${aws_dynamodb_table.sales.name} (a GSI that cannot take its writes throttles the table's writes too)"
      advice     = "${local.dynamodb_sales_advice} If GSI2 throttles below its warm throughput, one tenant's GSI2 key values are hot (about 1,000 write units/s each): raise embedding_shards in pipeline.json."
      dimensions = { TableName = aws_dynamodb_table.sales.name, GlobalSecondaryIndexName = local.sales_table_gsi2_name }
    }
    "idempotency-table" = {
      what       = "the idempotency table ${aws_dynamodb_table.idempotency.name}"
      advice     = "Pre-warm the idempotency table (aws dynamodb update-table --warm-throughput; terraform/README.md, \"DynamoDB throughput at a launch\"), sized by its ConsumedWriteCapacityUnits on the dashboard."
      dimensions = { TableName = aws_dynamodb_table.idempotency.name }
    }
  }

  dynamodb_tables = [aws_dynamodb_table.sales.name, aws_dynamodb_table.idempotency.name]
  dynamodb_dashboard_widgets = [
    { title = "DynamoDB: write units consumed (tables and GSI2)", metrics = [
      for target in values(local.dynamodb_write_targets) :
      concat(["AWS/DynamoDB", "ConsumedWriteCapacityUnits"], flatten([for k, v in target.dimensions : [k, v]]), [{ stat = "Sum" }])
    ] },
    { title = "DynamoDB: write throttle events and throttled requests", metrics = concat(
      [for target in values(local.dynamodb_write_targets) :
      concat(["AWS/DynamoDB", "WriteThrottleEvents"], flatten([for k, v in target.dimensions : [k, v]]), [{ stat = "Sum" }])],
      # The fan-out writes with PutItem (claims, a lone sale) and BatchWriteItem (sales, completions).
      concat([for table in local.dynamodb_tables : [for operation in ["PutItem", "BatchWriteItem"] :
      ["AWS/DynamoDB", "ThrottledRequests", "TableName", table, "Operation", operation, { stat = "Sum" }]]]...),
    ) },
  ]

  dynamodb_alarm_arns  = [for a in aws_cloudwatch_metric_alarm.dynamodb_write_throttles : a.arn]
  dynamodb_alarm_names = [for a in aws_cloudwatch_metric_alarm.dynamodb_write_throttles : a.alarm_name]
}

resource "aws_cloudwatch_metric_alarm" "dynamodb_write_throttles" {
  for_each = local.dynamodb_write_targets

  alarm_name          = "${var.name_prefix}-${each.key}-write-throttles"
  alarm_description   = "DynamoDB throttled writes to ${each.value.what}. Not a failure: the fan-out resends them and backs the SQS message off, so sales arrive late, not lost. Sustained, the table serves less than the traffic and the buffer queue's backlog grows. ${each.value.advice}"
  namespace           = "AWS/DynamoDB"
  metric_name         = "WriteThrottleEvents"
  statistic           = "Sum"
  period              = 300
  dimensions          = each.value.dimensions
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = var.alarm_evaluation_periods
  # No throttled write, no datapoint: an idle or healthy table is OK.
  treat_missing_data = "notBreaching"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
}
