# Alarms to one SNS topic, and one dashboard: Firehose ingestion and delivery beside the two Lambdas and
# the dead-letter queue.
resource "aws_sns_topic" "alarms" {
  name              = local.names.alarms_topic
  kms_master_key_id = aws_kms_key.this.arn # a CMK: CloudWatch cannot publish to a topic under alias/aws/sns

  lifecycle {
    postcondition {
      condition     = self.arn == local.alarm_topic_arn
      error_message = "The alarm topic's ARN differs from the one the KMS key policy (kms.tf) lets CloudWatch encrypt for."
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms_topic.json
}

data "aws_iam_policy_document" "alarms_topic" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each  = toset(var.alarm_email_addresses)
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  # The handlers' EMF namespace: POWERTOOLS_METRICS_NAMESPACE when set (lambda.tf), else their default.
  # transform_lambda/handler.py declares the metric, its default namespace and its one dimension; the
  # terraform apply test checks that this alarm reads exactly those.
  metrics_namespace = coalesce(var.metrics_namespace, "CarouselSalesPipeline")
  transform_failed_metric = {
    name       = "TransformRecordsFailed"
    dimensions = { service = "sales-transform" }
  }

  # Every Firehose alarm exists once per stream: key "<stream label>-<check>", where the label is the stream's
  # name without "<name_prefix>-" ("sales-history", "sales-history-2", ...), so the alarm's name is
  # "<stream name>-<check>". Keys come from the names (known at plan time), dimensions from the streams.
  firehose_streams = {
    for i, name in local.delivery_stream_names : trimprefix(name, "${var.name_prefix}-") => {
      dimensions = { DeliveryStreamName = local.delivery_streams[i].name }
    }
  }
  alarm_actions = [aws_sns_topic.alarms.arn]

  # Single-metric alarms, one entry each. Firehose metrics are evaluated over 5 minutes (they are emitted
  # per minute, but delivery happens per buffer), as are the transform's failed records and the DLQ's oldest
  # message; Lambda errors and the DLQ depth over 1 minute.
  metric_alarms = merge(
    merge([for label, stream in local.firehose_streams : {
      "${label}-data-freshness" = {
        description = "Oldest record in Firehose stream ${label} is older than it should ever be: delivery to ${local.iceberg_enabled ? "the Iceberg table" : "S3"} is falling behind (AWS-recommended alarm, above the buffering interval). The threshold allows what normal delivery takes: up to 1.5 x the buffering interval with dynamic partitioning, plus the transform's processor buffer interval, plus a minute for conversion and upload; the bare interval would flap at low traffic."
        namespace   = "AWS/Firehose", metric = local.iceberg_enabled ? "DeliveryToIceberg.DataFreshness" : "DeliveryToS3.DataFreshness", statistic = "Maximum", period = 300
        dimensions  = stream.dimensions, comparison = "GreaterThanThreshold"
        threshold   = ceil(1.5 * local.firehose.buffering_interval_seconds) + local.firehose.processor_buffer_interval + 60
        missing     = "notBreaching"
      }
      "${label}-throttled-records" = {
        description = "Firehose stream ${label} throttled incoming records: the fan-out Lambda is resending (AWS-recommended alarm). Sustained, it means more streams (firehose_stream_count) or a higher quota."
        namespace   = "AWS/Firehose", metric = "ThrottledRecords", statistic = "Sum", period = 300
        dimensions  = stream.dimensions, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
    }]...),
    merge([for label, stream in local.firehose_streams : {
      "${label}-failed-conversion" = {
        description = "Records of Firehose stream ${label} failed Parquet conversion and went to the error prefix (format-conversion-failed): the transform output no longer matches the Glue table."
        namespace   = "AWS/Firehose", metric = "FailedConversion.Records", statistic = "Sum", period = 300
        dimensions  = stream.dimensions, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
    } if !local.iceberg_enabled]...),
    # An Iceberg destination converts nothing and has no dynamic partitions: its rows either commit or go to the
    # error prefix, counted in DeliveryToIceberg.FailedRowCount (Firehose DG "Monitor metrics" for Iceberg).
    merge([for label, stream in local.firehose_streams : {
      "${label}-iceberg-failed-rows" = {
        description = "Rows of Firehose stream ${label} could not be written to the Iceberg table and went to the error prefix: the transform output no longer matches the table, or commits keep failing."
        namespace   = "AWS/Firehose", metric = "DeliveryToIceberg.FailedRowCount", statistic = "Sum", period = 300
        dimensions  = stream.dimensions, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
    } if local.iceberg_enabled]...),
    merge([for label, stream in local.firehose_streams : {
      "${label}-transform-failing" = {
        description = "Transform Lambda invocations by Firehose stream ${label} are failing (ExecuteProcessing.Success below 1); records go to processing-failed after the retries."
        namespace   = "AWS/Firehose", metric = "ExecuteProcessing.Success", statistic = "Average", period = 300
        dimensions  = stream.dimensions, comparison = "LessThanThreshold", threshold = 1, missing = "notBreaching"
      }
    }]...),
    merge([for label, stream in local.firehose_streams : {
      "${label}-partition-count-exceeded" = {
        description = "Firehose stream ${label} has more active partitions than its limit (pipeline.json active_partitions_limit); overflow records go to the error prefix. Ask AWS to raise ActivePartitionsLimit."
        namespace   = "AWS/Firehose", metric = "PartitionCountExceeded", statistic = "Maximum", period = 300
        dimensions  = stream.dimensions, comparison = "GreaterThanOrEqualToThreshold", threshold = 1, missing = "notBreaching"
      }
    } if !local.iceberg_enabled]...),
    {
      # SQS publishes a queue's metrics only while it is active (up to six hours after the last API call), so
      # a dead-letter queue nobody touches goes silent while its messages wait for up to 14 days. "ignore"
      # keeps the alarm's last state through the silence: ALARM stays ALARM until data shows the queue empty.
      # ("notBreaching" would flip it to OK and mail a recovery; "breaching" would raise it for an idle empty
      # queue too; "missing" would drop it to INSUFFICIENT_DATA.)
      "dead-letter-queue-not-empty" = {
        description = "Events in the dead-letter queue (invalid, undeliverable or failed after retries): look at them and replay. Stays in ALARM while SQS publishes no metrics for the idle queue."
        namespace   = "AWS/SQS", metric = "ApproximateNumberOfMessagesVisible", statistic = "Maximum", period = 60
        dimensions  = { QueueName = aws_sqs_queue.dead_letter.name }, comparison = "GreaterThanThreshold", threshold = 0, missing = "ignore"
      }
      "dead-letter-queue-oldest-message" = {
        description = "A message has waited in the dead-letter queue for over ${var.dead_letter_age_alarm_hours} h: replay or delete it before the 14-day retention removes it. Stays in ALARM while SQS publishes no metrics for the idle queue."
        namespace   = "AWS/SQS", metric = "ApproximateAgeOfOldestMessage", statistic = "Maximum", period = 300
        dimensions  = { QueueName = aws_sqs_queue.dead_letter.name }, comparison = "GreaterThanThreshold"
        threshold   = var.dead_letter_age_alarm_hours * 3600, missing = "ignore"
      }
      # ProcessingFailed records leave ExecuteProcessing.Success at 1 and Lambda Errors at 0: only the transform's
      # own EMF metric (transform_lambda/handler.py) counts them. No invocations, no data: nothing failed.
      "transform-records-failed" = {
        description = "The transform Lambda failed records (ProcessingFailed): they are under the Firehose error prefix (processing-failed/), each with its reason in the transform's log."
        namespace   = local.metrics_namespace, metric = local.transform_failed_metric.name, statistic = "Sum", period = 300
        dimensions  = local.transform_failed_metric.dimensions, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
    },
    merge([for key, fn in { fanout = aws_lambda_function.fanout, transform = aws_lambda_function.transform } : {
      "${key}-lambda-errors" = {
        description = "The ${key} Lambda raised errors (each is retried; persistent errors end in the DLQ or the Firehose error prefix)."
        namespace   = "AWS/Lambda", metric = "Errors", statistic = "Sum", period = 60
        dimensions  = { FunctionName = fn.function_name }, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
      "${key}-lambda-throttles" = {
        description = "The ${key} Lambda was throttled (reserved or account concurrency reached)."
        namespace   = "AWS/Lambda", metric = "Throttles", statistic = "Sum", period = 60
        dimensions  = { FunctionName = fn.function_name }, comparison = "GreaterThanThreshold", threshold = 0, missing = "notBreaching"
      }
    }]...),
  )

  # Incoming traffic against the stream's per-second quotas (AWS-recommended): the quota is itself a
  # Firehose metric, so the alarm follows a raised quota without a change here.
  incoming_limit_period = 300
  incoming_limit_checks = {
    "incoming-records-near-limit"  = { metric = "IncomingRecords", limit = "RecordsPerSecondLimit" }
    "incoming-bytes-near-limit"    = { metric = "IncomingBytes", limit = "BytesPerSecondLimit" }
    "incoming-requests-near-limit" = { metric = "IncomingPutRequests", limit = "PutRequestsPerSecondLimit" }
  }
  # Each stream has its own quotas (they are per stream): three alarms per stream.
  incoming_limit_alarms = merge([for label, stream in local.firehose_streams : {
    for check, value in local.incoming_limit_checks : "${label}-${check}" => merge(value, { stream = label, dimensions = stream.dimensions })
  }]...)
}

resource "aws_cloudwatch_metric_alarm" "this" {
  for_each = local.metric_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = each.value.period
  dimensions          = each.value.dimensions
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = each.value.missing
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "incoming_limit" {
  for_each = local.incoming_limit_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = "Firehose stream ${each.value.stream}: ${each.value.metric} per second is above ${var.incoming_limit_alarm_percent}% of ${each.value.limit}: batch more per call, add streams (firehose_stream_count) or ask AWS to raise the quota."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.incoming_limit_alarm_percent
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions

  # AWS's recommendation (Amazon Data Firehose Developer Guide, "Implement best practices with CloudWatch
  # Alarms"): the five-minute Sum divided by 300 against the per-second limit. Firehose's metrics arrive
  # late and bursts last seconds, so one-minute sums can miss what the five-minute average shows.
  metric_query {
    id          = "usage"
    expression  = "100 * (incoming / ${local.incoming_limit_period}) / limit"
    label       = "${each.value.metric} as % of ${each.value.limit}"
    return_data = true
  }

  metric_query {
    id = "incoming"
    metric {
      namespace   = "AWS/Firehose"
      metric_name = each.value.metric
      stat        = "Sum"
      period      = local.incoming_limit_period
      dimensions  = each.value.dimensions
    }
  }

  metric_query {
    id = "limit"
    metric {
      namespace   = "AWS/Firehose"
      metric_name = each.value.limit
      stat        = "Minimum"
      period      = local.incoming_limit_period
      dimensions  = each.value.dimensions
    }
  }
}

locals {
  # Every Firehose widget shows each metric once per stream (one line per stream).
  stream_names = local.delivery_streams[*].name
  firehose_metric = {
    for m in [
      "IncomingRecords", "IncomingBytes", "IncomingPutRequests", "ThrottledRecords",
      "RecordsPerSecondLimit", "BytesPerSecondLimit", "PutRequestsPerSecondLimit",
      "DeliveryToS3.Records", "DeliveryToS3.Success", "DeliveryToS3.DataFreshness", "DeliveryToS3.ObjectCount",
      "ExecuteProcessing.Success", "ExecuteProcessing.Duration", "SucceedProcessing.Records",
      "SucceedConversion.Records", "FailedConversion.Records",
      "PartitionCount", "PartitionCountExceeded", "ActivePartitionsLimit",
    ] : m => [for name in local.stream_names : ["AWS/Firehose", m, "DeliveryStreamName", name]]
  }
  # The lines of a Firehose widget: each metric for every stream, with the widget's extra options.
  firehose_lines = {
    for key, spec in {
      incoming   = { metrics = ["IncomingRecords", "IncomingPutRequests", "ThrottledRecords"], options = [{ stat = "Sum" }] }
      quotas     = { metrics = ["RecordsPerSecondLimit", "PutRequestsPerSecondLimit", "BytesPerSecondLimit"], options = [] }
      delivery   = { metrics = ["DeliveryToS3.Records", "DeliveryToS3.ObjectCount"], options = [{ stat = "Sum" }] }
      freshness  = { metrics = ["DeliveryToS3.DataFreshness", "DeliveryToS3.Success"], options = [{ stat = "Maximum" }] }
      transform  = { metrics = ["ExecuteProcessing.Success", "ExecuteProcessing.Duration", "SucceedProcessing.Records"], options = [] }
      conversion = { metrics = ["SucceedConversion.Records", "FailedConversion.Records"], options = [{ stat = "Sum" }] }
      partitions = { metrics = ["PartitionCount", "PartitionCountExceeded", "ActivePartitionsLimit"], options = [{ stat = "Maximum" }] }
    } : key => concat([for m in spec.metrics : [for line in local.firehose_metric[m] : concat(line, spec.options)]]...)
  }
  lambda_names = [aws_lambda_function.fanout.function_name, aws_lambda_function.transform.function_name]

  dashboard_widgets = [
    { title = "Firehose: incoming", metrics = local.firehose_lines.incoming },
    { title = "Firehose: per-second quotas", metrics = local.firehose_lines.quotas },
    { title = "Firehose: delivery to S3", metrics = local.firehose_lines.delivery },
    { title = "Firehose: data freshness (s) and delivery success", metrics = local.firehose_lines.freshness },
    { title = "Firehose: transform Lambda", metrics = local.firehose_lines.transform },
    { title = "Firehose: Parquet conversion", metrics = local.firehose_lines.conversion },
    { title = "Firehose: partitions", metrics = local.firehose_lines.partitions },
    { title = "Lambdas: invocations, errors, throttles", metrics = concat([for fn in local.lambda_names : [for m in ["Invocations", "Errors", "Throttles"] : ["AWS/Lambda", m, "FunctionName", fn, { stat = "Sum" }]]]...) },
    { title = "Lambdas: duration p95 (ms)", metrics = [for fn in local.lambda_names : ["AWS/Lambda", "Duration", "FunctionName", fn, { stat = "p95" }]] },
    { title = "Lambdas: concurrency", metrics = [for fn in local.lambda_names : ["AWS/Lambda", "ConcurrentExecutions", "FunctionName", fn, { stat = "Maximum" }]] },
    { title = "Dead-letter queue", metrics = [
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", aws_sqs_queue.dead_letter.name, { stat = "Maximum" }],
      ["AWS/SQS", "NumberOfMessagesSent", "QueueName", aws_sqs_queue.dead_letter.name, { stat = "Sum" }],
      ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", aws_sqs_queue.dead_letter.name, { stat = "Maximum", yAxis = "right" }],
    ] },
    { title = "Transform: records failed (processing-failed/)", metrics = [
      concat([local.metrics_namespace, local.transform_failed_metric.name], flatten([for k, v in local.transform_failed_metric.dimensions : [k, v]]), [{ stat = "Sum" }]),
    ] },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.names.dashboard
  dashboard_body = jsonencode({
    widgets = concat(
      [for i, w in concat(local.dashboard_widgets, local.buffer_queue_dashboard_widgets, local.dynamodb_dashboard_widgets) : {
        type   = "metric"
        x      = (i % 3) * 8
        y      = floor(i / 3) * 6
        width  = 8
        height = 6
        properties = {
          title   = w.title
          region  = local.region
          view    = "timeSeries"
          stacked = false
          period  = 60
          metrics = w.metrics
        }
      }],
      [{
        type   = "alarm"
        x      = 0
        y      = ceil(length(concat(local.dashboard_widgets, local.buffer_queue_dashboard_widgets, local.dynamodb_dashboard_widgets)) / 3) * 6
        width  = 24
        height = 4
        properties = {
          title  = "Pipeline alarms"
          alarms = concat([for a in aws_cloudwatch_metric_alarm.this : a.arn], [for a in aws_cloudwatch_metric_alarm.incoming_limit : a.arn], local.buffer_queue_alarm_arns, local.dynamodb_alarm_arns)
        }
      }],
    )
  })
}
