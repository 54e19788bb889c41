"""The CloudWatch metrics the pipeline is watched by: names, dimensions and statistics as AWS publishes them.

Declared once here and read by ``monitor`` and ``report``; the Terraform alarms (terraform/monitoring.tf) are
tied to this declaration by a test (tests/integration/terraform/test_monitoring_declaration.py) that reads every alarm
of a plan and checks its namespace, metric, statistic and dimension names are declared here, and that the
thresholds both sides share are equal. Sources: Amazon Data Firehose developer guide, "Monitoring Amazon Data
Firehose with CloudWatch metrics" (delivery, ingestion, processing, conversion, dynamic partitioning
metrics); Lambda developer guide, "Types of metrics for Lambda functions"; SQS developer guide, "Available
CloudWatch metrics for Amazon SQS"; DynamoDB developer guide, "DynamoDB Metrics and dimensions"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html).

The thresholds that mirror an alarm are computed here from ``pipeline_config/pipeline.json`` with the same
rule as the alarm's, so a changed buffering interval moves both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import pipeline_config

__all__ = [
    "ALL",
    "DYNAMODB",
    "EMF_NAMESPACE",
    "FIREHOSE",
    "INCOMING_LIMIT_PERCENT",
    "LAMBDA",
    "PARTITIONS_WARN_PERCENT",
    "SALES_TABLE_INDEX",
    "SQS",
    "TRANSFORM_SERVICE",
    "Metric",
    "documented_stream_limits",
    "freshness_threshold_seconds",
]

FIREHOSE = "AWS/Firehose"
LAMBDA = "AWS/Lambda"
SQS = "AWS/SQS"
DYNAMODB = "AWS/DynamoDB"
#: The Lambdas' EMF namespace (Powertools' POWERTOOLS_METRICS_NAMESPACE; Terraform's metrics_namespace
#: overrides it, and so does ``monitor --metrics-namespace``).
EMF_NAMESPACE = "CarouselSalesPipeline"

#: The percentage of a per-second quota the incoming-traffic alarms fire at (terraform/variables.tf
#: incoming_limit_alarm_percent's default; the declaration test checks they are equal).
INCOMING_LIMIT_PERCENT = 80.0
#: Share of the active-partitions limit at which monitor warns (no alarm mirrors it: the alarm fires on
#: PartitionCountExceeded, when it is too late).
PARTITIONS_WARN_PERCENT = 80.0


@dataclass(frozen=True)
class Metric:
    """One metric as CloudWatch names it, with the dimension it is published under and the statistic read."""

    namespace: str
    name: str
    dimension: str
    statistic: str
    unit: str
    #: Dimensions the metric is published under together with ``dimension`` (a DynamoDB GSI's metrics: TableName
    #: and GlobalSecondaryIndexName). CloudWatch never aggregates over a dimension left out, so a query or alarm
    #: must name them all.
    more_dimensions: tuple[str, ...] = ()
    #: Values of ``more_dimensions`` for one resource (:meth:`of`); empty in the declaration.
    more_values: tuple[str, ...] = ()

    @property
    def dimensions(self) -> tuple[str, ...]:
        """Every dimension name the metric is published under, ``dimension`` first."""
        return (self.dimension, *self.more_dimensions)

    def of(self, *values: str) -> Metric:
        """This metric with the values of ``more_dimensions`` bound (e.g. the GSI's name), ready to query."""
        if len(values) != len(self.more_dimensions):
            raise ValueError(f"{self.name} takes values for {self.more_dimensions}, got {values}")
        return replace(self, more_values=values)

    def query(self, query_id: str, dimension_value: str, period: int, *, namespace: str | None = None) -> Any:
        """A ``GetMetricData`` ``MetricDataQueries`` entry for this metric of one resource."""
        if len(self.more_values) != len(self.more_dimensions):
            # CloudWatch would answer a query missing a dimension with no data at all, never an error.
            raise ValueError(f"{self.name} needs values for {self.more_dimensions}: bind them with .of()")
        more = zip(self.more_dimensions, self.more_values, strict=True)
        return {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": namespace or self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [
                        {"Name": self.dimension, "Value": dimension_value},
                        *({"Name": name, "Value": value} for name, value in more),
                    ],
                },
                "Period": period,
                "Stat": self.statistic,
            },
            "ReturnData": True,
        }


def _firehose(name: str, statistic: str, unit: str = "Count") -> Metric:
    return Metric(FIREHOSE, name, "DeliveryStreamName", statistic, unit)


