"""monitor's DynamoDB write-throttle checks and their queries, on observations built by hand (no AWS)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from operations import metrics
from operations import outputs as stack_outputs
from operations.monitor import (
    Check,
    Observation,
    Series,
    StackNames,
    Verdict,
    Window,
    evaluate,
    exit_status,
    metric_queries,
    overall,
    summary_line,
)
from operations.monitor.checks import Thresholds

END = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
WINDOW = Window.ending(END, timedelta(hours=1))
THRESHOLDS = Thresholds(
    freshness_seconds=570,
    buffering_interval_seconds=300,
    active_partitions_limit=500,
    buffer_visibility_timeout_seconds=185,
    buffer_max_receive_count=5,
)
STACK = StackNames(
    delivery_stream="sales-history",
    fanout_trigger="direct",
    sales_table="sales",
    idempotency_table="idempotency",
)
NAMES = {
    "sales": "DynamoDB write throttles (sales)",
    "gsi2": "DynamoDB write throttles (sales GSI2)",
    "idempotency": "DynamoDB write throttles (idempotency)",
}


def series(*values: float) -> Series:
    """Datapoints five minutes apart, the last ten minutes before END."""
    last = END - timedelta(minutes=10)
    stamps = tuple(last - timedelta(minutes=5 * (len(values) - 1 - i)) for i in range(len(values)))
    return Series(stamps, tuple(float(v) for v in values))


def observed(stack: StackNames = STACK, **data: Series) -> Observation:
    """An observation of ``stack`` holding only the DynamoDB series given (keys with '.' spelled '__')."""
    return Observation(stack=stack, window=WINDOW, series={k.replace("__", "."): v for k, v in data.items()})


def writing(**overrides: Series) -> Observation:
    """Every table and GSI2 written, nothing throttled (no throttle datapoint: DynamoDB publishes none)."""
    data = {
        "dynamodb__sales__consumed_write_units": series(90_000, 300_000),
        "dynamodb__sales__GSI2__consumed_write_units": series(90_000, 300_000),
        "dynamodb__idempotency__consumed_write_units": series(60_000, 200_000),
    }
    data.update(overrides)
    return observed(**data)


def dynamodb(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks if c.name.startswith("DynamoDB")}


def test_tables_written_without_throttles_are_ok_and_show_the_peak_write_rate() -> None:
    # GIVEN writes to every table and GSI2, no throttle datapoint WHEN judged THEN OK, with the busiest 5 min's rate
    found = dynamodb(evaluate(writing(), THRESHOLDS))
    assert list(found) == list(NAMES.values())  # the sales table, its GSI2, the idempotency table, in that order
    assert {c.verdict for c in found.values()} == {Verdict.OK}
    assert found[NAMES["sales"]].value == "0 (1,000.0 write units/s in the busiest 5 min)"
    assert all(c.stream is None for c in found.values())  # checks of the stack, not of a stream


@pytest.mark.parametrize("target", ["sales", "gsi2", "idempotency"])
def test_any_write_throttle_is_a_warning_that_says_flow_control_absorbed_it(target: str) -> None:
    key = {"sales": "dynamodb.sales", "gsi2": "dynamodb.sales.GSI2", "idempotency": "dynamodb.idempotency"}[target]
    observation = writing(**{f"{key}.write_throttle_events".replace(".", "__"): series(0, 42)})
    checks = evaluate(observation, THRESHOLDS)
    found = dynamodb(checks)[NAMES[target]]
    assert found.verdict is Verdict.WARN
    assert found.value.startswith("42 (")
    assert "resent by the fan-out's flow control" in found.detail and "late, not lost" in found.detail
    assert "pre-warm the table" in found.detail and "--warm-throughput" in found.detail
    assert exit_status(overall(checks)) == 1  # a warning, never critical: nothing was lost
    assert summary_line(checks, observation).startswith(f"WARNING: {NAMES[target]} 42")


def test_the_gsi_warning_says_it_throttles_the_table_and_when_a_tenant_is_hot() -> None:
    found = dynamodb(evaluate(writing(dynamodb__sales__GSI2__write_throttle_events=series(5)), THRESHOLDS))
    detail = found[NAMES["gsi2"]].detail
    assert "throttles the table's writes too" in detail
    assert "embedding_shards" in detail
    assert found[NAMES["sales"]].verdict is Verdict.OK  # the index's throttles are its own row


def test_a_zero_throttle_datapoint_is_ok() -> None:
    found = dynamodb(evaluate(writing(dynamodb__idempotency__write_throttle_events=series(0, 0)), THRESHOLDS))
    assert found[NAMES["idempotency"]].verdict is Verdict.OK


def test_no_writes_and_no_throttles_is_no_data_and_does_not_count() -> None:
    checks = evaluate(observed(), THRESHOLDS)
    found = dynamodb(checks)
    assert {c.verdict for c in found.values()} == {Verdict.NO_DATA}
    assert {c.detail for c in found.values()} == {"no writes reported in the window"}


def test_throttles_without_a_consumed_datapoint_still_warn() -> None:
    found = dynamodb(evaluate(observed(dynamodb__sales__write_throttle_events=series(3)), THRESHOLDS))
    assert found[NAMES["sales"]].verdict is Verdict.WARN
    assert found[NAMES["sales"]].value == "3 (0.0 write units/s in the busiest 5 min)"


@pytest.mark.parametrize(
    ("missing", "rows", "output"),
    [
        ("sales_table", ("sales table", "sales table GSI2"), "sales_table_name"),
        ("idempotency_table", ("idempotency table",), "idempotency_table_name"),
    ],
)
def test_a_table_the_outputs_do_not_name_is_no_data_with_the_reason(
    missing: str, rows: tuple[str, ...], output: str
) -> None:
    stack = StackNames(**{**STACK.__dict__, missing: None})
    found = dynamodb(evaluate(observed(stack), THRESHOLDS))
    for role in rows:
        row = found[f"DynamoDB write throttles ({role})"]
        assert (row.verdict, row.value, row.detail) == (Verdict.NO_DATA, "no data", f"the outputs have no {output}")
    assert len(found) == 3
    assert not [key for key in metric_queries(stack) if key.startswith(f"dynamodb.{role.split()[0]}")]


def test_the_plan_reads_each_table_and_the_gsi_with_all_their_dimensions() -> None:
    plan = metric_queries(STACK)
    queries = {
        key: metric.query("q", value, 300)["MetricStat"]["Metric"]
        for key, (metric, value, _) in plan.items()
        if key.startswith("dynamodb.")
    }
    assert len(queries) == 6  # throttles and consumed units of the table, GSI2 and the idempotency table
    assert queries["dynamodb.sales.write_throttle_events"] == {
        "Namespace": "AWS/DynamoDB",
        "MetricName": "WriteThrottleEvents",
        "Dimensions": [{"Name": "TableName", "Value": "sales"}],
    }
    assert queries["dynamodb.sales.GSI2.write_throttle_events"]["Dimensions"] == [
        {"Name": "TableName", "Value": "sales"},
        {"Name": "GlobalSecondaryIndexName", "Value": metrics.SALES_TABLE_INDEX},
    ]
    assert queries["dynamodb.idempotency.consumed_write_units"]["MetricName"] == "ConsumedWriteCapacityUnits"
    assert {plan[k][0].statistic for k in queries} == {"Sum"}


def test_an_index_metric_without_its_index_name_refuses_to_query() -> None:
    # CloudWatch never adds up over a dimension left out: an unbound GSI metric would silently read nothing.
    with pytest.raises(ValueError, match="GlobalSecondaryIndexName"):
        metrics.ALL["dynamodb_index_write_throttle_events"].query("q", "sales", 300)
    with pytest.raises(ValueError, match="takes values"):
        metrics.ALL["dynamodb_write_throttle_events"].of("GSI2")


def test_the_table_names_come_from_the_outputs() -> None:
    values: dict[str, Any] = {
        "delivery_stream_name": "s",
        "sales_table_name": "carousel-sales-sales",
        "idempotency_table_name": "carousel-sales-idempotency",
    }
    stack = StackNames.from_outputs(stack_outputs.StackOutputs(values, "outputs.json"))
    assert (stack.sales_table, stack.idempotency_table) == ("carousel-sales-sales", "carousel-sales-idempotency")
