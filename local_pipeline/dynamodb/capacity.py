"""On-demand write capacity per table and per GSI, counted per simulated second, as DynamoDB enforces it.

A write is a table write and the index writes it causes (:class:`Write`). It is accepted only when every one of
them fits (:meth:`CapacityLedger.admit`): in the second it lands in, the resource's capacity
(:meth:`WriteCapacity.capacity`: its warm throughput, or double a previous peak once that peak is 30 minutes old,
never above the per-table quota) and the 1,000 write units of one partition-key value. An index that cannot take
its write throttles the table's write ("For a table write to succeed, the provisioned throughput settings for the
table and all of its global secondary indexes must have enough write capacity to accommodate the write;
otherwise, the write to the table is throttled": "Provisioned throughput considerations for Global Secondary
Indexes", GSI.html; on-demand tables and their GSIs scale separately, each with its own warm throughput).
Every refused part counts as a throttle event of its resource (CloudWatch's ``WriteThrottleEvents``: "a PutItem
request on a table with three global secondary indexes would result in four events").

The model leaves out what the simulator cannot know: how a table's capacity is spread over its partitions
(a real table can throttle one hot partition below the table's capacity), burst capacity, and scaling sooner
than the documented 30 minutes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from local_pipeline.dynamodb.limits import (
    NEW_TABLE_WRITE_UNITS,
    PARTITION_KEY_WRITE_UNITS_PER_SECOND,
    PEAK_SCALING_SECONDS,
    TABLE_WRITE_QUOTA_UNITS,
)

__all__ = ["CapacityLedger", "Refusal", "Resource", "Write", "WriteCapacity"]

#: Seconds of per-key usage kept behind the newest second seen (callers' timelines run a few seconds apart).
_KEY_SECONDS_KEPT = 120

LimitType = Literal["KeyRangeThroughputExceeded", "AccountLimitExceeded"]


@dataclass(frozen=True)
class Resource:
    """A table, or one of its global secondary indexes."""

    table: str
    arn: str
    index: str | None = None

    @property
    def name(self) -> str:
        """``table`` or ``table/index/GSI``."""
        return self.table if self.index is None else f"{self.table}/index/{self.index}"

    @property
    def kind(self) -> Literal["Table", "Index"]:
        return "Table" if self.index is None else "Index"


@dataclass(frozen=True)
class Write:
    """One part of a request: ``units`` write units on ``resource`` for the partition-key value ``key``."""

    resource: Resource
    key: str
    units: int


@dataclass(frozen=True)
class Refusal:
    """Why a part of a request was refused: a ``ThrottlingReason`` (DynamoDB API Reference, "ThrottlingReason":
    ``ResourceType + OperationType + LimitType``, e.g. ``IndexWriteKeyRangeThroughputExceeded``)."""

    resource: Resource
    limit: LimitType

    @property
    def reason(self) -> str:
        return f"{self.resource.kind}Write{self.limit}"


class WriteCapacity:
    """One on-demand table's or index's write throughput: what it serves in each simulated second.

    It starts at ``warm_units`` (a new table's 4,000, or what ``update-table --warm-throughput`` or an earlier
    peak left) and grows to double the highest second it served once that second is ``scaling_seconds`` old;
    never above ``quota_units``.
    """

    def __init__(
        self,
        warm_units: int = NEW_TABLE_WRITE_UNITS,
        *,
        scaling_seconds: int = PEAK_SCALING_SECONDS,
        quota_units: int = TABLE_WRITE_QUOTA_UNITS,
    ) -> None:
        if warm_units < 1:
            raise ValueError(f"warm write capacity must be at least 1 write unit/s, got {warm_units}")
        self.warm_units = warm_units
        self.scaling_seconds = scaling_seconds
        self.quota_units = quota_units
        #: Write units served per simulated second.
        self.used: dict[int, int] = {}
        self._scaled_peak = 0
        self._scaled_through: int | None = None

    def capacity(self, second: int) -> int:
        """Write units the resource serves in ``second``."""
        self._mature(second - self.scaling_seconds)
        return self._serves(self._scaled_peak)

    def capacity_at(self, second: int) -> int:
        """What :meth:`capacity` was in ``second``, recomputed (for a report after the fact)."""
        through = second - self.scaling_seconds
        return self._serves(max((units for at, units in self.used.items() if at <= through), default=0))

    def _serves(self, previous_peak: int) -> int:
        """The write units a second is served with after ``previous_peak``: its double, at least the warm
        throughput, at most the quota."""
        return min(self.quota_units, max(self.warm_units, 2 * previous_peak))

    def _mature(self, through: int) -> None:
        """Take the seconds up to ``through`` into the previous peak (each second once)."""
        start = self._scaled_through
        if start is not None and through <= start:
            return
        if start is None or through - start > len(self.used):
            seconds = [second for second in self.used if second <= through and (start is None or second > start)]
        else:
            seconds = [second for second in range(start + 1, through + 1) if second in self.used]
        for second in seconds:
            self._scaled_peak = max(self._scaled_peak, self.used[second])
        self._scaled_through = through

    def room(self, second: int) -> int:
        """Write units still free in ``second``."""
        return self.capacity(second) - self.used.get(second, 0)

    def consume(self, second: int, units: int) -> None:
        self.used[second] = self.used.get(second, 0) + units

    @property
    def peak(self) -> int:
        """The most write units served in one second."""
        return max(self.used.values(), default=0)

    @property
    def total(self) -> int:
        return sum(self.used.values())


@dataclass
class ResourceStats:
    """What one table or index consumed and refused over a run."""

    resource: Resource
    capacity: WriteCapacity
    #: Refused writes by throttling reason.
    refusals: dict[str, int] = field(default_factory=dict)

    @property
    def throttle_events(self) -> int:
        """Refused writes of this resource (CloudWatch's ``WriteThrottleEvents``)."""
        return sum(self.refusals.values())


class CapacityLedger:
    """The write capacity of every table and index, and each partition-key value's share, per second.

    Thread-safe: the fan-out's pool threads write side by side.
    """

    def __init__(
        self,
        warm_units: int = NEW_TABLE_WRITE_UNITS,
        *,
        key_units: int = PARTITION_KEY_WRITE_UNITS_PER_SECOND,
        scaling_seconds: int = PEAK_SCALING_SECONDS,
        quota_units: int = TABLE_WRITE_QUOTA_UNITS,
    ) -> None:
        self.warm_units = warm_units
        self.key_units = key_units
        self._scaling_seconds = scaling_seconds
        self._quota_units = quota_units
        self.resources: dict[Resource, ResourceStats] = {}
        self._keys: dict[tuple[Resource, str], dict[int, int]] = {}
        self._pruned = 0
        self._lock = threading.Lock()

    def stats(self, resource: Resource) -> ResourceStats:
        """The resource's capacity and counters (created at its warm throughput on first use)."""
        stats = self.resources.get(resource)
        if stats is None:
            capacity = WriteCapacity(
                self.warm_units, scaling_seconds=self._scaling_seconds, quota_units=self._quota_units
            )
            stats = self.resources[resource] = ResourceStats(resource, capacity)
        return stats

    def admit(self, writes: Sequence[Write], second: int) -> list[Refusal]:
        """Consume ``writes`` (one request's parts) in ``second`` if every part fits; else consume nothing and
        return why each refused part was refused."""
        with self._lock:
            refusals = self._check(writes, second)
            if refusals:
                for refusal in refusals:
                    stats = self.stats(refusal.resource)
                    stats.refusals[refusal.reason] = stats.refusals.get(refusal.reason, 0) + 1
                return refusals
            for write in writes:
                self.stats(write.resource).capacity.consume(second, write.units)
                per_key = self._keys.setdefault((write.resource, write.key), {})
                per_key[second] = per_key.get(second, 0) + write.units
            self._forget(second)
            return []

    def refund(self, writes: Sequence[Write], second: int) -> None:
        """Give back ``writes`` consumed in ``second`` (a conditional write whose condition failed writes less)."""
        with self._lock:
            for write in writes:
                capacity = self.stats(write.resource).capacity
                capacity.used[second] = max(0, capacity.used.get(second, 0) - write.units)
                per_key = self._keys.get((write.resource, write.key))
                if per_key is not None and second in per_key:
                    per_key[second] = max(0, per_key[second] - write.units)

    def _check(self, writes: Sequence[Write], second: int) -> list[Refusal]:
        wanted: dict[Resource, int] = {}
        per_key: dict[tuple[Resource, str], int] = {}
        for write in writes:
            wanted[write.resource] = wanted.get(write.resource, 0) + write.units
            per_key[(write.resource, write.key)] = per_key.get((write.resource, write.key), 0) + write.units
        refused: dict[Resource, Refusal] = {}
        for (resource, key), units in per_key.items():
            used = self._keys.get((resource, key), {}).get(second, 0)
            if used + units > self.key_units:
                refused[resource] = Refusal(resource, "KeyRangeThroughputExceeded")
        for resource, units in wanted.items():
            if resource in refused:
                continue
            capacity = self.stats(resource).capacity
            if units > capacity.room(second):
                at_quota = capacity.capacity(second) >= capacity.quota_units
                limit: LimitType = "AccountLimitExceeded" if at_quota else "KeyRangeThroughputExceeded"
                refused[resource] = Refusal(resource, limit)
        return list(refused.values())

    def _forget(self, second: int) -> None:
        """Drop per-key usage of seconds long past (every second keeps its table-level total)."""
        if second < self._pruned + _KEY_SECONDS_KEPT:
            return
        self._pruned = second
        horizon = second - _KEY_SECONDS_KEPT
        for key in list(self._keys):
            usage = self._keys[key]
            for old in [at for at in usage if at < horizon]:
                del usage[old]
            if not usage:
                del self._keys[key]
