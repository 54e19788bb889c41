# ---------------------------------------------------------------------------------------------------------
# Where to deploy
# ---------------------------------------------------------------------------------------------------------
variable "aws_region" {
  type        = string
  description = "AWS region to deploy into (no default: the region is a deliberate choice; Firehose quotas differ by region, see README)."

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.aws_region))
    error_message = "aws_region must look like an AWS region name, e.g. eu-west-1."
  }
}

variable "name_prefix" {
  type        = string
  default     = "carousel-sales"
  description = "Prefix of every resource name (functions, tables, stream, queue, topic, workgroup, dashboard)."

  validation {
    # Lowercase so it is valid in S3 bucket names too; short so `<prefix>-lake-<account>-<region>` fits 63 chars.
    condition     = can(regex("^[a-z][a-z0-9-]{1,18}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-20 characters: lowercase letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  type        = map(string)
  default     = {}
  description = "Tags added to every resource through the provider's default_tags."
}

# ---------------------------------------------------------------------------------------------------------
# Test-only provider settings (the offline test points these at a moto_server; leave them alone in real use)
# ---------------------------------------------------------------------------------------------------------
variable "aws_endpoints" {
  type        = map(string)
  default     = {}
  description = "Service endpoint overrides keyed by provider endpoint name (s3, dynamodb, firehose, ...). Empty for real AWS; the offline test sets every service to a moto_server URL."

  validation {
    condition = alltrue([for k in keys(var.aws_endpoints) : contains(
      ["athena", "cloudwatch", "dynamodb", "events", "firehose", "glue", "iam", "kms", "lambda", "logs", "s3", "sns", "sqs", "sts"], k
    )])
    error_message = "aws_endpoints keys must be among: athena, cloudwatch, dynamodb, events, firehose, glue, iam, kms, lambda, logs, s3, sns, sqs, sts."
  }
}

variable "aws_skip_checks" {
  type        = bool
  default     = false
  description = "Skip the provider's credential, region and metadata-API checks. Only for the offline test against moto_server."
}

variable "aws_s3_use_path_style" {
  type        = bool
  default     = false
  description = "Use path-style S3 addressing (needed by moto_server on 127.0.0.1; not for real AWS)."
}

# ---------------------------------------------------------------------------------------------------------
# Overrides of pipeline_config/pipeline.json (null = the file's value; the file stays the one declaration)
# ---------------------------------------------------------------------------------------------------------
variable "embedding_dimension" {
  type        = number
  default     = null
  description = "Override of pipeline.json's embedding_dimension, passed to both Lambdas as EMBEDDING_DIMENSION. null keeps the file's value."

  validation {
    condition     = var.embedding_dimension == null || try(var.embedding_dimension >= 1 && floor(var.embedding_dimension) == var.embedding_dimension, false)
    error_message = "embedding_dimension must be a positive integer."
  }
}

variable "firehose_buffering_size_mib" {
  type        = number
  default     = null
  description = "Override of pipeline.json's Firehose buffering size (MiB). Dynamic partitioning and Parquet conversion require at least 64; Firehose allows at most 128. null keeps the file's value."

  validation {
    condition     = var.firehose_buffering_size_mib == null || try(var.firehose_buffering_size_mib >= 64 && var.firehose_buffering_size_mib <= 128, false)
    error_message = "firehose_buffering_size_mib must be between 64 and 128 (dynamic partitioning needs >= 64 MiB)."
  }
}

variable "firehose_buffering_interval_seconds" {
  type        = number
  default     = null
  description = "Override of pipeline.json's Firehose buffering interval (s). Dynamic partitioning requires at least 60; Firehose allows at most 900. null keeps the file's value."

  validation {
    condition     = var.firehose_buffering_interval_seconds == null || try(var.firehose_buffering_interval_seconds >= 60 && var.firehose_buffering_interval_seconds <= 900, false)
    error_message = "firehose_buffering_interval_seconds must be between 60 and 900 (dynamic partitioning needs >= 60 s)."
  }
}

variable "processor_buffer_size_mib" {
  type        = number
  default     = null
  description = "Override of pipeline.json's transform-Lambda buffer hint (MiB). Firehose accepts 0.2-3, but this variable stops at 0.7: the fan-out's compact records widen up to ~7.7x in the transform's JSON answer (float32 embedding values written as doubles, base64 included), and the answer must fit Lambda's 6 MB response, so one invocation may take at most ~0.74 MiB of input. null keeps the file's value (0.5)."

  validation {
    condition     = var.processor_buffer_size_mib == null || try(var.processor_buffer_size_mib >= 0.2 && var.processor_buffer_size_mib <= 0.7, false)
    error_message = "processor_buffer_size_mib must be between 0.2 and 0.7 (compact records widen ~7.7x in the transform's answer and the Lambda response is capped at 6 MB; see the description)."
  }
}

variable "firehose_stream_count" {
  type        = number
  default     = null
  description = "Override of pipeline.json's firehose.stream_count: how many identical Direct PUT streams carry the fan-out's records into the same lake layout (same bucket, prefixes, transform, Glue table, error prefix). Direct PUT quotas are per stream, so N streams take N times the bytes, records and requests per second. Stream 0 keeps the name `<name_prefix>-sales-history`; the others are `-2`, `-3`, ... Changing the count adds or removes streams and never replaces stream 0. null keeps the file's value."

  validation {
    condition     = var.firehose_stream_count == null || try(var.firehose_stream_count >= 1 && var.firehose_stream_count <= 50 && floor(var.firehose_stream_count) == var.firehose_stream_count, false)
    error_message = "firehose_stream_count must be an integer between 1 and 50."
  }
}

variable "processor_buffer_interval_seconds" {
  type        = number
  default     = null
  description = "Override of pipeline.json's transform-Lambda buffer interval hint (s, 0-900). null keeps the file's value."

  validation {
    condition     = var.processor_buffer_interval_seconds == null || try(var.processor_buffer_interval_seconds >= 0 && var.processor_buffer_interval_seconds <= 900, false)
    error_message = "processor_buffer_interval_seconds must be between 0 and 900."
  }
}

variable "processor_number_of_retries" {
  type        = number
  default     = null
  description = "Override of pipeline.json's number of Firehose retries of a failed transform invocation (0-300). null keeps the file's value."

  validation {
    condition     = var.processor_number_of_retries == null || try(var.processor_number_of_retries >= 0 && var.processor_number_of_retries <= 300 && floor(var.processor_number_of_retries) == var.processor_number_of_retries, false)
    error_message = "processor_number_of_retries must be an integer between 0 and 300."
  }
}

variable "parquet_compression" {
  type        = string
  default     = null
  description = "Override of pipeline.json's Parquet compression: SNAPPY, GZIP or UNCOMPRESSED. null keeps the file's value."

  validation {
    condition     = var.parquet_compression == null || contains(["SNAPPY", "GZIP", "UNCOMPRESSED"], coalesce(var.parquet_compression, "SNAPPY"))
    error_message = "parquet_compression must be SNAPPY, GZIP or UNCOMPRESSED."
  }
}

# ---------------------------------------------------------------------------------------------------------
# Lake, Glue and Athena
# ---------------------------------------------------------------------------------------------------------
variable "lake_bucket_name" {
  type        = string
  default     = null
  description = "Name of the S3 lake bucket. null builds `<name_prefix>-lake-<account id>-<region>` (globally unique)."

  validation {
    condition     = var.lake_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", coalesce(var.lake_bucket_name, "x")))
    error_message = "lake_bucket_name must be a valid S3 bucket name (3-63 lowercase letters, digits, '.', '-')."
  }
}

variable "lake_sse_algorithm" {
  type        = string
  default     = "aws:kms"
  description = "Default encryption of the lake bucket (and the Athena results in it): `aws:kms` uses the KMS key this module creates (with an S3 Bucket Key to keep KMS request costs low), `AES256` uses SSE-S3."

  validation {
    condition     = contains(["aws:kms", "AES256"], var.lake_sse_algorithm)
    error_message = "lake_sse_algorithm must be aws:kms (SSE-KMS with the created key) or AES256 (SSE-S3)."
  }
}

variable "error_objects_expiration_days" {
  type        = number
  default     = 30
  description = "Days after which objects under the Firehose error prefix root (processing-failed, format-conversion-failed, partition overflow) are deleted. Long enough for a person to look and replay."

  validation {
    condition     = var.error_objects_expiration_days >= 1 && floor(var.error_objects_expiration_days) == var.error_objects_expiration_days
    error_message = "error_objects_expiration_days must be a positive integer."
  }
}

variable "athena_results_expiration_days" {
  type        = number
  default     = 7
  description = "Days after which Athena query results (under athena-results/ in the lake bucket) are deleted."

  validation {
    condition     = var.athena_results_expiration_days >= 1 && floor(var.athena_results_expiration_days) == var.athena_results_expiration_days
    error_message = "athena_results_expiration_days must be a positive integer."
  }
}

variable "athena_named_queries_enabled" {
  type        = bool
  default     = true
  description = "Create one Athena named query per athena_queries/*.sql file. The offline test applies with false because moto 5.2 has no DeleteNamedQuery (destroy would fail); it checks the named queries in a plan instead."
}

variable "tenant_ids" {
  type        = list(string)
  description = "Required: tenants for Athena partition projection. A list makes `tenant_id` an `enum`: queries may span tenants, as the dashboards in athena_queries/ do; the fan-out gets the list (TENANT_IDS) and sends a sale of any other tenant to the dead-letter queue, so onboarding a tenant is: add it here, apply, replay its events (README). `[]` makes it `injected`: every tenant is accepted, but every query must filter tenant_id with = or IN, so the cross-tenant dashboards cannot run. No default, because the choice decides whether the dashboards work."

  validation {
    # RE2 has no look-ahead, so pipeline.json's tenant pattern is applied without its `(?!.*\.\.)` part and
    # the "no '..'" rule is checked on its own.
    condition = alltrue([for t in var.tenant_ids : (
      can(regex(replace(local.pipeline.tenant_id_pattern, "(?!.*\\.\\.)", ""), t)) && !strcontains(t, "..")
    )])
    error_message = "Every tenant id must match pipeline.json's tenant_id_pattern (letters, digits, '.', '_', '-'; at most 32; no '..')."
  }

  validation {
    # The list travels to the fan-out as one environment variable; Lambda allows 4 KB for all of them.
    condition     = length(join(",", var.tenant_ids)) <= 2048
    error_message = "tenant_ids joined with commas must stay within 2048 characters (Lambda's 4 KB environment limit); use [] (injected projection) for that many tenants."
  }
}

variable "partition_projection_year_range" {
  type        = string
  default     = null
  description = "Override of pipeline.json's sold_date_years, `first,last`: the `year` range of Athena's partition projection, passed to the fan-out as SOLD_DATE_YEARS so a sale dated outside it goes to the dead-letter queue instead of into rows Athena never shows. null keeps the file's value."

  validation {
    condition = var.partition_projection_year_range == null || try(
      can(regex("^[0-9]{4},[0-9]{4}$", var.partition_projection_year_range))
      && tonumber(split(",", var.partition_projection_year_range)[0]) <= tonumber(split(",", var.partition_projection_year_range)[1]),
      false,
    )
    error_message = "partition_projection_year_range must look like 2020,2040 (first year <= last year)."
  }
}

# ---------------------------------------------------------------------------------------------------------
# EventBridge and the fan-out Lambda
# ---------------------------------------------------------------------------------------------------------
variable "event_bus_name" {
  type        = string
  default     = "default"
  description = "Event bus the producers publish carousel.product.sold events to."
}

variable "eventbridge_maximum_retry_attempts" {
  type        = number
  default     = 185
  description = "How often EventBridge retries delivering an event to the fan-out Lambda before it goes to the dead-letter queue (0-185)."

  validation {
    condition     = var.eventbridge_maximum_retry_attempts >= 0 && var.eventbridge_maximum_retry_attempts <= 185 && floor(var.eventbridge_maximum_retry_attempts) == var.eventbridge_maximum_retry_attempts
    error_message = "eventbridge_maximum_retry_attempts must be an integer between 0 and 185."
  }
}

variable "eventbridge_maximum_event_age_seconds" {
  type        = number
  default     = 86400
  description = "How long EventBridge keeps retrying delivery to the fan-out Lambda (60-86400 s)."

  validation {
    condition     = var.eventbridge_maximum_event_age_seconds >= 60 && var.eventbridge_maximum_event_age_seconds <= 86400
    error_message = "eventbridge_maximum_event_age_seconds must be between 60 and 86400."
  }
}

variable "fanout_maximum_retry_attempts" {
  type        = number
  default     = 2
  description = "Lambda asynchronous retries of a failed fan-out invocation (0-2) before the event goes to the dead-letter queue. The handler is idempotent, so retries never double-write."

  validation {
    condition     = contains([0, 1, 2], var.fanout_maximum_retry_attempts)
    error_message = "fanout_maximum_retry_attempts must be 0, 1 or 2."
  }
}

variable "fanout_maximum_event_age_seconds" {
  type        = number
  default     = 21600
  description = "How long Lambda keeps an accepted event for retries (60-21600 s). Keep it below the 24 h idempotency window."

  validation {
    condition     = var.fanout_maximum_event_age_seconds >= 60 && var.fanout_maximum_event_age_seconds <= 21600
    error_message = "fanout_maximum_event_age_seconds must be between 60 and 21600."
  }
}

variable "fanout_reserved_concurrency" {
  type        = number
  default     = null
  description = "Reserved concurrency of the fan-out Lambda (caps the write rate a burst can put on DynamoDB and Firehose). null leaves it unreserved."

  validation {
    condition     = var.fanout_reserved_concurrency == null || try(var.fanout_reserved_concurrency >= 1 && floor(var.fanout_reserved_concurrency) == var.fanout_reserved_concurrency, false)
    error_message = "fanout_reserved_concurrency must be null or a positive integer."
  }
}

variable "fanout_memory_mb" {
  type        = number
  default     = 512
  description = "Memory of the fan-out Lambda (MB). CPU scales with memory; 512 MB keeps schema validation of a 1024-float embedding fast (see the README cost estimate)."

  validation {
    condition     = var.fanout_memory_mb >= 128 && var.fanout_memory_mb <= 10240
    error_message = "fanout_memory_mb must be between 128 and 10240."
  }
}

variable "fanout_timeout_seconds" {
  type        = number
  default     = null
  description = "Override of pipeline.json's fanout_timeout_seconds (3-900): the fan-out Lambda's timeout, covering DynamoDB and Firehose writes with their bounded resends. null keeps the file's value."

  validation {
    condition     = var.fanout_timeout_seconds == null || try(var.fanout_timeout_seconds >= 3 && var.fanout_timeout_seconds <= 900, false)
    error_message = "fanout_timeout_seconds must be between 3 and 900."
  }
}

variable "transform_memory_mb" {
  type        = number
  default     = 1024
  description = "Memory of the transform Lambda (MB). It decodes and re-encodes up to one processor buffer (pipeline.json, at most 0.7 MiB) of records per invocation."

  validation {
    condition     = var.transform_memory_mb >= 128 && var.transform_memory_mb <= 10240
    error_message = "transform_memory_mb must be between 128 and 10240."
  }
}

variable "transform_timeout_seconds" {
  type        = number
  default     = 120
  description = "Timeout of the transform Lambda (s). Firehose allows a transform invocation at most 5 minutes."

  validation {
    condition     = var.transform_timeout_seconds >= 3 && var.transform_timeout_seconds <= 300
    error_message = "transform_timeout_seconds must be between 3 and 300 (Firehose's limit for a transform invocation)."
  }
}

variable "log_level" {
  type        = string
  default     = "INFO"
  description = "POWERTOOLS_LOG_LEVEL of both Lambdas."

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL."
  }
}

variable "metrics_namespace" {
  type        = string
  default     = null
  description = "POWERTOOLS_METRICS_NAMESPACE of both Lambdas (their EMF metrics: processed, duplicate, rejected, resends, the transform's failed records; the transform-records-failed alarm reads this namespace). null keeps the handlers' own default (CarouselSalesPipeline)."

  validation {
    condition     = var.metrics_namespace == null || can(regex("^[A-Za-z0-9._/#:-]{1,255}$", coalesce(var.metrics_namespace, "x")))
    error_message = "metrics_namespace must be 1-255 characters: letters, digits and . _ / # : -."
  }
}

variable "log_retention_days" {
  type        = number
  default     = 30
  description = "Retention of the Lambda and Firehose log groups (days)."

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ..., 3653)."
  }
}

