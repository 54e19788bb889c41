"""The local delivery stream: what moto accepts in a Firehose configuration and then ignores, implemented.

Path of a record, as in the service:
1. ``put_record_batch`` enforces the API limits (500 records, 4 MiB per call, 1,000 KiB per record).
2. The processor buffer collects records until its size or interval hint is met, then the transform Lambda
   is invoked with a batch no larger than the processor buffer size. Invocation errors are retried
   ``NumberOfRetries`` times; then every record of the batch fails with ``Lambda.FunctionError``.
3. Each result is matched by record id: ``Ok`` goes on, ``Dropped`` is counted and discarded,
   ``ProcessingFailed``, a missing id and a duplicated id go to the error prefix (``processing-failed``), as
   does an ``Ok`` entry with invalid base64 data or partitionKeys that are not strings (``Lambda.InvalidResult``);
   an entry that is not an object with a string ``recordId`` matches no record (``Lambda.MissingRecordId``).
4. Dynamic partitioning evaluates the prefix with ``metadata.partitionKeys``; one buffer per partition, at
   most ``active_partitions_limit`` open at once (past it: error prefix, ``PartitionCountExceeded``).
5. A partition buffer is delivered when its size or interval hint is met (and at :meth:`close`): records are
   converted to Parquet with the Glue schema; records that do not fit go to ``format-conversion-failed``.

Time is a simulated clock in epoch milliseconds (:class:`SimulatedClock`), so a 300 s buffering interval costs
no wall-clock time. ``AWS/Firehose`` metrics are aggregated per simulated minute (:mod:`.metrics`) and put
to CloudWatch (if a client is given) on :meth:`close`, or by the runner with every other service's.

Direct PUT quotas (Amazon Data Firehose Developer Guide, "Amazon Data Firehose quota"): per stream and per
second, 500,000 records, 2,000 requests and 5 MiB in us-east-1, us-west-2 and eu-west-1; 100,000 records,
1,000 requests and 1 MiB elsewhere (:class:`DirectPutQuota`). They are enforced per simulated second, over
PutRecordBatch calls of every caller together: a call past the request quota fails as a whole with
``ServiceUnavailableException`` (a ``ClientError``, as boto3 raises it); entries past the record or byte
quota fail individually (``FailedPutCount``, per-entry ``ErrorCode`` ``ServiceUnavailableException``).
Each throttled record counts in ``ThrottledRecords``; the limits are published as ``RecordsPerSecondLimit``,
``PutRequestsPerSecondLimit`` and ``BytesPerSecondLimit``.
"""

from __future__ import annotations

import base64
import binascii
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from botocore.exceptions import ClientError

from fanout_lambda.adapters import MAX_BATCH_BYTES, MAX_BATCH_RECORDS, MAX_RECORD_BYTES
from local_pipeline.clock import SimulatedClock
from local_pipeline.config import StreamConfig
from local_pipeline.context import ACCOUNT_ID, LambdaContext, function_arn
from local_pipeline.lambda_service import INVOCATION_PAYLOAD_LIMIT
from local_pipeline.metrics import MetricsRecorder
from local_pipeline.parquet import ParquetConverter
from local_pipeline.prefixes import evaluate, object_key, partition_key_names

__all__ = [
    "HIGH_QUOTA_REGIONS",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "DirectPutQuota",
    "LocalDeliveryStream",
    "SimulatedClock",
    "StreamStats",
    "Transform",
]

LAMBDA_PAYLOAD_LIMIT = INVOCATION_PAYLOAD_LIMIT
#: Regions whose streams get the higher default Direct PUT quotas.
HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
_MIB = 1024 * 1024
_SLOW_DOWN = "Slow down."

#: Firehose retries a failed S3 delivery every 5 s while it keeps the data: 24 h for Direct PUT (see _put_object).
S3_RETRY_INTERVAL_MS = 5_000
S3_RETRY_LIMIT_MS = 24 * 60 * 60 * 1000

PROCESSING_FAILED = "processing-failed"
FORMAT_CONVERSION_FAILED = "format-conversion-failed"
#: The error prefix folder the buffering guide names for records past the active-partition limit.
PARTITION_EXCEEDED = "activePartitionExceeded"