# Keys are the names monitor and report use; values exactly what AWS publishes.
ALL: dict[str, Metric] = {
    # Ingestion (Direct PUT) and its per-second quotas, which Firehose publishes as metrics of their own.
    "incoming_records": _firehose("IncomingRecords", "Sum"),
    "incoming_bytes": _firehose("IncomingBytes", "Sum", "Bytes"),
    "incoming_put_requests": _firehose("IncomingPutRequests", "Sum"),
    "records_per_second_limit": _firehose("RecordsPerSecondLimit", "Minimum"),
    "bytes_per_second_limit": _firehose("BytesPerSecondLimit", "Minimum", "Bytes"),
    "put_requests_per_second_limit": _firehose("PutRequestsPerSecondLimit", "Minimum"),
    "throttled_records": _firehose("ThrottledRecords", "Sum"),
    # Delivery to S3.
    "delivery_success": _firehose("DeliveryToS3.Success", "Average"),
    "data_freshness": _firehose("DeliveryToS3.DataFreshness", "Maximum", "Seconds"),
    "delivered_records": _firehose("DeliveryToS3.Records", "Sum"),
    # Delivery to an Apache Iceberg table (lake_table_format = iceberg): Firehose DG "Monitor metrics" under
    # "Deliver data to Apache Iceberg Tables" (apache-iceberg-metric.html). Success is a sum of commits, not a ratio.
    "iceberg_delivery_success": _firehose("DeliveryToIceberg.Success", "Sum"),
    "iceberg_data_freshness": _firehose("DeliveryToIceberg.DataFreshness", "Maximum", "Seconds"),
    "iceberg_successful_rows": _firehose("DeliveryToIceberg.SuccessfulRowCount", "Sum"),
    "iceberg_failed_rows": _firehose("DeliveryToIceberg.FailedRowCount", "Sum"),
    # The transform Lambda, as Firehose sees it.
    "processing_success": _firehose("ExecuteProcessing.Success", "Average"),
    # Parquet conversion.
    "failed_conversion_records": _firehose("FailedConversion.Records", "Sum"),
    # Dynamic partitioning.
    "partition_count": _firehose("PartitionCount", "Maximum"),
    "partition_count_exceeded": _firehose("PartitionCountExceeded", "Maximum"),
    "active_partitions_limit": _firehose("ActivePartitionsLimit", "Minimum"),
    # Both Lambdas.
    "lambda_errors": Metric(LAMBDA, "Errors", "FunctionName", "Sum", "Count"),
    "lambda_throttles": Metric(LAMBDA, "Throttles", "FunctionName", "Sum", "Count"),
    # Queues (the DLQ, and the buffer queue with the queue trigger).
    "queue_visible": Metric(SQS, "ApproximateNumberOfMessagesVisible", "QueueName", "Maximum", "Count"),
    "queue_oldest_age": Metric(SQS, "ApproximateAgeOfOldestMessage", "QueueName", "Maximum", "Seconds"),
    # The buffer queue's backlog alarm (terraform/buffer_queue.tf) asks whether the depth never fell below its
    # threshold for 5 minutes (a sustained backlog, not a burst being drained); monitor reads the live depth.
    "queue_visible_sustained": Metric(SQS, "ApproximateNumberOfMessagesVisible", "QueueName", "Minimum", "Count"),
    # The transform's own EMF metric for records it returns as ProcessingFailed (Powertools' default
    # dimension `service`; see transform_lambda).
    "transform_records_failed": Metric(EMF_NAMESPACE, "TransformRecordsFailed", "service", "Sum", "Count"),
    # DynamoDB writes of the sales table, its GSI2 and the idempotency table ("DynamoDB Metrics and dimensions";
    # "CloudWatch throttling metrics", TroubleshootingThrottling-cloudwatch.html). TableName alone is the table
    # without its indexes; an index's needs GlobalSecondaryIndexName too. WriteThrottleEvents counts each throttled
    # table or index write; ConsumedWriteCapacityUnits' Sum / 300 s is the five-minute write rate.
    "dynamodb_write_throttle_events": Metric(DYNAMODB, "WriteThrottleEvents", "TableName", "Sum", "Count"),
    "dynamodb_consumed_write_units": Metric(DYNAMODB, "ConsumedWriteCapacityUnits", "TableName", "Sum", "Count"),
    "dynamodb_index_write_throttle_events": Metric(
        DYNAMODB, "WriteThrottleEvents", "TableName", "Sum", "Count", ("GlobalSecondaryIndexName",)
    ),
    "dynamodb_index_consumed_write_units": Metric(
        DYNAMODB, "ConsumedWriteCapacityUnits", "TableName", "Sum", "Count", ("GlobalSecondaryIndexName",)
    ),
}

#: The sales table's GSI that every sale writes (terraform/dynamodb.tf names it; the declaration test checks the
#: alarm watches this index).
SALES_TABLE_INDEX = "GSI2"

#: The ``service`` dimension value of the transform's EMF metrics (Powertools' POWERTOOLS_SERVICE_NAME).
TRANSFORM_SERVICE = "sales-transform"


def freshness_threshold_seconds(firehose: Mapping[str, Any] | None = None) -> int:
    """The freshness alarm's threshold: what normal delivery can take, by the same rule as the alarm.

    Dynamic partitioning can delay delivery up to 1.5 x the buffering interval; the transform's processor
    buffer adds its interval; a minute covers conversion and upload (terraform/monitoring.tf).
    """
    settings = firehose if firehose is not None else pipeline_config.load()["firehose"]
    buffering, processor = (
        int(settings["buffering_interval_seconds"]),
        int(settings["processor_buffer_interval_seconds"]),
    )
    return math.ceil(1.5 * buffering) + processor + 60


#: Direct PUT quotas per stream where the regions' own limit metrics are missing (Firehose developer guide,
#: "Amazon Data Firehose Quota"): records/s, bytes/s, requests/s.
_HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})


def documented_stream_limits(region: str | None) -> dict[str, float]:
    """The documented default per-second quotas of a Direct PUT stream in ``region``."""
    if region in _HIGH_QUOTA_REGIONS:
        return {"records": 500_000.0, "bytes": 5 * 1024 * 1024.0, "put_requests": 2_000.0}
    return {"records": 100_000.0, "bytes": 1024 * 1024.0, "put_requests": 1_000.0}