variable "fanout_package_path" {
  type        = string
  default     = null
  description = "Path of the fan-out Lambda zip. null uses `.build/fanout_lambda.zip` at the repository root, built by `make package`."
}

variable "transform_package_path" {
  type        = string
  default     = null
  description = "Path of the transform Lambda zip. null uses `.build/transform_lambda.zip` at the repository root, built by `make package`."
}

# ---------------------------------------------------------------------------------------------------------
# DynamoDB
# ---------------------------------------------------------------------------------------------------------
variable "gsi2_projected_attributes" {
  type        = list(string)
  default     = null
  description = "Override of pipeline.json's dynamodb.gsi2_projected_attributes: the non-key attributes GSI2 (the embedding-query index) projects (INCLUDE). Every sale write is billed again on GSI2 at the projected size, so only what an embedding query returns is copied: the embedding, embeddingEncoding and embeddingScale (what decoding it needs), salePrice and daysToSell. Tenant, product, sale date and sale id need no projection: an index always carries the table keys (PK, SK). null keeps the file's list."

  validation {
    condition     = var.gsi2_projected_attributes == null || try(length(setsubtract(["embedding", "embeddingEncoding", "embeddingScale"], var.gsi2_projected_attributes)) == 0, false)
    error_message = "gsi2_projected_attributes must include embedding, embeddingEncoding and embeddingScale: an embedding query needs all three to decode the embedding (pipeline_config/embedding_codec.py)."
  }
}

