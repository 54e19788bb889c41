"""The DynamoDB writes monitor watches: which tables and index, and the metric queries for each.

Every sale writes the sales table, its GSI2 copy and the idempotency table; each has a write capacity of its
own and is throttled on its own (a GSI that cannot take its writes throttles the table's writes too). monitor
reads, per table and index, ``WriteThrottleEvents`` (what it judges: the Terraform alarms fire on the same Sum
over 300 s, terraform/dynamodb_monitoring.tf) and ``ConsumedWriteCapacityUnits`` (the write rate it shows beside
it, the figure to size warm throughput by). Amazon DynamoDB Developer Guide, "DynamoDB Metrics and dimensions"
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/metrics-dimensions.html): TableName alone is the
table without its indexes; an index's metrics need GlobalSecondaryIndexName too.

Pure (names in, queries out); reading is :mod:`~operations.monitor.collect`, judging
:mod:`~operations.monitor.dynamodb_checks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from operations import metrics

__all__ = ["WriteTarget", "write_queries", "write_targets"]


@dataclass(frozen=True)
class WriteTarget:
    """A table, or one index of it, whose writes monitor watches."""

    #: What it is when its table has no name in the outputs (``sales table``, ``sales table GSI2``).
    role: str
    #: The stack output that names its table.
    output: str
    table: str | None
    index: str | None = None

    @property
    def key(self) -> str:
        """The prefix of its series keys (``dynamodb.sales``, ``dynamodb.sales.GSI2``)."""
        base = f"dynamodb.{self.role.split()[0]}"
        return f"{base}.{self.index}" if self.index else base

    @property
    def name(self) -> str:
        """``<table>`` or ``<table> <index>``; the role when the outputs do not name the table."""
        if self.table is None:
            return self.role
        return f"{self.table} {self.index}" if self.index else self.table


def write_targets(sales_table: str | None, idempotency_table: str | None) -> tuple[WriteTarget, ...]:
    """The sales table, its GSI2 and the idempotency table (a ``None`` table: not named in the outputs)."""
    index = metrics.SALES_TABLE_INDEX
    return (
        WriteTarget("sales table", "sales_table_name", sales_table),
        WriteTarget(f"sales table {index}", "sales_table_name", sales_table, index),
        WriteTarget("idempotency table", "idempotency_table_name", idempotency_table),
    )


def write_queries(targets: tuple[WriteTarget, ...]) -> dict[str, tuple[metrics.Metric, str, str | None]]:
    """Series key -> (metric, TableName, namespace override) for every target whose table is named, in the shape
    of :func:`~operations.monitor.collect.metric_queries` (an index's metrics carry its name bound)."""
    plan: dict[str, tuple[metrics.Metric, str, str | None]] = {}
    for target in targets:
        if target.table is None:
            continue
        if target.index is None:
            throttles = metrics.ALL["dynamodb_write_throttle_events"]
            consumed = metrics.ALL["dynamodb_consumed_write_units"]
        else:
            throttles = metrics.ALL["dynamodb_index_write_throttle_events"].of(target.index)
            consumed = metrics.ALL["dynamodb_index_consumed_write_units"].of(target.index)
        plan[f"{target.key}.write_throttle_events"] = (throttles, target.table, None)
        plan[f"{target.key}.consumed_write_units"] = (consumed, target.table, None)
    return plan
