# The two functions. Their zips are built by `make package` (deterministic, so the hash only changes when
# the code or a dependency does); `source_code_hash` makes a changed zip redeploy.
locals {
  build_dir              = "${path.module}/../.build"
  fanout_package_path    = coalesce(var.fanout_package_path, "${local.build_dir}/fanout_lambda.zip")
  transform_package_path = coalesce(var.transform_package_path, "${local.build_dir}/transform_lambda.zip")

  # Optional variables both handlers read. The Powertools service names and the default metrics namespace
  # are the code's own (handler.py); only the namespace can be overridden here, e.g. to keep the metrics
  # of two stages in one account apart.
  lambda_common_environment = merge(
    {
      EMBEDDING_DIMENSION  = tostring(local.embedding_dimension)
      POWERTOOLS_LOG_LEVEL = var.log_level
    },
    var.metrics_namespace == null ? {} : { POWERTOOLS_METRICS_NAMESPACE = var.metrics_namespace },
  )

  # Every delivery stream, comma-separated (Firehose names cannot contain commas): the fan-out spreads a batch
  # over them by sale id. A local of its own so that a plan can show it (the queue URL keeps the function's
  # whole environment unknown until apply).
  fanout_delivery_stream_environment = {
    DELIVERY_STREAM_NAME = join(",", local.delivery_streams[*].name)
  }

  # How the sales item stores its embedding (fanout_lambda/settings.py DYNAMODB_EMBEDDING_ENCODING).
  fanout_dynamodb_environment = {
    DYNAMODB_EMBEDDING_ENCODING = local.dynamodb_embedding_encoding
  }

  fanout_known_environment_bytes = sum([
    for name, value in merge(
      local.lambda_common_environment, local.fanout_delivery_stream_environment, local.fanout_lake_scope_environment,
      local.fanout_dynamodb_environment,
    ) :
    length(name) + length(value)
  ])

  # What Athena's partition projection shows (glue.tf), as fanout_lambda/settings.py reads it: the fan-out
  # refuses a sale outside it into the dead-letter queue. No TENANT_IDS with the injected projection.
  fanout_lake_scope_environment = merge(
    { SOLD_DATE_YEARS = local.sold_date_years },
    length(var.tenant_ids) == 0 ? {} : { TENANT_IDS = join(",", var.tenant_ids) },
  )
}