variable "dynamodb_embedding_encoding" {
  type        = string
  default     = null
  description = "Override of pipeline.json's dynamodb.embedding_encoding, passed to the fan-out as DYNAMODB_EMBEDDING_ENCODING: how the sales item (the DynamoDB query copy) stores its embedding. float32 (exact, 5 + 5 write units per sale for the item and its GSI2 copy), float16 (3 + 3) or int8 with a per-vector scale (2 + 2); the lake keeps float32 whatever the choice. Each item says how it is encoded, so changing it leaves older items readable. null keeps the file's value (float16)."

  validation {
    # The allowed values are pipeline.json's dynamodb.embedding_encodings (what pipeline_config/embedding_codec.py implements).
    condition     = var.dynamodb_embedding_encoding == null || contains(local.pipeline.dynamodb.embedding_encodings, coalesce(var.dynamodb_embedding_encoding, "float32"))
    error_message = "dynamodb_embedding_encoding must be one of pipeline.json's dynamodb.embedding_encodings: float32, float16 or int8."
  }
}

variable "dynamodb_deletion_protection_enabled" {
  type        = bool
  default     = true
  description = "Deletion protection of the sales and idempotency tables. Turn it off (and apply) before a deliberate destroy."
}

# ---------------------------------------------------------------------------------------------------------
# Monitoring
# ---------------------------------------------------------------------------------------------------------
variable "alarm_email_addresses" {
  type        = list(string)
  default     = []
  description = "E-mail addresses subscribed to the alarm topic (each must confirm the subscription). Other subscribers (chat, paging) can subscribe to the `alarm_topic_arn` output."
}