_MESSAGES = {
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

_NOT_OK = {
    "Dropped": "Dropped",
    "ProcessingFailed": "Lambda.ProcessingFailedStatus",
    "Duplicated": "Lambda.DuplicatedRecordId",
}

Transform = Callable[[dict[str, Any], Any], Any]


@dataclass(frozen=True)
class DirectPutQuota:
    """A stream's Direct PUT quotas per second (PutRecord and PutRecordBatch together)."""

    records_per_second: int
    requests_per_second: int
    bytes_per_second: int

    @classmethod
    def for_region(cls, region: str) -> DirectPutQuota:
        """The default quotas of a stream in ``region`` (see the module docstring)."""
        if region in HIGH_QUOTA_REGIONS:
            return cls(records_per_second=500_000, requests_per_second=2_000, bytes_per_second=5 * _MIB)
        return cls(records_per_second=100_000, requests_per_second=1_000, bytes_per_second=1 * _MIB)


@dataclass
class StreamStats:
    """Counters the summary prints and the metrics mirror."""

    put_requests: int = 0
    throttled_requests: int = 0
    throttled_records: int = 0
    peak_requests_per_second: int = 0
    max_delivery_latency_ms: int = 0
    incoming_records: int = 0
    incoming_bytes: int = 0
    invocations: int = 0
    invocation_errors: int = 0
    records_ok: int = 0
    records_dropped: int = 0
    processing_failed: int = 0
    conversion_failed: int = 0
    partition_exceeded: int = 0
    rows_delivered: int = 0
    objects_written: int = 0
    error_objects_written: int = 0
    partitions: set[str] = field(default_factory=set)
    max_active_partitions: int = 0
    #: S3 PutObject attempts that failed and were retried, the longest an object waited for S3, and the records
    #: Firehose discarded after retrying for its whole retention (24 h of failures; not reachable below rate 1).
    s3_put_retries: int = 0
    s3_max_retry_wait_ms: int = 0
    s3_discarded_records: int = 0


@dataclass
class _Incoming:
    record_id: str
    data: bytes
    arrival_ms: int
    origin_ms: int | None = None


#: A partition buffer stays in memory up to this size, then spills to a temporary file: Firehose buffers up to
#: 128 MiB for 300 s per partition, which for a long burst is more than a laptop should hold in RAM.
PARTITION_SPOOL_BYTES = 1024 * 1024


@dataclass
class _Partition:
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


#: Seconds of quota usage kept behind the shared clock (a sender waits at most a few seconds in all).
_SECONDS_KEPT = 10


@dataclass
class _Second:
    """Usage of the quotas in one simulated second."""

    at: int = -1
    offered_requests: int = 0
    requests: int = 0
    records: int = 0
    bytes: int = 0


class LocalDeliveryStream:
    """A Firehose DirectPut stream to S3 with a Lambda processor, Parquet conversion and dynamic partitioning.

    ``transform`` is called exactly as Firehose calls the transform Lambda (event, context). ``s3`` is a boto3
    S3 client (any object with ``put_object``); ``cloudwatch`` an optional client with ``put_metric_data``.
    ``quota`` defaults to the region's (:meth:`DirectPutQuota.for_region`). ``metrics`` is a shared recorder
    (the runner puts it); without one the stream keeps its own and puts it to ``cloudwatch`` on :meth:`close`.
    ``origin_of(data)`` may tell when the event behind a record arrived, for the delivery latency.
    """

    def __init__(
        self,
        config: StreamConfig,
        *,
        transform: Transform,
        s3: Any,
        bucket: str,
        clock: SimulatedClock,
        cloudwatch: Any = None,
        region: str = "us-east-1",
        transform_function_name: str = "sales-transform-local",
        quota: DirectPutQuota | None = None,
        metrics: MetricsRecorder | None = None,
        origin_of: Callable[[bytes], int | None] | None = None,
    ) -> None:
        self.config = config
        self.stats = StreamStats()
        self._transform = transform
        self._s3 = s3
        self._bucket = bucket
        self._clock = clock
        self._cloudwatch = cloudwatch
        self._region = region
        self._function_name = transform_function_name
        self._lambda_arn = f"{function_arn(transform_function_name, region)}:$LATEST"
        self._stream_arn = f"arn:aws:firehose:{region}:{ACCOUNT_ID}:deliverystream/{config.stream_name}"
        self._converter = ParquetConverter(config.glue_table, config.parquet_compression)
        self._pending: list[_Incoming] = []
        self._pending_bytes = 0
        self._partitions: dict[tuple[tuple[str, str], ...], _Partition] = {}
        self.quota = quota or DirectPutQuota.for_region(region)
        self._own_metrics = metrics is None
        self._metrics = metrics if metrics is not None else MetricsRecorder()
        self._origin_of = origin_of
        #: Quota usage per simulated second (a few recent ones: waiting callers run a little ahead).
        self._seconds: dict[int, _Second] = {}
        #: Each calling thread's (invocation, ms waited) (see :meth:`wait`).
        self._waits = threading.local()
        self._invocation = 0
        # The fan-out makes a batch's calls from a thread pool: one call at a time, as the service serialises them.
        self._lock = threading.RLock()
        self._sequence = 0
        self._key_names = partition_key_names(config.prefix)
        #: Datapoints put to CloudWatch so far.
        self.metrics_put = 0

    # -- ingestion -------------------------------------------------------------------------------------------

    def put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        """PutRecordBatch with the service's limits and quotas, which moto does not enforce."""
        with self._lock:
            return self._put_record_batch(DeliveryStreamName, Records)

    def _put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if DeliveryStreamName != self.config.stream_name:
            raise _client_error(
                "ResourceNotFoundException", f"Firehose {DeliveryStreamName} under account {ACCOUNT_ID} not found."
            )
        self._check_batch(Records)
        self.advance_to(self._clock.now_ms)
        now = self._caller_now()
        second = self._usage(now)
        second.offered_requests += 1
        self.stats.peak_requests_per_second = max(self.stats.peak_requests_per_second, second.offered_requests)
        self._quota_metrics()
        if second.requests >= self.quota.requests_per_second:
            self.stats.throttled_requests += 1
            self.stats.throttled_records += len(Records)
            self._metric("ThrottledRecords", len(Records), "Count")
            raise _client_error("ServiceUnavailableException", _SLOW_DOWN)
        second.requests += 1
        responses: list[dict[str, str]] = []
        accepted = accepted_bytes = 0
        for record in Records:
            data = bytes(record["Data"])
            if (
                second.records + 1 > self.quota.records_per_second
                or second.bytes + len(data) > self.quota.bytes_per_second
            ):
                responses.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": _SLOW_DOWN})
                continue
            second.records += 1
            second.bytes += len(data)
            self._sequence += 1
            record_id = f"{self._sequence:056d}"
            self._pending.append(_Incoming(record_id, data, now, self._origin(data)))
            self._pending_bytes += len(data)
            accepted += 1
            accepted_bytes += len(data)
            responses.append({"RecordId": record_id})
        failed = len(Records) - accepted
        self.stats.put_requests += 1
        self.stats.incoming_records += accepted
        self.stats.incoming_bytes += accepted_bytes
        self.stats.throttled_records += failed
        self._metric("IncomingPutRequests", 1, "Count")
        self._metric("IncomingRecords", accepted, "Count")
        self._metric("IncomingBytes", accepted_bytes, "Bytes")
        self._metric("ThrottledRecords", failed, "Count")
        while self._pending_bytes >= self.config.processor_buffer_size_bytes:
            self._invoke_next_batch()
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    def _usage(self, now_ms: int) -> _Second:
        """The quota usage of ``now_ms``'s second; callers that waited may be a few seconds ahead of the others."""
        second = now_ms // 1000
        usage = self._seconds.get(second)
        if usage is None:
            usage = self._seconds[second] = _Second(at=second)
            for old in [at for at in self._seconds if at < self._clock.now_ms // 1000 - _SECONDS_KEPT]:
                del self._seconds[old]
        return usage

    def _quota_metrics(self) -> None:
        self._metric("PutRequestsPerSecondLimit", self.quota.requests_per_second, "Count")
        self._metric("RecordsPerSecondLimit", self.quota.records_per_second, "Count")
        self._metric("BytesPerSecondLimit", self.quota.bytes_per_second, "Bytes")

    def _origin(self, data: bytes) -> int | None:
        return self._origin_of(data) if self._origin_of is not None else None

    @staticmethod
    def _check_batch(records: Sequence[Mapping[str, Any]]) -> None:
        if not records:
            raise _client_error(
                "ValidationException",
                "1 validation error detected: Value at 'records' failed to "
                "satisfy constraint: Member must have length greater than or equal to 1",
            )
        if len(records) > MAX_BATCH_RECORDS:
            raise _client_error(
                "ValidationException",
                f"1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have "
                f"length less than or equal to {MAX_BATCH_RECORDS}",
            )
        total = 0
        for index, record in enumerate(records):
            size = len(record["Data"])
            if size > MAX_RECORD_BYTES:
                raise _client_error(
                    "ValidationException",
                    f"1 validation error detected: Value at 'records.{index + 1}.member.data' failed to satisfy "
                    f"constraint: Member must have length less than or equal to {MAX_RECORD_BYTES}",
                )
            total += size
        if total > MAX_BATCH_BYTES:
            raise _client_error("InvalidArgumentException", f"Records size exceeds {MAX_BATCH_BYTES} bytes limit")

    # -- time ------------------------------------------------------------------------------------------------

    def new_invocation(self) -> None:
        """A new invocation of the caller starts now: every thread's waits so far no longer count."""
        with self._lock:
            self._invocation += 1

    def new_timeline(self) -> None:
        """The calling thread starts afresh from the shared clock (a new chunk of calls, sent as if in parallel)."""
        with self._lock:
            self._waits.state = (self._invocation, 0)

    def wait(self, ms: int) -> None:
        """Let ``ms`` of simulated time pass for the calling thread only (a sender's backoff between resends).

        Concurrent invocations (and a batch's chunks, sent from parallel threads) back off side by side in AWS,
        so a wait moves the caller's own timeline, not the shared clock: its next call is counted against the
        quota of the second it lands in, ``ms`` later than the invocation's start plus its earlier waits.
        """
        with self._lock:
            invocation, waited = getattr(self._waits, "state", (self._invocation, 0))
            if invocation != self._invocation:
                waited = 0
            self._waits.state = (self._invocation, waited + max(0, ms))

    def _caller_now(self) -> int:
        """The calling thread's simulated now: the shared clock plus what it waited in this invocation."""
        invocation, waited = getattr(self._waits, "state", (self._invocation, 0))
        return self._clock.now_ms + (waited if invocation == self._invocation else 0)

    def advance_to(self, now_ms: int) -> None:
        """Let simulated time pass: every buffer whose interval elapses by ``now_ms`` is flushed at that moment.

        Flushes happen in time order at their due time, so a partition opened by a processor flush ages from
        that flush, not from whenever the caller next looked at the clock.
        """
        while True:
            due = self._next_due()
            if due is None or due[0] > now_ms:
                break
            self._clock.advance_to(due[0])
            if due[1] is None:
                while self._pending:
                    self._invoke_next_batch()
            else:
                self._deliver(due[1])
        self._clock.advance_to(now_ms)

    def _next_due(self) -> tuple[int, tuple[tuple[str, str], ...] | None] | None:
        """The earliest ``(moment, partition)`` due for a flush; partition None means the processor buffer."""
        candidates: list[tuple[int, tuple[tuple[str, str], ...] | None]] = []
        if self._pending:
            candidates.append(
                (self._pending[0].arrival_ms + self.config.processor_buffer_interval_seconds * 1000, None)
            )
        interval = self.config.buffering_interval_seconds * 1000
        candidates += [(partition.opened_ms + interval, key) for key, partition in self._partitions.items()]
        return min(candidates, key=lambda item: item[0]) if candidates else None

    def close(self) -> None:
        """End of the run: flush every buffer (Firehose would, once the intervals elapse) and put the metrics."""
        while self._pending:
            self._invoke_next_batch()
        for key in list(self._partitions):
            self._deliver(key)
        self.flush_metrics()

    # -- the processor ---------------------------------------------------------------------------------------

    def _invoke_next_batch(self) -> None:
        batch: list[_Incoming] = []
        size = 0
        limit = self.config.processor_buffer_size_bytes
        while self._pending and (not batch or size + len(self._pending[0].data) <= limit):
            item = self._pending.pop(0)
            batch.append(item)
            size += len(item.data)
        self._pending_bytes -= size
        self.process_batch(batch)

    def process_batch(self, batch: Sequence[_Incoming]) -> None:
        """Invoke the transform for one batch (with retries) and route every record by its result."""
        event = {
            "invocationId": str(uuid.uuid4()),
            "deliveryStreamArn": self._stream_arn,
            "region": self._region,
            "records": [
                {
                    "recordId": item.record_id,
                    "approximateArrivalTimestamp": item.arrival_ms,
                    "data": base64.b64encode(item.data).decode("ascii"),
                }
                for item in batch
            ],
        }
        attempts = 0
        response: Any = None
        while attempts <= self.config.processor_number_of_retries:
            attempts += 1
            response = self._invoke(event)
            if response is not None:
                break
        if response is None:
            self._fail(batch, "Lambda.FunctionError", attempts)
            return
        self._route(batch, response["records"])

    def _invoke(self, event: dict[str, Any]) -> dict[str, Any] | None:
        self.stats.invocations += 1
        started = time.perf_counter()
        context = LambdaContext(self._function_name, region=self._region, timeout_ms=300_000)
        try:
            response = self._transform(event, context)
            valid = _valid_response(response)
        except Exception:
            valid = False
            response = None
        self._metric("ExecuteProcessing.Duration", (time.perf_counter() - started) * 1000, "Milliseconds")
        self._metric("ExecuteProcessing.Success", 1 if valid else 0, "Count")
        if not valid:
            self.stats.invocation_errors += 1
            return None
        return dict(response)

    def _route(self, batch: Sequence[_Incoming], results: Sequence[Any]) -> None:
        by_id: dict[str, Mapping[str, Any]] = {}
        duplicated: set[str] = set()
        for result in results:
            # An entry that is not an object with a string recordId cannot be matched to a record: the record it
            # was meant for is then missing from the response (Lambda.MissingRecordId), as in the service.
            if not isinstance(result, Mapping) or not isinstance(result.get("recordId"), str):
                continue
            record_id = result["recordId"]
            if record_id in by_id:
                duplicated.add(record_id)
            by_id[record_id] = result
        failures: dict[str, list[_Incoming]] = {}
        succeeded_records = succeeded_bytes = 0
        for item in batch:
            code = self._route_one(item, by_id.get(item.record_id), item.record_id in duplicated)
            if code is None or code == "Dropped":
                # SucceedProcessing counts every record the function processed successfully: Ok and Dropped.
                succeeded_records += 1
                succeeded_bytes += len(item.data)
            if code is not None and code != "Dropped":
                failures.setdefault(code, []).append(item)
        self._metric("SucceedProcessing.Records", succeeded_records, "Count")
        self._metric("SucceedProcessing.Bytes", succeeded_bytes, "Bytes")
        for code, items in failures.items():
            self._fail(items, code, 1)

    def _route_one(self, item: _Incoming, result: Mapping[str, Any] | None, duplicated: bool) -> str | None:
        """Send one record on; return None when it was buffered, else "Dropped" or the error code."""
        if result is None:
            return "Lambda.MissingRecordId"
        outcome = "Duplicated" if duplicated else result.get("result")
        if outcome != "Ok":
            if outcome == "Dropped":
                self.stats.records_dropped += 1
            return _NOT_OK.get(str(outcome), "Lambda.InvalidResult")
        keys = _partition_keys(result.get("metadata"))
        data = _decoded(result.get("data"))
        if keys is None or data is None:
            return "Lambda.InvalidResult"
        if any(name not in keys for name in self._key_names):
            return "DynamicPartitioning.PartitionKeyMissing"
        self.stats.records_ok += 1
        self._buffer(item, data, keys)
        return None

    def _fail(self, items: Sequence[_Incoming], code: str, attempts: int) -> None:
        self.stats.processing_failed += len(items)
        ending = self._clock.now_ms
        lines = [
            {
                "attemptsMade": attempts,
                "arrivalTimestamp": item.arrival_ms,
                "errorCode": code,
                "errorMessage": _MESSAGES.get(code, code),
                "attemptEndingTimestamp": ending,
                "rawData": base64.b64encode(item.data).decode("ascii"),
                "lambdaArn": self._lambda_arn,
            }
            for item in items
        ]
        self._write_errors(PROCESSING_FAILED, lines, min(item.arrival_ms for item in items))

    # -- partitions and delivery -----------------------------------------------------------------------------

    def _buffer(self, item: _Incoming, data: bytes, keys: dict[str, str]) -> None:
        key = tuple(sorted(keys.items()))
        partition = self._partitions.get(key)
        if partition is None:
            if len(self._partitions) >= self.config.active_partitions_limit:
                self.stats.partition_exceeded += 1
                self._metric("PartitionCountExceeded", 1, "Count")
                self._write_partition_exceeded(item, data)
                return
            partition = self._partitions[key] = _Partition(keys, self._clock.now_ms)
            self.stats.max_active_partitions = max(self.stats.max_active_partitions, len(self._partitions))
            self._metric("PartitionCount", len(self._partitions), "Count")
        partition.append(data, item.arrival_ms)
        if item.origin_ms is not None and (
            partition.oldest_origin_ms is None or item.origin_ms < partition.oldest_origin_ms
        ):
            partition.oldest_origin_ms = item.origin_ms
        if partition.size >= self.config.buffering_size_bytes:
            self._deliver(key)

    def _write_partition_exceeded(self, item: _Incoming, data: bytes) -> None:
        line = {
            "attemptsMade": 1,
            "arrivalTimestamp": item.arrival_ms,
            "errorCode": "PartitionCountExceeded",
            "errorMessage": _MESSAGES["PartitionCountExceeded"],
            "attemptEndingTimestamp": self._clock.now_ms,
            "rawData": base64.b64encode(data).decode("ascii"),
        }
        self._write_errors(PARTITION_EXCEEDED, [line], item.arrival_ms)

    def _deliver(self, key: tuple[tuple[str, str], ...]) -> None:
        partition = self._partitions.pop(key)
        oldest = min(partition.arrivals)
        prefix = evaluate(self.config.prefix, timestamp=_utc(oldest), partition_keys=partition.keys)
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

    def _conversion_failed(self, partition: _Partition, records: Sequence[bytes], failures: Sequence[Any]) -> None:
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
        prefix = evaluate(self.config.error_output_prefix, timestamp=_utc(oldest_ms), error_output_type=error_type)
        body = b"".join(orjson.dumps(line) + b"\n" for line in lines)
        if self._put_object(prefix, body, records=len(lines)) is not None:
            self.stats.error_objects_written += 1

    def _put_object(self, prefix: str, body: bytes, file_extension: str = "", records: int = 0) -> str | None:
        """Write one object; error objects hold JSON lines, not Parquet, so they get no format extension.

        A failed PutObject is retried as Firehose retries an S3 delivery: every 5 seconds, for as long as it
        keeps the records (24 hours for Direct PUT), then the data is discarded (Amazon Data Firehose Developer
        Guide, "Handling data delivery failure" (Amazon S3) and "Troubleshoot errors in Amazon Data Firehose").
        The waits are counted, not spent on the simulated clock. Returns the key, or None if discarded.
        """
        key = object_key(
            prefix,
            stream_name=self.config.stream_name,
            stream_version=self.config.stream_version,
            delivered_at=_utc(self._clock.now_ms),
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

    # -- metrics ---------------------------------------------------------------------------------------------

    def _metric(self, name: str, value: float, unit: str) -> None:
        self._metrics.add(
            "AWS/Firehose",
            name,
            value,
            unit,
            self._clock.now_ms,
            {"DeliveryStreamName": self.config.stream_name},
        )

    def flush_metrics(self) -> int:
        """Put the stream's own aggregated ``AWS/Firehose`` datapoints, with their simulated timestamps (a
        shared recorder is the runner's to put); return how many were put."""
        if not self._own_metrics or self._cloudwatch is None:
            return 0
        count = self._metrics.put(self._cloudwatch, now_ms=self._metrics.last_ms)
        self.metrics_put += count
        return count


def _valid_response(response: Any) -> bool:
    if not isinstance(response, Mapping) or not isinstance(response.get("records"), list):
        return False
    # The response of a real invocation is capped at 6 MB; a bigger one is a function error.
    return len(orjson.dumps(response)) <= LAMBDA_PAYLOAD_LIMIT


def _partition_keys(metadata: Any) -> dict[str, str] | None:
    """``metadata.partitionKeys`` as a dict, ``{}`` when absent, None when not a map of strings to strings."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        return None
    raw = metadata.get("partitionKeys")
    if raw is None:
        return {}
    if not isinstance(raw, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        return None
    return dict(raw)


def _decoded(data: Any) -> bytes | None:
    """The record's ``data`` decoded, or None when it is not a string of valid base64."""
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _client_error(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "PutRecordBatch")
