"""Each write-capacity rule the local run enforces, pinned to the number AWS documents (page cited per test)."""

from __future__ import annotations

import pytest

from local_pipeline.dynamodb import CapacityLedger, Resource, Write, WriteCapacity
from local_pipeline.dynamodb.limits import (
    NEW_TABLE_WRITE_UNITS,
    PARTITION_KEY_WRITE_UNITS_PER_SECOND,
    PEAK_SCALING_SECONDS,
    TABLE_WRITE_QUOTA_UNITS,
)
from local_pipeline.dynamodb.sizes import attribute_size, item_size, number_size, project, write_units

TABLE = Resource("sales", "arn:aws:dynamodb:eu-west-1:123456789012:table/sales")
GSI2 = Resource("sales", "arn:aws:dynamodb:eu-west-1:123456789012:table/sales/index/GSI2", "GSI2")
IDEMPOTENCY = Resource("idempotency", "arn:aws:dynamodb:eu-west-1:123456789012:table/idempotency")


def test_the_documented_numbers() -> None:
    # DynamoDB DG, "DynamoDB on-demand capacity mode" > "Initial throughput and scaling properties": a new
    # on-demand table's previous peak is 2,000 write request units and it serves up to double that, 4,000.
    assert NEW_TABLE_WRITE_UNITS == 4_000
    # Same page: throttling can occur past double the previous peak "within 30 minutes".
    assert PEAK_SCALING_SECONDS == 1_800
    # DG, "Best practices for designing and using partition keys effectively": 1,000 WCU/s per partition.
    assert PARTITION_KEY_WRITE_UNITS_PER_SECOND == 1_000
    # DG, "Service, account, and table quotas": 40,000 write request units/s per on-demand table (default).
    assert TABLE_WRITE_QUOTA_UNITS == 40_000