resource "aws_cloudwatch_log_group" "fanout" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): these are operational logs, and a year of JSON logs per event costs more than the pipeline.
  name              = local.log_group_names.fanout
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "fanout" {
  #checkov:skip=CKV_AWS_117:The function calls only AWS APIs (DynamoDB, Firehose, SQS); a VPC would add NAT or endpoint cost and no protection.
  #checkov:skip=CKV_AWS_116:Failures reach the dead-letter queue without a function DLQ: through the buffer queue's redrive policy (queue trigger) or the on-failure destination, which records more than a DLQ (direct trigger).
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile per account; the zip is built reproducibly by `make package` and its hash pinned by source_code_hash.
  #checkov:skip=CKV_AWS_115:Reserved concurrency is optional by design (fanout_reserved_concurrency); reserving it takes capacity from the rest of the account.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is not enabled: Powertools metrics and logs cover the two hops, and tracing every event costs per trace.
  function_name    = local.names.fanout
  description      = "Validates carousel.product.sold events, writes the sale to DynamoDB and forwards it to Firehose"
  role             = aws_iam_role.fanout.arn
  runtime          = "python3.12"
  architectures    = ["x86_64"] # the zip carries manylinux2014_x86_64 wheels (orjson)
  handler          = "fanout_lambda.handler.lambda_handler"
  filename         = local.fanout_package_path
  source_code_hash = filebase64sha256(local.fanout_package_path)
  memory_size      = var.fanout_memory_mb
  timeout          = local.fanout_timeout_seconds
  kms_key_arn      = aws_kms_key.this.arn

  reserved_concurrent_executions = var.fanout_reserved_concurrency == null ? -1 : var.fanout_reserved_concurrency

  environment {
    # Names exactly as fanout_lambda/settings.py reads them (REQUIRED_VARIABLES) plus the optional ones.
    # BUFFER_QUEUE_URL only with the queue trigger: the fan-out delays a throttled message's next receive
    # with ChangeMessageVisibilityBatch on that queue (buffer_queue.tf grants it on exactly that queue).
    variables = merge(local.lambda_common_environment, {
      SALES_TABLE_NAME       = aws_dynamodb_table.sales.name
      IDEMPOTENCY_TABLE_NAME = aws_dynamodb_table.idempotency.name
      DEAD_LETTER_QUEUE_URL  = aws_sqs_queue.dead_letter.url
      }, local.fanout_delivery_stream_environment, local.fanout_lake_scope_environment, local.fanout_dynamodb_environment,
      local.buffer_queue_enabled ? { BUFFER_QUEUE_URL = aws_sqs_queue.buffer[0].url } : {},
    )
  }


  lifecycle {
    # Lambda caps a function's environment at 4 KB (all keys and values). The stream names and the tenant list
    # grow with the variables; the table names and queue URLs (unknown before apply) get 512 bytes of room.
    precondition {
      condition     = local.fanout_known_environment_bytes + 512 <= 4096
      error_message = "The fan-out's environment would exceed Lambda's 4 KB: ${local.fanout_known_environment_bytes} bytes of variables known at plan time (DELIVERY_STREAM_NAME for ${local.firehose_stream_count} streams, TENANT_IDS, ...) + 512 bytes for the table names and queue URLs. Use fewer streams (firehose_stream_count), a shorter name_prefix, or tenant_ids = [] (injected projection)."
    }
  }

  # The log group above is the function's default one (/aws/lambda/<name>); creating it first gives it
  # retention and encryption before Lambda would create it without either.
  depends_on = [aws_cloudwatch_log_group.fanout, aws_iam_role_policy.fanout_logs]
}

# Direct trigger only: EventBridge invokes asynchronously, and this bounds Lambda's retries and sends what
# still fails to the dead-letter queue. The event source mapping invokes synchronously, so with the buffer
# queue these settings would never apply (the redrive policy is that path).
resource "aws_lambda_function_event_invoke_config" "fanout" {
  count = local.buffer_queue_enabled ? 0 : 1

  function_name                = aws_lambda_function.fanout.function_name
  maximum_retry_attempts       = var.fanout_maximum_retry_attempts
  maximum_event_age_in_seconds = var.fanout_maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letter.arn
    }
  }

  depends_on = [aws_iam_role_policy.fanout_dead_letter]
}

resource "aws_cloudwatch_log_group" "transform" {
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 30 days): these are operational logs.
  name              = local.log_group_names.transform
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

resource "aws_lambda_function" "transform" {
  #checkov:skip=CKV_AWS_117:The function is invoked by Firehose and calls no network service; a VPC adds cost and nothing else.
  #checkov:skip=CKV_AWS_116:Firehose invokes it synchronously; failed records go to the Firehose error prefix, a DLQ would never receive anything.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile per account; the zip is built reproducibly by `make package` and its hash pinned by source_code_hash.
  #checkov:skip=CKV_AWS_115:Firehose bounds its concurrency (one invocation per buffer per partition stream); reserving capacity would only take it from the account.
  #checkov:skip=CKV_AWS_50:X-Ray tracing is not enabled: Firehose's ExecuteProcessing metrics cover this hop.
  function_name    = local.names.transform
  description      = "Firehose data transformation: normalises sales, adds the season and the tenant/year/month partition keys"
  role             = aws_iam_role.transform.arn
  runtime          = "python3.12"
  architectures    = ["x86_64"]
  handler          = "transform_lambda.handler.lambda_handler"
  filename         = local.transform_package_path
  source_code_hash = filebase64sha256(local.transform_package_path)
  memory_size      = var.transform_memory_mb
  timeout          = var.transform_timeout_seconds
  kms_key_arn      = aws_kms_key.this.arn

  environment {
    variables = merge(local.lambda_common_environment, local.transform_lake_environment)
  }


  depends_on = [aws_cloudwatch_log_group.transform, aws_iam_role_policy.transform_logs]
}
