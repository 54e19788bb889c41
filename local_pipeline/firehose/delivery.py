"""Partitions and delivery: buffering per partition, Parquet objects, error records and S3 writes.

Dynamic partitioning evaluates the prefix with ``metadata.partitionKeys``; one buffer per partition, at most
``active_partitions_limit`` open at once (past it: error prefix, ``PartitionCountExceeded``). A partition
buffer is delivered when its size or interval hint is met (and at close): records are converted to Parquet
with the Glue schema; records that do not fit go to ``format-conversion-failed``. Error records are JSON
lines under the error prefix, one object per failure type and flush.
"""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from botocore.exceptions import ClientError

from local_pipeline.context import ACCOUNT_ID
from local_pipeline.firehose.core import Incoming, StreamBase
from local_pipeline.firehose.iceberg import ICEBERG_FAILED, IcebergDelivery
from local_pipeline.firehose.limits import S3_RETRY_INTERVAL_MS, S3_RETRY_LIMIT_MS
from local_pipeline.parquet import ParquetConverter
from local_pipeline.prefixes import evaluate, object_key

__all__ = [
    "ERROR_MESSAGES",
    "FORMAT_CONVERSION_FAILED",
    "PARTITION_EXCEEDED",
    "PARTITION_SPOOL_BYTES",
    "PROCESSING_FAILED",
    "Partition",
    "PartitionKey",
]

PROCESSING_FAILED = "processing-failed"
FORMAT_CONVERSION_FAILED = "format-conversion-failed"
#: The error prefix folder the buffering guide names for records past the active-partition limit.
PARTITION_EXCEEDED = "activePartitionExceeded"

#: The ``errorMessage`` of an error record, by ``errorCode``.
ERROR_MESSAGES = {
    "Lambda.FunctionError": "The Lambda function was successfully invoked but it returned an error result.",
    "Lambda.MissingRecordId": (
        "One or more record Ids were not returned. Ensure that the Lambda function returns all received record Ids."
    ),
    "Lambda.DuplicatedRecordId": (
        "One or more record Ids were returned more than once. Ensure that the Lambda function returns unique record"
        " Ids for each record."
    ),
    "Lambda.ProcessingFailedStatus": "The Lambda function returned the ProcessingFailed status for the record.",
    # Lambda.InvalidResult is this runtime's own code (AWS documents no code for these cases): a result other than
    # Ok/Dropped/ProcessingFailed, or an Ok entry whose data is not base64 or whose partitionKeys are not a map
    # of strings to strings.
    "Lambda.InvalidResult": (
        "The Lambda function returned an invalid record result: a result other than Ok, Dropped or"
        " ProcessingFailed, data that is not valid base64, or partitionKeys that are not a map of strings."
    ),
    "DynamicPartitioning.PartitionKeyMissing": (
        "The Lambda function returned the record without a partition key the S3 prefix refers to."
    ),
    "PartitionCountExceeded": "The number of active partitions has exceeded the configured limit",
}

#: A partition buffer stays in memory up to this size, then spills to a temporary file: Firehose buffers up to
#: 128 MiB for 300 s per partition, which for a long burst is more than a laptop should hold in RAM.
PARTITION_SPOOL_BYTES = 1024 * 1024

#: A partition's identity: its keys, sorted.
PartitionKey = tuple[tuple[str, str], ...]


@dataclass
class Partition:
    """The buffer of one partition: its records, spooled to a file past :data:`PARTITION_SPOOL_BYTES`."""

    keys: dict[str, str]
    opened_ms: int
    lengths: list[int] = field(default_factory=list)
    arrivals: list[int] = field(default_factory=list)
    size: int = 0
    oldest_origin_ms: int | None = None
    spool: IO[bytes] = field(default_factory=lambda: tempfile.SpooledTemporaryFile(PARTITION_SPOOL_BYTES))  # noqa: SIM115

    def append(self, data: bytes, arrival_ms: int) -> None:
        """Buffer one record."""
        self.spool.write(data)
        self.lengths.append(len(data))
        self.arrivals.append(arrival_ms)
        self.size += len(data)

    def take(self) -> list[bytes]:
        """The buffered records, in order; the buffer is released."""
        self.spool.seek(0)
        records = [self.spool.read(length) for length in self.lengths]
        self.spool.close()
        return records