def _spread(units: int, per_write: int = 5) -> list[list[Write]]:
    """``units`` write units as writes of ``per_write`` units on distinct partition keys (no key is hot)."""
    return [[Write(TABLE, f"TENANT#t#PRODUCT#{n}", per_write)] for n in range(units // per_write)]


def test_a_new_table_serves_4000_write_units_a_second_then_throttles() -> None:
    # on-demand-capacity-mode.html: "newly created on-demand tables [serve] up to 4,000 write request units".
    ledger = CapacityLedger()
    assert all(ledger.admit(writes, 10) == [] for writes in _spread(4_000))
    (refusal,) = ledger.admit([Write(TABLE, "TENANT#t#PRODUCT#new", 1)], 10)
    assert refusal.resource == TABLE
    assert refusal.reason == "TableWriteKeyRangeThroughputExceeded"
    # The next second has its own 4,000.
    assert ledger.admit([Write(TABLE, "TENANT#t#PRODUCT#new", 1)], 11) == []
    stats = ledger.stats(TABLE)
    assert stats.capacity.used[10] == 4_000
    assert stats.throttle_events == 1


def test_warm_throughput_sets_the_start() -> None:
    # warm-throughput.html: warm throughput is what a table serves at once (set by update-table --warm-throughput).
    ledger = CapacityLedger(warm_units=1_000)
    assert all(ledger.admit(writes, 0) == [] for writes in _spread(1_000))
    assert ledger.admit([Write(TABLE, "k", 1)], 0)
    with pytest.raises(ValueError, match="at least 1"):
        WriteCapacity(0)


def test_one_partition_key_value_takes_at_most_1000_write_units_a_second() -> None:
    # bp-partition-key-design.html: a partition (so one key value) serves at most 1,000 WCU/s, even when the
    # table has room; the reason is KeyRangeThroughputExceeded (throttling-key-range-limit-exceeded-mitigation.html).
    ledger = CapacityLedger()
    hot = "TENANT#t#EMBEDDING#3"
    assert all(ledger.admit([Write(GSI2, hot, 5)], 0) == [] for _ in range(200))  # 1,000 units
    (refusal,) = ledger.admit([Write(GSI2, hot, 5)], 0)
    assert refusal.reason == "IndexWriteKeyRangeThroughputExceeded"
    assert refusal.resource.arn.endswith("/index/GSI2")
    assert ledger.admit([Write(GSI2, "TENANT#t#EMBEDDING#4", 5)], 0) == []  # another key value: room
    assert ledger.admit([Write(GSI2, hot, 5)], 1) == []  # the next second


def test_an_index_without_room_throttles_the_table_write() -> None:
    # GSI.html, "Provisioned throughput considerations": "For a table write to succeed, the provisioned throughput
    # settings for the table and all of its global secondary indexes must have enough write capacity ...
    # otherwise, the write to the table is throttled." Nothing of the refused write is consumed.
    ledger = CapacityLedger(warm_units=100)
    for n in range(20):
        assert ledger.admit([Write(GSI2, f"shard{n % 5}", 5)], 0) == []  # the index's 100 units are used
    put = [Write(TABLE, "TENANT#t#PRODUCT#p", 3), Write(GSI2, "shard0", 3)]
    (refusal,) = ledger.admit(put, 0)
    assert refusal.resource == GSI2
    assert refusal.reason == "IndexWriteKeyRangeThroughputExceeded"
    assert ledger.stats(TABLE).capacity.used.get(0, 0) == 0  # the table write did not happen
    assert ledger.stats(GSI2).throttle_events == 1
    assert ledger.stats(TABLE).throttle_events == 0  # WriteThrottleEvents counts the part that was throttled


def test_capacity_grows_to_twice_a_peak_30_minutes_after_it() -> None:
    # on-demand-capacity-mode.html: "instantly accommodates up to double the previous peak traffic ... throttling
    # can occur if you exceed double your previous peak within 30 minutes". Read conservatively: a peak counts as
    # the previous peak 30 minutes after it was reached.
    capacity = WriteCapacity(1_000)
    capacity.consume(100, 1_000)
    assert capacity.capacity(101) == 1_000
    assert capacity.capacity(100 + 1_799) == 1_000
    assert capacity.capacity(100 + 1_800) == 2_000
    capacity.consume(100 + 1_800, 2_000)
    assert capacity.capacity(100 + 3_600) == 4_000
    assert capacity.capacity_at(101) == 1_000  # recomputed after the fact
    # A peak below half the warm throughput never lowers it.
    quiet = WriteCapacity(4_000)
    quiet.consume(0, 10)
    assert quiet.capacity(10_000) == 4_000


def test_growth_stops_at_the_per_table_quota_with_an_account_limit_reason() -> None:
    # ServiceQuotas.html: 40,000 write request units/s per table by default; the reason then is
    # AccountLimitExceeded (API Reference, "ThrottlingReason").
    ledger = CapacityLedger(warm_units=30_000)
    capacity = ledger.stats(IDEMPOTENCY).capacity
    capacity.consume(0, 30_000)
    assert capacity.capacity(PEAK_SCALING_SECONDS) == 40_000
    capacity.consume(PEAK_SCALING_SECONDS, 40_000)
    (refusal,) = ledger.admit([Write(IDEMPOTENCY, "id", 1)], PEAK_SCALING_SECONDS)
    assert refusal.reason == "TableWriteAccountLimitExceeded"


def test_refund_gives_units_back() -> None:
    ledger = CapacityLedger(warm_units=10)
    writes = [Write(TABLE, "k", 10)]
    assert ledger.admit(writes, 0) == []
    ledger.refund(writes, 0)
    assert ledger.admit(writes, 0) == []


def test_item_sizes_follow_dynamodbs_rules() -> None:
    # DG, "Item sizes and formats" (CapacityUnitCalculations.html).
    assert attribute_size({"S": "héllo"}) == 6  # UTF-8 bytes
    assert attribute_size({"B": b"\x00" * 2048}) == 2048
    # "1 byte per two significant digits + 1 byte"; "leading and trailing zeroes are trimmed".
    assert number_size("450") == 2  # "45"
    assert number_size("1200.50") == 4  # "12005"
    assert number_size("123456") == 4
    assert number_size("-0.001") == 2
    assert attribute_size({"BOOL": True}) == attribute_size({"NULL": True}) == 1
    assert attribute_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (2 + 1) + (2 + 1)
    assert attribute_size({"M": {"a": {"S": "xy"}}}) == 3 + 1 + 2 + 1
    assert attribute_size({"SS": ["a", "bc"]}) == 3
    item = {"PK": {"S": "p" * 10}, "blob": {"B": b"x" * 1000}}
    assert item_size(item) == 2 + 10 + 4 + 1000
    assert write_units(1024) == 1
    assert write_units(1025) == 2
    assert write_units(0) == 1
    with pytest.raises(ValueError, match="unknown DynamoDB attribute type"):
        attribute_size({"X": 1})


def test_an_index_entry_holds_the_projected_attributes_only() -> None:
    item = {"PK": {"S": "a"}, "GSI2PK": {"S": "b"}, "embedding": {"B": b"e" * 2000}, "description": {"S": "d" * 900}}
    assert project(item, None) == item
    assert set(project(item, ("PK", "GSI2PK", "embedding"))) == {"PK", "GSI2PK", "embedding"}
