# How EventBridge reaches the fan-out Lambda (fanout_trigger, default pipeline.json's "queue"):
#  - queue:  rule → SQS buffer queue → Lambda event source mapping, batches of up to batch_size events per
#            invocation; a message that keeps failing moves to the dead-letter queue after max_receive_count
#            receives (redrive policy). Bursts wait in the queue instead of throttling Firehose and Lambda.
#  - direct: rule → Lambda, one event per asynchronous invocation (Lambda's retries, on-failure destination).
# Either way the rule's target keeps EventBridge's retry policy and the dead-letter queue for events
# EventBridge cannot deliver (eventbridge.tf).
locals {
  fanout_trigger         = coalesce(var.fanout_trigger, local.pipeline.fanout_trigger)
  fanout_timeout_seconds = coalesce(var.fanout_timeout_seconds, local.pipeline.fanout_timeout_seconds)
  buffer_queue_enabled   = local.fanout_trigger == "queue"

  # pipeline.json's buffer_queue values, each overridable by a variable (null keeps the file's value).
  buffer_queue = {
    name                            = "${var.name_prefix}-fanout-buffer"
    batch_size                      = coalesce(var.buffer_queue_batch_size, local.pipeline.buffer_queue.batch_size)
    maximum_batching_window_seconds = coalesce(var.buffer_queue_maximum_batching_window_seconds, local.pipeline.buffer_queue.maximum_batching_window_seconds)
    maximum_concurrency             = coalesce(var.buffer_queue_maximum_concurrency, local.pipeline.buffer_queue.maximum_concurrency)
    max_receive_count               = coalesce(var.buffer_queue_max_receive_count, local.pipeline.buffer_queue.max_receive_count)
    visibility_timeout_seconds      = coalesce(var.buffer_queue_visibility_timeout_seconds, local.pipeline.buffer_queue.visibility_timeout_seconds)
    message_retention_seconds       = local.pipeline.buffer_queue.message_retention_seconds
  }

  # Lambda DG, "Creating and configuring an Amazon SQS event source mapping": the queue's visibility timeout
  # must be at least six times the function timeout (and the timeout may never exceed it), plus the batching
  # window, during which the first messages of a batch are already in flight.
  buffer_queue_minimum_visibility_seconds = 6 * local.fanout_timeout_seconds + local.buffer_queue.maximum_batching_window_seconds

  # The receive budget (pipeline.json's _comment_throttling): a message the fan-out could not deliver for
  # throughput comes back after a backoff on its ApproximateReceiveCount n, d/2 + random(0, d/2) seconds with
  # d = min(throttle_backoff_max_seconds, throttle_backoff_base_seconds x 2^(n-1)). The guaranteed waits d/2 of
  # receives 1 .. max_receive_count-1 (the last receive ends in the dead-letter queue) must cover the longest
  # backlog the stack is declared to drain. (concat with 0: Terraform's sum() refuses an empty list.)
  throttle_backoff = {
    base_seconds            = local.pipeline.buffer_queue.throttle_backoff_base_seconds
    max_seconds             = local.pipeline.buffer_queue.throttle_backoff_max_seconds
    longest_backlog_seconds = local.pipeline.buffer_queue.longest_backlog_seconds
  }
  buffer_queue_receive_budget_seconds = sum(concat([0], [
    for n in range(1, max(1, local.buffer_queue.max_receive_count)) :
    min(local.throttle_backoff.max_seconds, local.throttle_backoff.base_seconds * pow(2, n - 1)) / 2
  ]))

  # Waves sized to the quota (pipeline.json's _comment_streams): one wave of maximum_concurrency batches of
  # batch_size records of record_bytes must fit what the streams take in one invocation's sending time, the
  # fan-out timeout less the flow-control margin in which it stops resending and hands messages back.
  fanout_flow_control_margin_seconds = local.pipeline.fanout_flow_control_margin_seconds
  fanout_wave_bytes                  = local.buffer_queue.maximum_concurrency * local.buffer_queue.batch_size * local.firehose_record_bytes
  fanout_wave_capacity_bytes         = local.firehose_stream_count * local.direct_put_bytes_per_second * (local.fanout_timeout_seconds - local.fanout_flow_control_margin_seconds)
}

