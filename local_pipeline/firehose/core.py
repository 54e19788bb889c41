"""What every part of the simulated stream shares: its counters, a record in flight, and its metrics.

:class:`StreamBase` declares the state that :mod:`.delivery`, :mod:`.transform` and :mod:`.stream` build on
(each adds its own concern as a layer: delivery, then the processor above it, then ingestion and time); the
stream's ``__init__`` sets it all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from local_pipeline.clock import SimulatedClock
from local_pipeline.config import StreamConfig
from local_pipeline.metrics import MetricsRecorder

__all__ = ["Incoming", "StreamBase", "StreamStats"]


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
    #: The simulated moments the stream accepted its last record and wrote its last lake row (0: none yet).
    last_accepted_ms: int = 0
    last_delivered_ms: int = 0
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
class Incoming:
    """A record the stream accepted, waiting in the processor buffer."""

    record_id: str
    data: bytes
    arrival_ms: int
    origin_ms: int | None = None


class StreamBase:
    """The state every layer of the stream reads, and the ``AWS/Firehose`` metrics it records."""

    config: StreamConfig
    stats: StreamStats
    _clock: SimulatedClock
    _region: str
    _metrics: MetricsRecorder
    _s3: Any
    _bucket: str

    def _metric(self, name: str, value: float, unit: str) -> None:
        self._metrics.add(
            "AWS/Firehose",
            name,
            value,
            unit,
            self._clock.now_ms,
            {"DeliveryStreamName": self.config.stream_name},
        )
