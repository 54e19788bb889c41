"""The local delivery stream: what moto accepts in a Firehose configuration and then ignores, implemented.

Path of a record, as in the service:
1. ``put_record_batch`` enforces the API limits (500 records, 4 MiB per call, 1,000 KiB per record:
   :mod:`.limits`, :func:`.quotas.check_batch`) and the Direct PUT quotas (:mod:`.quotas`).
2. The processor buffer collects records until its size or interval hint is met, then the transform Lambda
   is invoked and every record is routed by its result (:mod:`.transform`).
3. Dynamic partitioning, Parquet conversion, error records and the S3 writes (:mod:`.delivery`).

Time is a simulated clock in epoch milliseconds (:class:`~local_pipeline.clock.SimulatedClock`), so a 300 s
buffering interval costs no wall-clock time. ``AWS/Firehose`` metrics are aggregated per simulated minute
(:mod:`local_pipeline.metrics`) and put to CloudWatch (if a client is given) on :meth:`close`, or by the runner
with every other service's.

Direct PUT quotas (Amazon Data Firehose Developer Guide, "Amazon Data Firehose quota"): per stream and per
second, 500,000 records, 2,000 requests and 5 MiB in us-east-1, us-west-2 and eu-west-1; 100,000 records,
1,000 requests and 1 MiB elsewhere (:class:`~.quotas.DirectPutQuota`). They are enforced per simulated second,
over PutRecordBatch calls of every caller together: a call past the request quota fails as a whole with
``ServiceUnavailableException`` (a ``ClientError``, as boto3 raises it); entries past the record or byte
quota fail individually (``FailedPutCount``, per-entry ``ErrorCode`` ``ServiceUnavailableException``).
Each throttled record counts in ``ThrottledRecords``; the limits are published as ``RecordsPerSecondLimit``,
``PutRequestsPerSecondLimit`` and ``BytesPerSecondLimit``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from local_pipeline.clock import SimulatedClock
from local_pipeline.config import StreamConfig
from local_pipeline.context import ACCOUNT_ID, TRANSFORM_FUNCTION, function_arn
from local_pipeline.firehose.core import Incoming, StreamStats
from local_pipeline.firehose.delivery import PartitionKey
from local_pipeline.firehose.iceberg import IcebergDelivery
from local_pipeline.firehose.quotas import DirectPutQuota, QuotaLedger, check_batch, put_record_batch_error
from local_pipeline.firehose.transform import StreamProcessor, Transform
from local_pipeline.metrics import MetricsRecorder
from local_pipeline.parquet import ParquetConverter
from local_pipeline.prefixes import partition_key_names

if TYPE_CHECKING:  # pyiceberg loads in ~1 s: a Parquet run never imports it
    from local_pipeline.iceberg_table import LakeTable

__all__ = ["LocalDeliveryStream"]

_SLOW_DOWN = "Slow down."


class LocalDeliveryStream(StreamProcessor):
    """A Firehose DirectPut stream to S3 with a Lambda processor, Parquet conversion and dynamic partitioning.

    ``transform`` is called exactly as Firehose calls the transform Lambda (event, context). ``s3`` is a boto3
    S3 client (any object with ``put_object``); ``cloudwatch`` an optional client with ``put_metric_data``.
    ``quota`` defaults to the region's (:meth:`DirectPutQuota.for_region`). ``metrics`` is a shared recorder
    (the runner puts it); without one the stream keeps its own and puts it to ``cloudwatch`` on :meth:`close`.
    ``origin_of(data)`` may tell when the event behind a record arrived, for the delivery latency. ``iceberg``:
    the stream delivers to that Iceberg table (``destination = "iceberg"``) instead of Parquet objects in S3.
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
        transform_function_name: str = TRANSFORM_FUNCTION,
        quota: DirectPutQuota | None = None,
        metrics: MetricsRecorder | None = None,
        origin_of: Callable[[bytes], int | None] | None = None,
        iceberg: LakeTable | None = None,
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
        self._pending = []
        self._pending_bytes = 0
        self._partitions = {}
        self._quotas = QuotaLedger(quota or DirectPutQuota.for_region(region), clock)
        self._own_metrics = metrics is None
        self._metrics = metrics if metrics is not None else MetricsRecorder()
        self._origin_of = origin_of
        # The fan-out makes a batch's calls from a thread pool: one call at a time, as the service serialises them.
        self._lock = threading.RLock()
        self._sequence = 0
        self._key_names = partition_key_names(config.prefix) if iceberg is None else []
        if iceberg is not None:
            self._iceberg = IcebergDelivery(iceberg, config.glue_table, config.parquet_compression)
        #: Datapoints put to CloudWatch so far.
        self.metrics_put = 0

    @property
    def quota(self) -> DirectPutQuota:
        """The stream's Direct PUT quotas per second."""
        return self._quotas.quota

    @quota.setter
    def quota(self, quota: DirectPutQuota) -> None:
        self._quotas.quota = quota

    # -- ingestion -------------------------------------------------------------------------------------------

    def put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        """PutRecordBatch with the service's limits and quotas, which moto does not enforce."""
        with self._lock:
            return self._put_record_batch(DeliveryStreamName, Records)

    def _put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # noqa: N803
        if DeliveryStreamName != self.config.stream_name:
            raise put_record_batch_error(
                "ResourceNotFoundException", f"Firehose {DeliveryStreamName} under account {ACCOUNT_ID} not found."
            )
        check_batch(Records)
        self.advance_to(self._clock.now_ms)
        now = self._quotas.caller_now()
        second = self._quotas.usage(now)
        second.offered_requests += 1
        self.stats.peak_requests_per_second = max(self.stats.peak_requests_per_second, second.offered_requests)
        self._quota_metrics()
        if second.requests >= self.quota.requests_per_second:
            self.stats.throttled_requests += 1
            self.stats.throttled_records += len(Records)
            self._metric("ThrottledRecords", len(Records), "Count")
            raise put_record_batch_error("ServiceUnavailableException", _SLOW_DOWN)
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
            self._pending.append(Incoming(record_id, data, now, self._origin(data)))
            self._pending_bytes += len(data)
            accepted += 1
            accepted_bytes += len(data)
            responses.append({"RecordId": record_id})
        failed = len(Records) - accepted
        self.stats.put_requests += 1
        self.stats.incoming_records += accepted
        self.stats.incoming_bytes += accepted_bytes
        if accepted:
            self.stats.last_accepted_ms = max(self.stats.last_accepted_ms, now)
        self.stats.throttled_records += failed
        self._metric("IncomingPutRequests", 1, "Count")
        self._metric("IncomingRecords", accepted, "Count")
        self._metric("IncomingBytes", accepted_bytes, "Bytes")
        self._metric("ThrottledRecords", failed, "Count")
        while self._pending_bytes >= self.config.processor_buffer_size_bytes:
            self._invoke_next_batch()
        return {"FailedPutCount": failed, "Encrypted": False, "RequestResponses": responses}

    def _quota_metrics(self) -> None:
        self._metric("PutRequestsPerSecondLimit", self.quota.requests_per_second, "Count")
        self._metric("RecordsPerSecondLimit", self.quota.records_per_second, "Count")
        self._metric("BytesPerSecondLimit", self.quota.bytes_per_second, "Bytes")

    def _origin(self, data: bytes) -> int | None:
        return self._origin_of(data) if self._origin_of is not None else None

    # -- time ------------------------------------------------------------------------------------------------

    def new_invocation(self) -> None:
        """A new invocation of the caller starts now: every thread's waits so far no longer count."""
        with self._lock:
            self._quotas.new_invocation()

    def new_timeline(self, after_ms: int = 0) -> None:
        """The calling thread starts afresh, ``after_ms`` into the current invocation (a new chunk of calls, sent
        as if in parallel with the others that start there)."""
        with self._lock:
            self._quotas.new_timeline(after_ms)

    def wait(self, ms: int) -> None:
        """Let ``ms`` of simulated time pass for the calling thread only (a sender's backoff between resends).

        Concurrent invocations (and a batch's chunks, sent from parallel threads) back off side by side in AWS,
        so a wait moves the caller's own timeline, not the shared clock: its next call is counted against the
        quota of the second it lands in, ``ms`` later than the invocation's start plus its earlier waits.
        """
        with self._lock:
            self._quotas.wait(ms)

    def caller_now_ms(self) -> int:
        """The calling thread's simulated now: the shared clock plus what it waited in this invocation."""
        with self._lock:
            return self._quotas.caller_now()

    def longest_wait_ms(self) -> int:
        """How long the current invocation's longest timeline has waited on this stream's quotas (ms)."""
        with self._lock:
            return self._quotas.longest_wait()

    def next_due_ms(self) -> int | None:
        """The simulated moment of this stream's next buffer flush, or None."""
        with self._lock:
            due = self._next_due()
        return None if due is None else due[0]

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

    def _next_due(self) -> tuple[int, PartitionKey | None] | None:
        """The earliest ``(moment, partition)`` due for a flush; partition None means the processor buffer."""
        candidates: list[tuple[int, PartitionKey | None]] = []
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

    # -- metrics ---------------------------------------------------------------------------------------------

    def flush_metrics(self) -> int:
        """Put the stream's own aggregated ``AWS/Firehose`` datapoints, with their simulated timestamps (a
        shared recorder is the runner's to put); return how many were put."""
        if not self._own_metrics or self._cloudwatch is None:
            return 0
        count = self._metrics.put(self._cloudwatch, now_ms=self._metrics.last_ms)
        self.metrics_put += count
        return count
