"""monitor with several delivery streams: every stream read and judged, named when there is more than one."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from operations import metrics
from operations import outputs as stack_outputs
from operations.errors import OperatorError
from operations.monitor import (
    Observation,
    Series,
    StackNames,
    Verdict,
    evaluate,
    exit_status,
    metric_queries,
    overall,
    render_text,
    summary_line,
    to_json,
)
from operations.monitor.collect import stream_key
from tests.unit.operations.test_monitor_verdicts import END, THRESHOLDS, WINDOW, healthy, series

STREAMS = ("sales-history", "sales-history-1")
#: The Firehose metrics of a Parquet stack's streams (an Iceberg stack reads DeliveryToIceberg.* instead).
FIREHOSE_KEYS = [
    key
    for key, metric in metrics.ALL.items()
    if metric.namespace == metrics.FIREHOSE and not metric.name.startswith("DeliveryToIceberg.")
]


def two_streams(**second: Series) -> Observation:
    """Both streams delivering normally; ``second`` replaces series of stream 1."""
    observation = healthy()
    observation.stack = replace(observation.stack, delivery_streams=STREAMS)
    for key in FIREHOSE_KEYS:
        if key in observation.series:
            observation.series[stream_key(1, key)] = observation.series[key]
    for key, value in second.items():
        observation.series[stream_key(1, key)] = value
    return observation


def test_two_healthy_streams_are_ok_and_each_stream_is_named() -> None:
    observation = two_streams()
    checks = evaluate(observation, THRESHOLDS)
    assert overall(checks) is Verdict.OK
    throttled = [c for c in checks if c.name.startswith("ThrottledRecords")]
    assert [(c.name, c.stream) for c in throttled] == [
        ("ThrottledRecords [sales-history]", "sales-history"),
        ("ThrottledRecords [sales-history-1]", "sales-history-1"),
    ]
    assert [c.name for c in checks].count("TransformRecordsFailed") == 1, "one metric for the stack, judged once"
    assert summary_line(checks, observation).endswith("; 2 streams sales-history, sales-history-1, last 1h)")


def test_the_stream_that_throttles_is_named_and_the_verdict_is_the_worst() -> None:
    observation = two_streams(throttled_records=series(0, 7))
    checks = evaluate(observation, THRESHOLDS)
    by_name = {c.name: c for c in checks}
    assert by_name["ThrottledRecords [sales-history]"].verdict is Verdict.OK
    assert by_name["ThrottledRecords [sales-history-1]"].verdict is Verdict.WARN
    assert exit_status(overall(checks)) == 1
    assert summary_line(checks, observation).startswith("WARNING: ThrottledRecords [sales-history-1] 7 (")
    assert "-> Firehose refused records over its quota" in render_text(checks, observation)
    document = to_json(checks, observation)
    assert (document["status"], document["delivery_stream_name"]) == ("WARNING", "sales-history")
    assert document["delivery_stream_names"] == list(STREAMS)
    assert document["streams"] == [
        {"name": "sales-history", "status": "OK", "exit_status": 0, "problems": []},
        {
            "name": "sales-history-1",
            "status": "WARNING",
            "exit_status": 1,
            "problems": ["ThrottledRecords [sales-history-1]"],
        },
    ]


def test_one_stream_at_its_quota_fails_while_the_other_is_judged_on_its_own() -> None:
    rate_at_quota = 100_000 * 300  # eu-central-1's documented records/s, over 5 minutes
    observation = two_streams(incoming_records=series(rate_at_quota))
    checks = evaluate(observation, THRESHOLDS)
    by_name = {c.name: c.verdict for c in checks}
    assert by_name["IncomingRecords vs RecordsPerSecondLimit [sales-history-1]"] is Verdict.FAIL
    assert by_name["IncomingRecords vs RecordsPerSecondLimit [sales-history]"] is Verdict.OK
    assert exit_status(overall(checks)) == 2


def test_a_stream_without_metrics_is_unknown_by_name() -> None:
    observation = two_streams()
    for key in FIREHOSE_KEYS:
        observation.series.pop(stream_key(1, key), None)
    observation.stream_known, observation.unknown_streams = False, ("sales-history-1",)
    checks = evaluate(observation, THRESHOLDS)
    unknown = [c for c in checks if c.name.startswith("Firehose metrics")]
    assert [(c.name, c.verdict) for c in unknown] == [("Firehose metrics [sales-history-1]", Verdict.UNKNOWN)]
    assert "'sales-history-1'" in unknown[0].detail


def test_one_stream_output_keeps_its_names_and_json_gains_only_new_keys() -> None:
    observation = healthy(throttled_records=series(4))
    checks = evaluate(observation, THRESHOLDS)
    assert "[" not in "".join(c.name for c in checks)
    assert summary_line(checks, observation).endswith("(stream sales-history, last 1h)")
    document = to_json(checks, observation)
    assert document["delivery_stream_names"] == ["sales-history"]
    assert document["streams"][0]["problems"] == ["ThrottledRecords"]


def test_the_query_plan_reads_every_streams_firehose_metrics_once_and_the_rest_once() -> None:
    stack = replace(healthy().stack, delivery_streams=STREAMS)
    plan = metric_queries(stack)
    firehose = [(key, value) for key, (metric, value, _) in plan.items() if metric.namespace == metrics.FIREHOSE]
    assert len(firehose) == 2 * len(FIREHOSE_KEYS)
    assert {value for _, value in firehose} == set(STREAMS)
    assert plan["stream1.throttled_records"][1] == "sales-history-1"
    assert plan["throttled_records"][1] == "sales-history"
    assert sum(1 for key in plan if key.endswith("lambda_errors")) == 2  # fan-out and transform, not per stream


class _OneStreamSilent:
    """CloudWatch with data for stream 0 only; ListMetrics knows stream 0 only."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        results = []
        for query in request["MetricDataQueries"]:
            dimensions = query["MetricStat"]["Metric"]["Dimensions"]
            silent = dimensions[0]["Value"] == "sales-history-1"
            results.append(
                {"Id": query["Id"], "Timestamps": [] if silent else [END - timedelta(minutes=5)],
                 "Values": [] if silent else [1.0]}
            )  # fmt: skip
        return {"MetricDataResults": results}

    def list_metrics(self, **request: Any) -> dict[str, Any]:
        known = request["Dimensions"][0]["Value"] == "sales-history"
        return {"Metrics": [{"MetricName": "IncomingRecords"}] if known else []}