variable "incoming_limit_alarm_percent" {
  type        = number
  default     = 80
  description = "Alarm when Firehose incoming records, bytes or put requests per second exceed this percentage of the stream's per-second quota."

  validation {
    condition     = var.incoming_limit_alarm_percent > 0 && var.incoming_limit_alarm_percent <= 100
    error_message = "incoming_limit_alarm_percent must be in (0, 100]."
  }
}

variable "dead_letter_age_alarm_hours" {
  type        = number
  default     = 4
  description = "Alarm when the oldest message in the dead-letter queue is older than this (hours). At most 5: SQS stops publishing a queue's metrics about six hours after its last activity, so a higher threshold might never be crossed while anyone watches."

  validation {
    condition     = var.dead_letter_age_alarm_hours >= 1 && var.dead_letter_age_alarm_hours <= 5 && floor(var.dead_letter_age_alarm_hours) == var.dead_letter_age_alarm_hours
    error_message = "dead_letter_age_alarm_hours must be an integer from 1 to 5 (SQS metrics stop about six hours after a queue's last activity)."
  }
}

variable "alarm_evaluation_periods" {
  type        = number
  default     = 1
  description = "Evaluation periods (of 5 minutes for Firehose, the transform's failed records and the DLQ's oldest message, 1 minute for Lambda errors and the DLQ depth) before an alarm fires."

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && floor(var.alarm_evaluation_periods) == var.alarm_evaluation_periods
    error_message = "alarm_evaluation_periods must be a positive integer."
  }
}

