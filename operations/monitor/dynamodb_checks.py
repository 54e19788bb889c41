"""monitor's DynamoDB checks: were writes to the sales table, its GSI2 or the idempotency table throttled?

A throttled write is not a failure in this pipeline: the fan-out resends it within the invocation, then backs the
SQS message off (flow control), so the sale arrives late, not lost. So a throttle is a WARN, a capacity warning
that mirrors the Terraform alarm (``WriteThrottleEvents`` Sum > 0, terraform/dynamodb_monitoring.tf); throttling
that goes on means the table needs pre-warming (terraform/README.md, "DynamoDB throughput at a launch") or the
buffer queue's backlog grows.

Pure: an :class:`~operations.monitor.collect.Observation` in, :class:`~operations.monitor.verdicts.Check` rows out.
"""

from __future__ import annotations

from operations.monitor.collect import Observation
from operations.monitor.dynamodb import WriteTarget, write_targets
from operations.monitor.verdicts import Check, Verdict

__all__ = ["CHECK_NAME", "dynamodb_checks"]

CHECK_NAME = "DynamoDB write throttles"
_THRESHOLD = "> 0 (warn: flow control absorbs them)"
_PREWARM = "terraform/README.md, 'DynamoDB throughput at a launch'"


def dynamodb_checks(observation: Observation) -> list[Check]:
    """One check per table and index: the sales table, its GSI2, the idempotency table."""
    stack = observation.stack
    return [_write_check(observation, t) for t in write_targets(stack.sales_table, stack.idempotency_table)]


def _write_check(observation: Observation, target: WriteTarget) -> Check:
    name = f"{CHECK_NAME} ({target.name})"
    if target.table is None:
        return Check(name, Verdict.NO_DATA, "no data", _THRESHOLD, f"the outputs have no {target.output}")
    throttles = observation.get(f"{target.key}.write_throttle_events")
    consumed = observation.get(f"{target.key}.consumed_write_units")
    # ConsumedWriteCapacityUnits' Sum over the period / its seconds: the average rate in the busiest period.
    rate = f"{consumed.peak / observation.window.period:,.1f} write units/s in the busiest 5 min"
    if throttles.total > 0:
        return Check(name, Verdict.WARN, f"{throttles.total:,.0f} ({rate})", _THRESHOLD, _advice(target))
    if throttles.empty and consumed.empty:
        # DynamoDB publishes a throttle count only when there is one, and no write means no consumed capacity.
        return Check(name, Verdict.NO_DATA, "no data", _THRESHOLD, "no writes reported in the window")
    return Check(name, Verdict.OK, f"0 ({rate})", _THRESHOLD)


def _advice(target: WriteTarget) -> str:
    absorbed = "writes were throttled and resent by the fan-out's flow control (late, not lost)"
    if target.index is not None:
        return (
            f"{absorbed}; a GSI that cannot keep up throttles the table's writes too. Sustained, the buffer queue's "
            f"backlog grows: pre-warm the table and {target.index} together (aws dynamodb update-table "
            f"--warm-throughput, {_PREWARM}); throttles below the index's warm throughput mean a hot tenant "
            "(raise embedding_shards)"
        )
    return (
        f"{absorbed}. Sustained, the buffer queue's backlog grows: pre-warm the table "
        f"(aws dynamodb update-table --warm-throughput, {_PREWARM}) above its peak write rate (the five-minute "
        "average shown is lower than a burst's per-second peak)"
    )
