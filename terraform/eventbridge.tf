# EventBridge → fan-out (through the buffer queue or directly, buffer_queue.tf), and the one dead-letter queue
# everything undeliverable ends in:
#  - events EventBridge could not deliver to its target, the buffer queue or the Lambda (dead_letter_config),
#  - queue trigger: buffer-queue messages past the receive limit (the buffer queue's redrive policy),
#  - direct trigger: events the Lambda accepted but failed on after its async retries (on-failure destination),
#  - invalid events the handler rejects (it sends them itself, with the validation error).
# One queue means one place to look and one alarm; the message shapes tell them apart.
resource "aws_sqs_queue" "dead_letter" {
  name                      = local.names.dead_letter
  message_retention_seconds = 1209600 # 14 days, the SQS maximum: time for a person to look and replay
  sqs_managed_sse_enabled   = true    # SSE-SQS: EventBridge can write without a KMS key grant
}

resource "aws_sqs_queue_policy" "dead_letter" {
  queue_url = aws_sqs_queue.dead_letter.id
  policy    = data.aws_iam_policy_document.dead_letter_queue.json
}

data "aws_iam_policy_document" "dead_letter_queue" {
  statement {
    sid       = "EventBridgeRuleDeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dead_letter.arn]
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
}

resource "aws_cloudwatch_event_rule" "product_sold" {
  name           = local.names.rule
  description    = "carousel.product.sold events to the fan-out Lambda${local.buffer_queue_enabled ? " through the buffer queue" : ""} (pattern from pipeline_config/pipeline.json)"
  event_bus_name = var.event_bus_name
  event_pattern  = jsonencode(local.pipeline.event_pattern)
}

# One target: the buffer queue (queue trigger; the message body is the event JSON) or the function (direct).
resource "aws_cloudwatch_event_target" "fanout" {
  rule           = aws_cloudwatch_event_rule.product_sold.name
  event_bus_name = var.event_bus_name
  target_id      = local.buffer_queue_enabled ? "fanout-buffer-queue" : "fanout-lambda"
  arn            = local.buffer_queue_enabled ? aws_sqs_queue.buffer[0].arn : aws_lambda_function.fanout.arn

  lifecycle {
    precondition {
      condition     = contains(["queue", "direct"], local.fanout_trigger)
      error_message = "fanout_trigger (pipeline_config/pipeline.json or the variable) is \"${local.fanout_trigger}\"; it must be \"queue\" or \"direct\"."
    }
  }

  retry_policy {
    maximum_retry_attempts       = var.eventbridge_maximum_retry_attempts
    maximum_event_age_in_seconds = var.eventbridge_maximum_event_age_seconds
  }

  dead_letter_config {
    arn = aws_sqs_queue.dead_letter.arn
  }

  # Queue trigger: no event enters the buffer queue before EventBridge may send to it and before its
  # redrive policy bounds the receives (both are empty lists with the direct trigger).
  depends_on = [aws_sqs_queue_policy.buffer, aws_sqs_queue_redrive_policy.buffer]
}

# Direct trigger only: with the buffer queue, the event source mapping invokes the function with the role's
# own permissions, and EventBridge needs no right to invoke it.
resource "aws_lambda_permission" "eventbridge_invokes_fanout" {
  count = local.buffer_queue_enabled ? 0 : 1

  statement_id  = "AllowEventBridgeRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.fanout.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.product_sold.arn
}