# ---------------------------------------------------------------------------------------------------------
# Fan-out trigger and buffer queue (buffer_queue.tf). null = pipeline_config/pipeline.json's value.
# ---------------------------------------------------------------------------------------------------------
variable "fanout_trigger" {
  type        = string
  default     = null
  description = "How EventBridge reaches the fan-out Lambda: `queue` (rule → SQS buffer queue → event source mapping, batches) or `direct` (rule → Lambda, one event per asynchronous invocation). null keeps pipeline.json's fanout_trigger (`queue`)."

  validation {
    condition     = var.fanout_trigger == null || contains(["queue", "direct"], coalesce(var.fanout_trigger, "queue"))
    error_message = "fanout_trigger must be \"queue\" or \"direct\"."
  }
}

variable "buffer_queue_batch_size" {
  type        = number
  default     = null
  description = "Override of pipeline.json's buffer_queue.batch_size: most messages per fan-out invocation (1-10000 for a standard queue; above 10 needs a batching window of at least 1 s). A batch also closes at Lambda's 6 MB invocation payload. null keeps the file's value."

  validation {
    condition     = var.buffer_queue_batch_size == null || try(var.buffer_queue_batch_size >= 1 && var.buffer_queue_batch_size <= 10000 && floor(var.buffer_queue_batch_size) == var.buffer_queue_batch_size, false)
    error_message = "buffer_queue_batch_size must be an integer between 1 and 10000."
  }
}