# -------------------------------------------------------------------------------------------------------
# The queue, who may send to it, and where a message that keeps failing goes
# -------------------------------------------------------------------------------------------------------
resource "aws_sqs_queue" "buffer" {
  count = local.buffer_queue_enabled ? 1 : 0

  name                       = local.buffer_queue.name
  visibility_timeout_seconds = local.buffer_queue.visibility_timeout_seconds
  message_retention_seconds  = local.buffer_queue.message_retention_seconds
  # SSE-SQS rather than the pipeline's CMK: EventBridge sends to an SSE-SQS queue without any key grant,
  # and neither the event source mapping (the fan-out role) nor a redrive to the SSE-SQS dead-letter queue
  # needs kms:Decrypt. A CMK would add a key-policy statement for events.amazonaws.com, kms:Decrypt for the
  # fan-out role and KMS requests per batch, for data that lives here only minutes.
  sqs_managed_sse_enabled = true

  lifecycle {
    # The redrive policy is aws_sqs_queue_redrive_policy.buffer's (below); the queue must not manage it too.
    ignore_changes = [redrive_policy]

    # The variables' validation blocks only see overrides; pipeline.json's own values are checked here too.
    precondition {
      condition     = local.buffer_queue.visibility_timeout_seconds >= local.buffer_queue_minimum_visibility_seconds
      error_message = "The buffer queue's visibility timeout (${local.buffer_queue.visibility_timeout_seconds} s, buffer_queue.visibility_timeout_seconds in pipeline_config/pipeline.json or buffer_queue_visibility_timeout_seconds) must be at least 6 x fanout_timeout_seconds (${local.fanout_timeout_seconds} s) + the maximum batching window (${local.buffer_queue.maximum_batching_window_seconds} s) = ${local.buffer_queue_minimum_visibility_seconds} s (Lambda DG: at least six times the function timeout), or a batch still running becomes visible again and is processed twice."
    }
    # (The provider itself checks the visibility timeout's and the retention's ranges; the receive count sits
    # inside the redrive policy's JSON, where nothing would check it before the API.)
    precondition {
      condition = alltrue([
        local.buffer_queue.max_receive_count >= 1, local.buffer_queue.max_receive_count <= 1000,
        floor(local.buffer_queue.max_receive_count) == local.buffer_queue.max_receive_count,
      ])
      error_message = "pipeline_config/pipeline.json's buffer_queue values break an SQS rule: max_receive_count (${local.buffer_queue.max_receive_count}) must be an integer 1-1000."
    }
    # The receive budget: only when the backoffs of all receives but the last outlast the longest declared
    # backlog can a sale throttled all through it never reach the dead-letter queue.
    precondition {
      condition     = local.buffer_queue_receive_budget_seconds >= local.throttle_backoff.longest_backlog_seconds
      error_message = "The buffer queue's receive budget is too short: the guaranteed backoffs d/2 of receives 1 .. max_receive_count-1, d = min(throttle_backoff_max_seconds, throttle_backoff_base_seconds x 2^(n-1)), add up to ${local.buffer_queue_receive_budget_seconds} s with max_receive_count ${local.buffer_queue.max_receive_count}, base ${local.throttle_backoff.base_seconds} s and cap ${local.throttle_backoff.max_seconds} s, less than longest_backlog_seconds (${local.throttle_backoff.longest_backlog_seconds} s, pipeline_config/pipeline.json buffer_queue): a sale throttled through such a backlog would reach the dead-letter queue. Raise max_receive_count (buffer_queue_max_receive_count) or the backoff, or declare a shorter backlog."
    }
    precondition {
      condition = alltrue([
        local.buffer_queue.message_retention_seconds > local.throttle_backoff.longest_backlog_seconds,
        local.throttle_backoff.base_seconds >= 1,
        local.throttle_backoff.max_seconds >= local.throttle_backoff.base_seconds,
        local.throttle_backoff.max_seconds <= 43200,
      ])
      error_message = "pipeline_config/pipeline.json's buffer_queue backoff values break a rule: message_retention_seconds (${local.buffer_queue.message_retention_seconds} s) must be longer than longest_backlog_seconds (${local.throttle_backoff.longest_backlog_seconds} s), or SQS deletes a waiting sale before the backlog drains; and 1 <= throttle_backoff_base_seconds (${local.throttle_backoff.base_seconds}) <= throttle_backoff_max_seconds (${local.throttle_backoff.max_seconds}) <= 43200 (a message's visibility timeout is at most 12 hours, SQS ChangeMessageVisibility)."
    }
  }
}