def test_collect_reads_every_stream_and_names_the_one_without_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from operations import monitor

    monkeypatch.setattr(importlib.import_module("operations.monitor.collect"), "MAX_QUERIES_PER_CALL", 20)
    stack = StackNames(delivery_stream="sales-history", delivery_streams=STREAMS, fanout_trigger="direct")
    cloudwatch = _OneStreamSilent()
    observation = monitor.collect(cloudwatch, None, stack, WINDOW)
    assert all(len(call["MetricDataQueries"]) <= 20 for call in cloudwatch.calls)
    assert sum(len(call["MetricDataQueries"]) for call in cloudwatch.calls) == len(metric_queries(stack))
    assert (observation.stream_known, observation.unknown_streams) == (False, ("sales-history-1",))
    assert not observation.get("incoming_records").empty
    assert observation.for_stream(1).get("incoming_records").empty
    assert observation.for_stream(0).stream_known and not observation.for_stream(1).stream_known


# -- outputs ---------------------------------------------------------------------------------------------------


def _outputs(**values: Any) -> stack_outputs.StackOutputs:
    return stack_outputs.StackOutputs(values, "outputs.json")


def test_outputs_without_delivery_stream_names_mean_one_stream() -> None:
    outputs = _outputs(delivery_stream_name="sales-history")
    assert stack_outputs.delivery_stream_names(outputs) == ["sales-history"]
    stack = StackNames.from_outputs(outputs)
    assert (stack.delivery_stream, stack.streams) == ("sales-history", ("sales-history",))


def test_outputs_with_delivery_stream_names_list_every_stream() -> None:
    outputs = _outputs(delivery_stream_name="sales-history", delivery_stream_names=list(STREAMS))
    assert StackNames.from_outputs(outputs).streams == STREAMS


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ([], "expected a non-empty list of stream names"),
        ("sales-history", "expected a non-empty list of stream names"),
        (["sales-history", ""], "expected a non-empty list of stream names"),
        (["sales-history", "sales-history"], "names a stream twice"),
        (["other", "sales-history"], "is not the first of 'delivery_stream_names'"),
    ],
)
def test_a_bad_delivery_stream_names_output_is_one_line_naming_it(names: Any, message: str) -> None:
    outputs = _outputs(delivery_stream_name="sales-history", delivery_stream_names=names)
    with pytest.raises(OperatorError, match=message) as raised:
        stack_outputs.delivery_stream_names(outputs)
    assert "outputs.json: output 'delivery_stream" in str(raised.value)
    assert "\n" not in str(raised.value)
