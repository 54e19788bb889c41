"""The fan-out's DynamoDB client in a local run: every write sized and admitted against the tables' capacity.

moto accepts any rate of writes. :class:`CapacityLimitedDynamoDB` stands between the fan-out and moto's
DynamoDB and, for each write, works out what DynamoDB would bill and check (:mod:`.sizes`): the table write at
the larger of the item before and after (a delete at the deleted item's size; a conditional write whose condition
fails at the existing item's size, at least one unit: "DynamoDB read and write operations",
read-write-operations.html), and each GSI write the item causes ("Provisioned throughput considerations for
Global Secondary Indexes", GSI.html: a new index entry is one write; a changed index key is two, a delete and a
put; a removed entry is one delete; sized at the projected entry). It then asks the :class:`~.capacity.
CapacityLedger` whether the second the call lands in (the calling thread's simulated now) has room, and answers
as DynamoDB does when it has not:

- PutItem / DeleteItem: ``ProvisionedThroughputExceededException`` (a partition-key value's or the table's or
  index's current capacity) or ``ThrottlingException`` (the per-table account quota), each with
  ``ThrottlingReasons`` naming the reason and the table's or index's ARN (API Reference, "ThrottlingReason");
- BatchWriteItem: the requests that did not fit come back in ``UnprocessedItems``; only when none fit does the
  call raise ``ProvisionedThroughputExceededException`` ("BatchWriteItem", API Reference).

It also puts the ``AWS/DynamoDB`` metrics operators watch: ``ConsumedWriteCapacityUnits`` and
``WriteThrottleEvents`` per table and per index, ``ThrottledRequests`` per table and operation (which, for
BatchWriteItem, counts only a call whose every request was throttled: "DynamoDB metrics and dimensions").

The sizes of the items already written are remembered (per key: write units and index entries), so a rewrite
or delete is billed as DynamoDB bills it. Reads pass through unmetered; UpdateItem and the transactional writes,
which the fan-out never calls, are refused rather than let through unmetered.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from local_pipeline.client_errors import client_error
from local_pipeline.dynamodb.capacity import CapacityLedger, Refusal, Resource, Write
from local_pipeline.dynamodb.sizes import item_size, project, write_units
from local_pipeline.metrics import MetricsRecorder

__all__ = ["CapacityLimitedDynamoDB", "throttling_error"]

_NAMESPACE = "AWS/DynamoDB"
#: The message DynamoDB gives an on-demand table's throttled write.
_CAPACITY_MESSAGE = (
    "Throughput exceeds the current capacity of your table or index. DynamoDB is automatically scaling your table "
    "or index so please try again shortly. If exceptions persist, check if you have a hot key: "
    "https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/bp-partition-key-design.html"
)
_QUOTA_MESSAGE = "Throughput exceeds the current throughput limit for your account. Please contact AWS Support."
_UNMETERED_WRITES = frozenset({"update_item", "transact_write_items", "execute_statement", "batch_execute_statement"})


@dataclass(frozen=True)
class _Index:
    resource: Resource
    keys: tuple[str, ...]
    #: The attributes the index holds (None: all of them).
    projected: tuple[str, ...] | None


@dataclass(frozen=True)
class _Schema:
    table: Resource
    keys: tuple[str, ...]
    indexes: tuple[_Index, ...]


@dataclass(frozen=True)
class _Entry:
    """What an item holds in one index: its partition-key value, whole index key and write units."""

    partition: str
    key: tuple[str, ...]
    units: int


@dataclass(frozen=True)
class _Footprint:
    """What DynamoDB holds of an item: its write units and its index entries."""

    units: int
    entries: Mapping[str, _Entry]


def throttling_error(refusals: Sequence[Refusal], operation: str) -> ClientError:
    """The error DynamoDB answers a throttled write with, ``ThrottlingReasons`` included."""
    quota = any(refusal.limit == "AccountLimitExceeded" for refusal in refusals)
    code = "ThrottlingException" if quota else "ProvisionedThroughputExceededException"
    error = client_error(code, _QUOTA_MESSAGE if quota else _CAPACITY_MESSAGE, operation, 400)
    reasons = {(refusal.reason, refusal.resource.arn) for refusal in refusals}
    error.response["ThrottlingReasons"] = [{"reason": reason, "resource": arn} for reason, arn in sorted(reasons)]
    return error


class CapacityLimitedDynamoDB:
    """A DynamoDB client whose writes meet the tables' write capacity (see the module docstring)."""

    def __init__(
        self,
        client: Any,
        ledger: CapacityLedger,
        *,
        now_ms: Callable[[], int],
        metrics: MetricsRecorder | None = None,
    ) -> None:
        self._client = client
        self.ledger = ledger
        self._now_ms = now_ms
        self._metrics = metrics
        self._schemas: dict[str, _Schema] = {}
        self._items: dict[tuple[str, tuple[str, ...]], _Footprint] = {}
        self._lock = threading.Lock()
        #: Requests refused as a whole (CloudWatch's ThrottledRequests), by table.
        self.throttled_requests: dict[str, int] = {}
        #: Write units consumed by conditional writes whose condition failed (a duplicate's claim), by table.
        self.failed_condition_units: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        if name in _UNMETERED_WRITES:
            raise NotImplementedError(f"the local run's DynamoDB capacity model does not size {name}")
        return getattr(self._client, name)

    def report(self) -> list[dict[str, Any]]:
        """Each table's and index's figures: write units consumed, the busiest second against its capacity in
        that second, throttle events, requests throttled as a whole, units of failed conditional writes."""
        rows = []
        with self._lock:
            for resource, stats in sorted(self.ledger.resources.items(), key=lambda pair: pair[0].name):
                capacity = stats.capacity
                busiest = max(capacity.used, key=lambda second: capacity.used[second], default=0)
                rows.append(
                    {
                        "name": resource.name,
                        "write_units": capacity.total,
                        "peak_write_units_per_second": capacity.peak,
                        "write_capacity_per_second": capacity.capacity_at(busiest),
                        "warm_write_units_per_second": capacity.warm_units,
                        "throttle_events": stats.throttle_events,
                        "throttling_reasons": dict(sorted(stats.refusals.items())),
                        "throttled_requests": self.throttled_requests.get(resource.name, 0)
                        if resource.index is None
                        else 0,
                        "failed_condition_write_units": self.failed_condition_units.get(resource.name, 0)
                        if resource.index is None
                        else 0,
                    }
                )
        return rows

    # -- writes ----------------------------------------------------------------------------------------------

    def put_item(self, **kwargs: Any) -> Any:
        """PutItem, admitted against the capacity of the second it lands in."""
        table, item = kwargs["TableName"], kwargs["Item"]
        return self._single("PutItem", table, self._key(table, item), item, lambda: self._client.put_item(**kwargs))

    def delete_item(self, **kwargs: Any) -> Any:
        """DeleteItem, admitted against the capacity of the second it lands in."""
        table = kwargs["TableName"]
        key = self._key(table, kwargs["Key"])
        return self._single("DeleteItem", table, key, None, lambda: self._client.delete_item(**kwargs))

    def batch_write_item(self, **kwargs: Any) -> Any:
        """BatchWriteItem: each request admitted on its own; those that do not fit come back unprocessed."""
        second = self._now_ms() // 1000
        accepted: dict[str, list[Any]] = {}
        unprocessed: dict[str, list[Any]] = {}
        admitted: list[tuple[str, tuple[str, ...], _Footprint | None, list[Write]]] = []
        refusals: list[Refusal] = []
        with self._lock:
            for table, requests in kwargs["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        item = request["PutRequest"]["Item"]
                        key, new = self._key(table, item), self._footprint(table, item)
                    else:
                        key, new = self._key(table, request["DeleteRequest"]["Key"]), None
                    writes = self._writes(table, key, new)
                    refused = self.ledger.admit(writes, second)
                    if refused:
                        refusals += refused
                        unprocessed.setdefault(table, []).append(request)
                        self._record_throttles(refused, second)
                        continue
                    accepted.setdefault(table, []).append(request)
                    admitted.append((table, key, new, writes))
            if unprocessed and not accepted:
                for table in unprocessed:
                    self._count_throttled(table, "BatchWriteItem", second)
                raise throttling_error(refusals, "BatchWriteItem")
        try:
            # moto applies every request it is given (it never answers UnprocessedItems of its own).
            response = self._client.batch_write_item(**{**kwargs, "RequestItems": accepted})
        except Exception:
            self.ledger.refund([write for *_, writes in admitted for write in writes], second)
            raise
        with self._lock:
            for table, key, new, writes in admitted:
                self._remember(table, key, new)
                self._record_consumed(writes, second)
        merged = dict(response.get("UnprocessedItems") or {})
        for table, requests in unprocessed.items():
            merged[table] = [*merged.get(table, []), *requests]
        return {**response, "UnprocessedItems": merged}

    def _single(
        self, operation: str, table: str, key: tuple[str, ...], item: Mapping[str, Any] | None, call: Callable[[], Any]
    ) -> Any:
        second = self._now_ms() // 1000
        with self._lock:
            old = self._items.get((table, key))
            new = self._footprint(table, item) if item is not None else None
            writes = self._writes(table, key, new)
            refused = self.ledger.admit(writes, second)
            if refused:
                self._record_throttles(refused, second)
                self._count_throttled(table, operation, second)
                raise throttling_error(refused, operation)
        try:
            response = call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                # Billed at the existing item's size (at least one unit); no index is written.
                kept = [Write(writes[0].resource, writes[0].key, old.units if old else 1)]
                with self._lock:
                    self.ledger.refund(writes, second)
                    self.ledger.admit(kept, second)  # fits: more was just given back
                    self.failed_condition_units[table] = self.failed_condition_units.get(table, 0) + kept[0].units
                self._record_consumed(kept, second)
            else:
                self.ledger.refund(writes, second)
            raise
        with self._lock:
            self._remember(table, key, new)
        self._record_consumed(writes, second)
        return response

    # -- sizing ----------------------------------------------------------------------------------------------

    def _writes(self, table: str, key: tuple[str, ...], new: _Footprint | None) -> list[Write]:
        """The table write and the index writes of putting ``new`` (None: deleting) at ``key``."""
        schema = self._schema(table)
        old = self._items.get((table, key))
        units = max(new.units if new else 0, old.units if old else 0, 1)
        writes = [Write(schema.table, key[0], units)]
        for index in schema.indexes:
            before = old.entries.get(index.resource.name) if old else None
            after = new.entries.get(index.resource.name) if new else None
            if before is not None and after is not None and before.key == after.key:
                writes.append(Write(index.resource, after.partition, max(before.units, after.units)))
                continue
            if before is not None:
                writes.append(Write(index.resource, before.partition, before.units))
            if after is not None:
                writes.append(Write(index.resource, after.partition, after.units))
        return writes

    def _footprint(self, table: str, item: Mapping[str, Any]) -> _Footprint:
        schema = self._schema(table)
        entries: dict[str, _Entry] = {}
        for index in schema.indexes:
            if not all(name in item for name in index.keys):
                continue  # a sparse index: the item is not in it
            size = item_size(project(item, index.projected))
            values = tuple(_scalar(item[name]) for name in index.keys)
            entries[index.resource.name] = _Entry(values[0], values, write_units(size))
        return _Footprint(write_units(item_size(item)), entries)

    def _remember(self, table: str, key: tuple[str, ...], new: _Footprint | None) -> None:
        if new is None:
            self._items.pop((table, key), None)
        else:
            self._items[(table, key)] = new

    def _key(self, table: str, item: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(_scalar(item[name]) for name in self._schema(table).keys)

    def _schema(self, table: str) -> _Schema:
        schema = self._schemas.get(table)
        if schema is None:
            schema = self._schemas[table] = _describe(self._client.describe_table(TableName=table)["Table"])
        return schema

    # -- metrics ---------------------------------------------------------------------------------------------

    def _record_consumed(self, writes: Sequence[Write], second: int) -> None:
        for write in writes:
            self._metric("ConsumedWriteCapacityUnits", write.units, second, write.resource)

    def _record_throttles(self, refusals: Sequence[Refusal], second: int) -> None:
        for refusal in refusals:
            self._metric("WriteThrottleEvents", 1, second, refusal.resource)

    def _count_throttled(self, table: str, operation: str, second: int) -> None:
        self.throttled_requests[table] = self.throttled_requests.get(table, 0) + 1
        if self._metrics is not None:
            dimensions = {"TableName": table, "Operation": operation}
            self._metrics.add(_NAMESPACE, "ThrottledRequests", 1, "Count", second * 1000, dimensions)

    def _metric(self, name: str, value: int, second: int, resource: Resource) -> None:
        if self._metrics is None:
            return
        dimensions = {"TableName": resource.table}
        if resource.index is not None:
            dimensions["GlobalSecondaryIndexName"] = resource.index
        self._metrics.add(_NAMESPACE, name, value, "Count", second * 1000, dimensions)


def _describe(table: Mapping[str, Any]) -> _Schema:
    """A table's keys and its GSIs' keys and projections, from DescribeTable."""
    resource = Resource(table["TableName"], table["TableArn"])
    keys = _key_names(table["KeySchema"])
    indexes = []
    for index in table.get("GlobalSecondaryIndexes") or ():
        index_keys = _key_names(index["KeySchema"])
        projection = index.get("Projection", {})
        kind = projection.get("ProjectionType", "ALL")
        projected: tuple[str, ...] | None = None
        if kind != "ALL":
            extra = tuple(projection.get("NonKeyAttributes", ())) if kind == "INCLUDE" else ()
            projected = tuple(dict.fromkeys((*keys, *index_keys, *extra)))
        arn = index.get("IndexArn") or f"{table['TableArn']}/index/{index['IndexName']}"
        indexes.append(_Index(Resource(resource.table, arn, index["IndexName"]), index_keys, projected))
    return _Schema(resource, keys, tuple(indexes))


def _key_names(schema: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    hash_key = [element["AttributeName"] for element in schema if element["KeyType"] == "HASH"]
    range_key = [element["AttributeName"] for element in schema if element["KeyType"] == "RANGE"]
    return (*hash_key, *range_key)


def _scalar(value: Mapping[str, Any]) -> str:
    ((_kind, raw),) = value.items()
    return raw.hex() if isinstance(raw, bytes | bytearray) else str(raw)