# Past max_receive_count receives (the fan-out listed the message in batchItemFailures, or timed out, each
# time) a message moves, unchanged, to the one dead-letter queue (DLQ message kind (d)). A resource of its
# own rather than the queue's redrive_policy argument: it compares the policy as JSON, where the queue's
# argument compares text, so a service that answers with other whitespace (moto does) is not a change.
resource "aws_sqs_queue_redrive_policy" "buffer" {
  count = local.buffer_queue_enabled ? 1 : 0

  queue_url = aws_sqs_queue.buffer[0].id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dead_letter.arn
    maxReceiveCount     = local.buffer_queue.max_receive_count
  })
}

resource "aws_sqs_queue_policy" "buffer" {
  count = local.buffer_queue_enabled ? 1 : 0

  queue_url = aws_sqs_queue.buffer[0].id
  policy    = data.aws_iam_policy_document.buffer_queue[0].json

  # After the redrive policy, never at the same time: moto 5.2's SetQueueAttributes resets a queue's Policy
  # whenever a call does not carry one (moto/sqs/models.py, Queue._set_attributes), so a redrive policy written
  # after the queue policy erased it and the provider polled for the policy until the apply timed out (seen
  # in a clean-clone make test). AWS changes only the attributes a call names, so the order costs nothing there.
  depends_on = [aws_sqs_queue_redrive_policy.buffer]
}