class StreamDelivery(StreamBase):
    """The stream's delivery layer: partition buffers, conversion, error records and PutObject with retries."""

    _converter: ParquetConverter
    _partitions: dict[PartitionKey, Partition]
    #: Set when the stream delivers to an Iceberg table: then one buffer, no dynamic partitions.
    _iceberg: IcebergDelivery | None = None

    def _buffer(self, item: Incoming, data: bytes, keys: dict[str, str]) -> None:
        iceberg = self._iceberg is not None
        key = () if iceberg else tuple(sorted(keys.items()))
        partition = self._partitions.get(key)
        if partition is None:
            if not iceberg and len(self._partitions) >= self.config.active_partitions_limit:
                self.stats.partition_exceeded += 1
                self._metric("PartitionCountExceeded", 1, "Count")
                self._write_partition_exceeded(item, data)
                return
            partition = self._partitions[key] = Partition(keys, self._clock.now_ms)
            if not iceberg:
                self.stats.max_active_partitions = max(self.stats.max_active_partitions, len(self._partitions))
                self._metric("PartitionCount", len(self._partitions), "Count")
        partition.append(data, item.arrival_ms)
        if item.origin_ms is not None and (
            partition.oldest_origin_ms is None or item.origin_ms < partition.oldest_origin_ms
        ):
            partition.oldest_origin_ms = item.origin_ms
        if partition.size >= self.config.buffering_size_bytes:
            self._deliver(key)

    def _write_partition_exceeded(self, item: Incoming, data: bytes) -> None:
        line = {
            "attemptsMade": 1,
            "arrivalTimestamp": item.arrival_ms,
            "errorCode": "PartitionCountExceeded",
            "errorMessage": ERROR_MESSAGES["PartitionCountExceeded"],
            "attemptEndingTimestamp": self._clock.now_ms,
            "rawData": base64.b64encode(data).decode("ascii"),
        }
        self._write_errors(PARTITION_EXCEEDED, [line], item.arrival_ms)

    def _deliver(self, key: PartitionKey) -> None:
        partition = self._partitions.pop(key)
        if self._iceberg is not None:
            self._deliver_to_iceberg(self._iceberg, partition)
            return
        oldest = min(partition.arrivals)
        prefix = evaluate(self.config.prefix, timestamp=utc(oldest), partition_keys=partition.keys)
        records = partition.take()
        converted = self._converter.convert(records)
        if converted.failures:
            self._conversion_failed(partition, records, converted.failures)
        bytes_ok = partition.size - sum(len(records[f.index]) for f in converted.failures)
        self._metric("SucceedConversion.Records", len(records) - len(converted.failures), "Count")
        self._metric("SucceedConversion.Bytes", bytes_ok, "Bytes")
        if converted.parquet is None:
            return
        body = converted.parquet
        if self._put_object(prefix, body, self.config.file_extension, records=converted.rows) is None:
            return
        self.stats.rows_delivered += converted.rows
        if converted.rows:
            self.stats.last_delivered_ms = max(self.stats.last_delivered_ms, self._clock.now_ms)
        self.stats.objects_written += 1
        origin = partition.oldest_origin_ms if partition.oldest_origin_ms is not None else oldest
        self.stats.max_delivery_latency_ms = max(self.stats.max_delivery_latency_ms, self._clock.now_ms - origin)
        self.stats.partitions.add(prefix)
        self._metric("DeliveryToS3.Success", 1, "Count")
        self._metric("DeliveryToS3.Records", converted.rows, "Count")
        self._metric("DeliveryToS3.Bytes", len(body), "Bytes")
        self._metric("DeliveryToS3.ObjectCount", 1, "Count")
        self._metric("DeliveryToS3.DataFreshness", (self._clock.now_ms - oldest) / 1000, "Seconds")
        # 0 on a normal delivery, 1 (in _buffer) when a record found the active-partition limit reached.
        self._metric("PartitionCountExceeded", 0, "Count")

    def _deliver_to_iceberg(self, iceberg: IcebergDelivery, partition: Partition) -> None:
        """One commit of the buffer to the Iceberg table; refused records to the error prefix."""
        oldest = min(partition.arrivals)
        records = partition.take()
        self._metric("DeliveryToIceberg.IncomingRowCount", len(records), "Count")
        outcome = iceberg.deliver(records)
        self._metric("DeliveryToIceberg.FailedRowCount", len(outcome.failures), "Count")
        if outcome.failures:
            self.stats.conversion_failed += len(outcome.failures)
            lines = [
                {
                    "attemptsMade": 1,
                    "arrivalTimestamp": partition.arrivals[failure.index],
                    "errorCode": failure.error_code,
                    "errorMessage": failure.message,
                    "attemptEndingTimestamp": self._clock.now_ms,
                    "rawData": base64.b64encode(records[failure.index]).decode("ascii"),
                }
                for failure in outcome.failures
            ]
            self._write_errors(ICEBERG_FAILED, lines, min(partition.arrivals[f.index] for f in outcome.failures))
        if not outcome.rows:
            return
        self.stats.rows_delivered += outcome.rows
        self.stats.last_delivered_ms = max(self.stats.last_delivered_ms, self._clock.now_ms)
        self.stats.objects_written += 1  # one commit
        self.stats.partitions |= outcome.partitions
        origin = partition.oldest_origin_ms if partition.oldest_origin_ms is not None else oldest
        self.stats.max_delivery_latency_ms = max(self.stats.max_delivery_latency_ms, self._clock.now_ms - origin)
        self._metric("DeliveryToIceberg.Success", 1, "Count")
        self._metric("DeliveryToIceberg.SuccessfulRowCount", outcome.rows, "Count")
        self._metric("DeliveryToIceberg.Bytes", outcome.bytes, "Bytes")
        self._metric("DeliveryToIceberg.DataFreshness", (self._clock.now_ms - oldest) / 1000, "Seconds")

    def _conversion_failed(self, partition: Partition, records: Sequence[bytes], failures: Sequence[Any]) -> None:
        self.stats.conversion_failed += len(failures)
        glue = self.config.glue_table
        lines = []
        for failure in failures:
            data = records[failure.index]
            lines.append(
                {
                    "attemptsMade": 1,
                    "arrivalTimestamp": partition.arrivals[failure.index],
                    # Capitalised, unlike the processing-failed envelope: the schema on AWS's "Handling errors
                    # for data format conversion" page reads ErrorCode / ErrorMessage (checked again in review).
                    "ErrorCode": failure.error_code,
                    "ErrorMessage": failure.message,
                    "attemptEndingTimestamp": self._clock.now_ms,
                    "rawData": base64.b64encode(data).decode("ascii"),
                    "sequenceNumber": str(failure.index),
                    "subSequenceNumber": 0,
                    "dataCatalogTable": {
                        "catalogId": ACCOUNT_ID,
                        "databaseName": glue["database"],
                        "tableName": glue["table"],
                        "region": self._region,
                        "versionId": "LATEST",
                        "catalogArn": f"arn:aws:glue:{self._region}:{ACCOUNT_ID}:catalog",
                    },
                }
            )
            self._metric("FailedConversion.Records", 1, "Count")
            self._metric("FailedConversion.Bytes", len(data), "Bytes")
        # The error object's !{timestamp:...} is evaluated on the oldest of the records it holds, as for any object.
        oldest_failed = min(partition.arrivals[failure.index] for failure in failures)
        self._write_errors(FORMAT_CONVERSION_FAILED, lines, oldest_failed)

    def _write_errors(self, error_type: str, lines: Sequence[Mapping[str, Any]], oldest_ms: int) -> None:
        prefix = evaluate(self.config.error_output_prefix, timestamp=utc(oldest_ms), error_output_type=error_type)
        body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        if self._put_object(prefix, body, records=len(lines)) is not None:
            self.stats.error_objects_written += 1

    def _put_object(self, prefix: str, body: bytes, file_extension: str = "", records: int = 0) -> str | None:
        """Write one object; error objects hold JSON lines, not Parquet, so they get no format extension.

        A failed PutObject is retried as Firehose retries an S3 delivery: every 5 seconds, for as long as it
        keeps the records (24 hours for Direct PUT), then the data is discarded (:mod:`.limits`).
        The waits are counted, not spent on the simulated clock. Returns the key, or None if discarded.
        """
        key = object_key(
            prefix,
            stream_name=self.config.stream_name,
            stream_version=self.config.stream_version,
            delivered_at=utc(self._clock.now_ms),
            file_extension=file_extension,
        )
        waited_ms = 0
        while True:
            try:
                self._s3.put_object(Bucket=self._bucket, Key=key, Body=body)
            except ClientError:
                if waited_ms >= S3_RETRY_LIMIT_MS:
                    self.stats.s3_discarded_records += records
                    return None
                self.stats.s3_put_retries += 1
                waited_ms += S3_RETRY_INTERVAL_MS
                continue
            self.stats.s3_max_retry_wait_ms = max(self.stats.s3_max_retry_wait_ms, waited_ms)
            return key


def utc(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime (what the prefix expressions are evaluated on)."""
    return datetime.fromtimestamp(ms / 1000, UTC)
