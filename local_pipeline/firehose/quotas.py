"""What a PutRecordBatch call may carry, and the Direct PUT quotas counted per simulated second.

The API limits (:func:`check_batch`) reject a call as a whole, as the service does. The quotas
(:class:`QuotaLedger`) are counted per simulated second over the calls of every caller together: a call past
the request quota fails as a whole; entries past the record or byte quota fail one by one (the stream decides
which, see :meth:`~local_pipeline.firehose.stream.LocalDeliveryStream.put_record_batch`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local_pipeline.client_errors import client_error
from local_pipeline.clock import SimulatedClock
from local_pipeline.firehose.limits import (
    DEFAULT_REGION_QUOTA,
    HIGH_QUOTA_REGION_QUOTA,
    HIGH_QUOTA_REGIONS,
    PUT_RECORD_BATCH_MAX_BYTES,
    PUT_RECORD_BATCH_MAX_RECORDS,
    RECORD_MAX_BYTES,
)

__all__ = ["DirectPutQuota", "QuotaLedger", "SecondUsage", "check_batch", "put_record_batch_error"]

#: Seconds of quota usage kept behind the shared clock (a sender waits at most a few seconds in all).
_SECONDS_KEPT = 10


@dataclass(frozen=True)
class DirectPutQuota:
    """A stream's Direct PUT quotas per second (PutRecord and PutRecordBatch together)."""

    records_per_second: int
    requests_per_second: int
    bytes_per_second: int

    @classmethod
    def for_region(cls, region: str) -> DirectPutQuota:
        """The default quotas of a stream in ``region`` (:mod:`~local_pipeline.firehose.limits`)."""
        records, requests, size = HIGH_QUOTA_REGION_QUOTA if region in HIGH_QUOTA_REGIONS else DEFAULT_REGION_QUOTA
        return cls(records_per_second=records, requests_per_second=requests, bytes_per_second=size)


@dataclass
class SecondUsage:
    """Usage of the quotas in one simulated second."""

    at: int = -1
    offered_requests: int = 0
    requests: int = 0
    records: int = 0
    bytes: int = 0


def put_record_batch_error(code: str, message: str) -> ClientError:
    """The ``ClientError`` boto3 raises for a PutRecordBatch the service refused."""
    return client_error(code, message, "PutRecordBatch")


def check_batch(records: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a call past PutRecordBatch's limits with the error the service answers."""
    if not records:
        raise put_record_batch_error(
            "ValidationException",
            "1 validation error detected: Value at 'records' failed to "
            "satisfy constraint: Member must have length greater than or equal to 1",
        )
    if len(records) > PUT_RECORD_BATCH_MAX_RECORDS:
        raise put_record_batch_error(
            "ValidationException",
            f"1 validation error detected: Value at 'records' failed to satisfy constraint: Member must have "
            f"length less than or equal to {PUT_RECORD_BATCH_MAX_RECORDS}",
        )
    total = 0
    for index, record in enumerate(records):
        size = len(record["Data"])
        if size > RECORD_MAX_BYTES:
            raise put_record_batch_error(
                "ValidationException",
                f"1 validation error detected: Value at 'records.{index + 1}.member.data' failed to satisfy "
                f"constraint: Member must have length less than or equal to {RECORD_MAX_BYTES}",
            )
        total += size
    if total > PUT_RECORD_BATCH_MAX_BYTES:
        raise put_record_batch_error(
            "InvalidArgumentException", f"Records size exceeds {PUT_RECORD_BATCH_MAX_BYTES} bytes limit"
        )


class QuotaLedger:
    """Quota usage per simulated second, and each calling thread's own timeline of waits.

    Not thread-safe by itself: the stream calls it under its lock.
    """

    def __init__(self, quota: DirectPutQuota, clock: SimulatedClock) -> None:
        self.quota = quota
        self._clock = clock
        #: Quota usage per simulated second (a few recent ones: waiting callers run a little ahead).
        self._seconds: dict[int, SecondUsage] = {}
        #: Each calling thread's (invocation, ms waited) (see :meth:`wait`).
        self._waits = threading.local()
        self._invocation = 0
        #: The longest any timeline of the current invocation waited (parallel chunks: the invocation's extra time).
        self._longest_wait = 0

    def usage(self, now_ms: int) -> SecondUsage:
        """The quota usage of ``now_ms``'s second; callers that waited may be a few seconds ahead of the others."""
        second = now_ms // 1000
        usage = self._seconds.get(second)
        if usage is None:
            usage = self._seconds[second] = SecondUsage(at=second)
            for old in [at for at in self._seconds if at < self._clock.now_ms // 1000 - _SECONDS_KEPT]:
                del self._seconds[old]
        return usage

    def new_invocation(self) -> None:
        """A new invocation of the caller starts now: every thread's waits so far no longer count."""
        self._invocation += 1
        self._longest_wait = 0

    def longest_wait(self) -> int:
        """The longest any timeline of the current invocation has waited, in ms."""
        return self._longest_wait

    def new_timeline(self, after_ms: int = 0) -> None:
        """The calling thread starts afresh, ``after_ms`` into the current invocation (0: at its start)."""
        self._waits.state = (self._invocation, max(0, after_ms))

    def wait(self, ms: int) -> None:
        """Let ``ms`` of simulated time pass for the calling thread only."""
        invocation, waited = getattr(self._waits, "state", (self._invocation, 0))
        if invocation != self._invocation:
            waited = 0
        self._waits.state = (self._invocation, waited + max(0, ms))
        self._longest_wait = max(self._longest_wait, waited + max(0, ms))

    def caller_now(self) -> int:
        """The calling thread's simulated now: the shared clock plus what it waited in this invocation."""
        invocation, waited = getattr(self._waits, "state", (self._invocation, 0))
        return self._clock.now_ms + (waited if invocation == self._invocation else 0)