data "aws_iam_policy_document" "buffer_queue" {
  count = local.buffer_queue_enabled ? 1 : 0

  # The only grant in the queue's resource policy: this account's rule, and no other, may send. (Principals of
  # the account with IAM permissions still can, e.g. an operator redriving the dead-letter queue back here.)
  statement {
    sid       = "OnlyTheProductSoldRuleSends"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.buffer[0].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.product_sold.arn]
    }
  }

  # AWS's SQS security best practice: refuse every request that does not come over TLS.
  statement {
    sid       = "DenyUnencryptedTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.buffer[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# -------------------------------------------------------------------------------------------------------
# Event source mapping: the queue feeds the fan-out in batches
# -------------------------------------------------------------------------------------------------------
resource "aws_lambda_event_source_mapping" "buffer_queue" {
  count = local.buffer_queue_enabled ? 1 : 0

  event_source_arn                   = aws_sqs_queue.buffer[0].arn
  function_name                      = aws_lambda_function.fanout.arn
  batch_size                         = local.buffer_queue.batch_size
  maximum_batching_window_in_seconds = local.buffer_queue.maximum_batching_window_seconds
  # The handler answers {"batchItemFailures": [...]}: only the listed messages return to the queue.
  function_response_types = ["ReportBatchItemFailures"]

  scaling_config {
    # Caps the concurrent fan-out invocations this queue drives, so a burst drains at a bounded write rate
    # on DynamoDB and Firehose instead of throttling them.
    maximum_concurrency = local.buffer_queue.maximum_concurrency
  }

  lifecycle {
    precondition {
      condition = alltrue([
        local.buffer_queue.batch_size >= 1, local.buffer_queue.batch_size <= 10000,
        floor(local.buffer_queue.batch_size) == local.buffer_queue.batch_size,
        local.buffer_queue.maximum_batching_window_seconds >= 0, local.buffer_queue.maximum_batching_window_seconds <= 300,
        local.buffer_queue.batch_size <= 10 || local.buffer_queue.maximum_batching_window_seconds >= 1,
        local.buffer_queue.maximum_concurrency >= 2, local.buffer_queue.maximum_concurrency <= 1000,
      ])
      error_message = "The buffer queue's event source mapping breaks a Lambda rule (values from pipeline_config/pipeline.json's buffer_queue or the buffer_queue_* variables): batch_size ${local.buffer_queue.batch_size} must be an integer 1-10000, and above 10 needs maximum_batching_window_seconds >= 1; maximum_batching_window_seconds ${local.buffer_queue.maximum_batching_window_seconds} must be 0-300; maximum_concurrency ${local.buffer_queue.maximum_concurrency} must be 2-1000."
    }
    precondition {
      # Lambda DG ("Configuring maximum concurrency for Amazon SQS event sources"): with reserved concurrency
      # below the mapping's maximum concurrency, invocations are throttled and messages spend receives.
      condition     = var.fanout_reserved_concurrency == null || try(var.fanout_reserved_concurrency >= local.buffer_queue.maximum_concurrency, false)
      error_message = "fanout_reserved_concurrency (${coalesce(var.fanout_reserved_concurrency, 0)}) is below the buffer queue's maximum_concurrency (${local.buffer_queue.maximum_concurrency}): Lambda would throttle the event source mapping and messages would use up their receives. Raise the reservation or lower buffer_queue_maximum_concurrency."
    }
    # Waves sized to the quota: what one wave of concurrent batches puts must fit the streams' Direct PUT byte
    # quota within the time an invocation sends, or every wave ends with throttled sales handed back.
    precondition {
      condition     = local.fanout_wave_bytes <= local.fanout_wave_capacity_bytes
      error_message = "The buffer queue's waves exceed the Firehose quota: maximum_concurrency ${local.buffer_queue.maximum_concurrency} x batch_size ${local.buffer_queue.batch_size} x record_bytes ${local.firehose_record_bytes} = ${local.fanout_wave_bytes} bytes must be at most stream_count ${local.firehose_stream_count} x the Direct PUT quota of ${local.region} (${local.direct_put_bytes_per_second} bytes/s, pipeline_config/pipeline.json firehose.direct_put_bytes_per_second) x (fanout_timeout_seconds ${local.fanout_timeout_seconds} - fanout_flow_control_margin_seconds ${local.fanout_flow_control_margin_seconds}) = ${local.fanout_wave_capacity_bytes} bytes. Lower buffer_queue_maximum_concurrency or buffer_queue_batch_size, add streams (firehose_stream_count) or ask AWS for a higher quota (and record it in pipeline.json)."
    }
  }

  # Lambda checks at creation that the role may receive from the queue; and no message is consumed before
  # the redrive policy bounds its receives.
  depends_on = [aws_iam_role_policy.fanout_buffer_queue, aws_sqs_queue_redrive_policy.buffer]
}

data "aws_iam_policy_document" "fanout_buffer_queue" {
  count = local.buffer_queue_enabled ? 1 : 0

  # What the event source mapping needs (Lambda DG, "Lambda execution role permissions" for SQS), on exactly
  # this queue.
  statement {
    sid       = "EventSourceMappingPolls"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]
    resources = [aws_sqs_queue.buffer[0].arn]
  }
  # The handler itself: a message it hands back for throughput (batchItemFailures) gets a backoff on its
  # ApproximateReceiveCount instead of the queue's visibility timeout (ChangeMessageVisibilityBatch, which
  # IAM authorises as sqs:ChangeMessageVisibility), on this queue only.
  statement {
    sid       = "HandlerBacksOffThrottledMessages"
    actions   = ["sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.buffer[0].arn]
  }
}

resource "aws_iam_role_policy" "fanout_buffer_queue" {
  count = local.buffer_queue_enabled ? 1 : 0

  name   = "buffer-queue"
  role   = aws_iam_role.fanout.id
  policy = data.aws_iam_policy_document.fanout_buffer_queue[0].json
}

# -------------------------------------------------------------------------------------------------------
# Backlog alarms and dashboard widgets (joined to monitoring.tf's alarm list and dashboard)
# -------------------------------------------------------------------------------------------------------
locals {
  buffer_queue_alarms = local.buffer_queue_enabled ? {
    "buffer-queue-oldest-message-age" = {
      description = "The oldest event in the buffer queue has waited longer than ${var.buffer_queue_oldest_message_age_alarm_seconds} s: the fan-out is falling behind, stopped (event source mapping disabled, function failing) or retrying the same messages. Failed messages move to the dead-letter queue after ${local.buffer_queue.max_receive_count} receives."
      metric      = "ApproximateAgeOfOldestMessage", statistic = "Maximum", period = 60
      threshold   = var.buffer_queue_oldest_message_age_alarm_seconds
    }
    "buffer-queue-backlog" = {
      description = "The buffer queue held more than ${var.buffer_queue_visible_messages_alarm_threshold} visible events for a whole 5 minutes: more events arrive than the fan-out drains (maximum_concurrency ${local.buffer_queue.maximum_concurrency} x batch_size ${local.buffer_queue.batch_size}). A burst that drains within 5 minutes does not fire it."
      # The minimum over 5 minutes: the backlog never dropped below the threshold in that time.
      metric    = "ApproximateNumberOfMessagesVisible", statistic = "Minimum", period = 300
      threshold = var.buffer_queue_visible_messages_alarm_threshold
    }
  } : {}

  buffer_queue_dashboard_widgets = local.buffer_queue_enabled ? [
    { title = "Buffer queue: backlog (messages)", metrics = [
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.buffer_queue.name, { stat = "Maximum" }],
      ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", local.buffer_queue.name, { stat = "Maximum" }],
    ] },
    { title = "Buffer queue: oldest message age (s)", metrics = [
      ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", local.buffer_queue.name, { stat = "Maximum" }],
    ] },
    { title = "Buffer queue: sent and deleted", metrics = [
      ["AWS/SQS", "NumberOfMessagesSent", "QueueName", local.buffer_queue.name, { stat = "Sum" }],
      ["AWS/SQS", "NumberOfMessagesDeleted", "QueueName", local.buffer_queue.name, { stat = "Sum" }],
    ] },
  ] : []

  buffer_queue_alarm_arns  = [for a in aws_cloudwatch_metric_alarm.buffer_queue : a.arn]
  buffer_queue_alarm_names = [for a in aws_cloudwatch_metric_alarm.buffer_queue : a.alarm_name]
}

resource "aws_cloudwatch_metric_alarm" "buffer_queue" {
  for_each = local.buffer_queue_alarms

  alarm_name          = "${var.name_prefix}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/SQS"
  metric_name         = each.value.metric
  statistic           = each.value.statistic
  period              = each.value.period
  dimensions          = { QueueName = aws_sqs_queue.buffer[0].name }
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.threshold
  evaluation_periods  = var.alarm_evaluation_periods
  # SQS publishes a queue's metrics only while it is active (up to six hours after the last API call). The
  # event source mapping polls all the time, so an idle, empty buffer queue reports zeros and stays OK. If
  # the data stops (mapping disabled and nobody calls the queue), "ignore" keeps the last state: a backlog
  # in ALARM stays in ALARM instead of being cleared by silence, and a healthy queue stays OK.
  treat_missing_data = "ignore"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
}