variable "buffer_queue_maximum_batching_window_seconds" {
  type        = number
  default     = null
  description = "Override of pipeline.json's buffer_queue.maximum_batching_window_seconds: how long the event source mapping gathers messages before it invokes (0-300 s; at least 1 when the batch size is above 10). null keeps the file's value."

  validation {
    condition     = var.buffer_queue_maximum_batching_window_seconds == null || try(var.buffer_queue_maximum_batching_window_seconds >= 0 && var.buffer_queue_maximum_batching_window_seconds <= 300 && floor(var.buffer_queue_maximum_batching_window_seconds) == var.buffer_queue_maximum_batching_window_seconds, false)
    error_message = "buffer_queue_maximum_batching_window_seconds must be an integer between 0 and 300."
  }
}

variable "buffer_queue_maximum_concurrency" {
  type        = number
  default     = null
  description = "Override of pipeline.json's buffer_queue.maximum_concurrency: most concurrent fan-out invocations the buffer queue drives (2-1000); bounds the write rate a burst puts on DynamoDB and Firehose. Must not exceed fanout_reserved_concurrency when that is set. null keeps the file's value."

  validation {
    condition     = var.buffer_queue_maximum_concurrency == null || try(var.buffer_queue_maximum_concurrency >= 2 && var.buffer_queue_maximum_concurrency <= 1000 && floor(var.buffer_queue_maximum_concurrency) == var.buffer_queue_maximum_concurrency, false)
    error_message = "buffer_queue_maximum_concurrency must be an integer between 2 and 1000."
  }
}

variable "buffer_queue_max_receive_count" {
  type        = number
  default     = null
  description = "Override of pipeline.json's buffer_queue.max_receive_count: receives of a message before the redrive policy moves it to the dead-letter queue (1-1000; AWS suggests at least 5 so transient failures are retried). null keeps the file's value."

  validation {
    condition     = var.buffer_queue_max_receive_count == null || try(var.buffer_queue_max_receive_count >= 1 && var.buffer_queue_max_receive_count <= 1000 && floor(var.buffer_queue_max_receive_count) == var.buffer_queue_max_receive_count, false)
    error_message = "buffer_queue_max_receive_count must be an integer between 1 and 1000."
  }
}

variable "buffer_queue_visibility_timeout_seconds" {
  type        = number
  default     = null
  description = "Override of pipeline.json's buffer_queue.visibility_timeout_seconds (0-43200). Must be at least 6 x fanout_timeout_seconds + the batching window (checked at plan time): raise it together with fanout_timeout_seconds. null keeps the file's value."

  validation {
    condition     = var.buffer_queue_visibility_timeout_seconds == null || try(var.buffer_queue_visibility_timeout_seconds >= 0 && var.buffer_queue_visibility_timeout_seconds <= 43200 && floor(var.buffer_queue_visibility_timeout_seconds) == var.buffer_queue_visibility_timeout_seconds, false)
    error_message = "buffer_queue_visibility_timeout_seconds must be an integer between 0 and 43200."
  }
}

variable "buffer_queue_oldest_message_age_alarm_seconds" {
  type        = number
  default     = 600
  description = "Alarm when the oldest message in the buffer queue is older than this (s, maximum over 1 minute). The default allows a message two failed receives (2 x the 185 s visibility timeout) and a full batching window before it fires, and is far below the 4-day retention."

  validation {
    condition     = var.buffer_queue_oldest_message_age_alarm_seconds >= 60
    error_message = "buffer_queue_oldest_message_age_alarm_seconds must be at least 60."
  }
}

variable "buffer_queue_visible_messages_alarm_threshold" {
  type        = number
  default     = 10000
  description = "Alarm when the buffer queue never held fewer than this many visible messages during 5 minutes (a sustained backlog, not a burst being drained)."

  validation {
    condition     = var.buffer_queue_visible_messages_alarm_threshold >= 1
    error_message = "buffer_queue_visible_messages_alarm_threshold must be at least 1."
  }
}

variable "lake_table_format" {
  type        = string
  default     = "parquet"
  description = "The lake's table format: \"parquet\" (Parquet objects under dynamic partitions, read through partition projection) or \"iceberg\" (an Apache Iceberg v2 table in the Glue Data Catalog, upserted on sale_id by Firehose and compacted by Glue's table optimizers; see iceberg.tf and README). Changing it on a deployed stack replaces the streams and the table."

  validation {
    condition     = contains(["parquet", "iceberg"], var.lake_table_format)
    error_message = "lake_table_format must be \"parquet\" or \"iceberg\"."
  }
}

variable "iceberg_snapshot_retention_days" {
  type        = number
  default     = 5
  description = "lake_table_format = iceberg: snapshots older than this expire (Glue retention optimizer; at least one is kept), and the files only they referenced are deleted."

  validation {
    condition     = var.iceberg_snapshot_retention_days >= 1
    error_message = "iceberg_snapshot_retention_days must be at least 1."
  }
}

variable "iceberg_orphan_file_retention_days" {
  type        = number
  default     = 3
  description = "lake_table_format = iceberg: files under the table's location that no snapshot references are deleted after this many days (Glue orphan file deletion optimizer)."

  validation {
    condition     = var.iceberg_orphan_file_retention_days >= 1
    error_message = "iceberg_orphan_file_retention_days must be at least 1."
  }
}
