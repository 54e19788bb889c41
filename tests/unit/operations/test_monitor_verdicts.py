"""monitor's verdict rules, on observations built by hand (no AWS)."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from operations import metrics
from operations.errors import OperatorError
from operations.monitor import (
    Check,
    Observation,
    QueueState,
    Series,
    StackNames,
    Thresholds,
    Verdict,
    Window,
    evaluate,
    exit_status,
    format_duration,
    overall,
    parse_duration,
    render_text,
    summary_line,
    to_json,
    watch,
)

END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
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
    region="eu-central-1",
    fanout_lambda="sales-fanout",
    transform_lambda="sales-transform",
    dead_letter_queue_url="http://127.0.0.1/123456789012/sales-dlq",
    fanout_trigger="queue",
    buffer_queue_url="http://127.0.0.1/123456789012/sales-buffer",
    alarm_names=("a-freshness", "a-throttled"),
)


def series(*values: float, minutes_ago: int = 10) -> Series:
    """Datapoints five minutes apart, the last one ``minutes_ago`` before END."""
    last = END - timedelta(minutes=minutes_ago)
    stamps = tuple(last - timedelta(minutes=5 * (len(values) - 1 - i)) for i in range(len(values)))
    return Series(stamps, tuple(float(v) for v in values))


def healthy(**overrides: Any) -> Observation:
    """A stream delivering normally, every queue empty, every alarm OK; ``overrides`` replace series."""
    data = {
        "incoming_records": series(3000, 2800),
        "incoming_bytes": series(6e6, 5.8e6),
        "incoming_put_requests": series(30, 28),
        "throttled_records": series(0, 0),
        "delivery_success": series(1, 1),
        "data_freshness": series(320, 410),
        "delivered_records": series(2900, 2700),
        "processing_success": series(1, 1),
        "failed_conversion_records": series(0),
        "partition_count": series(40, 48),
        "partition_count_exceeded": series(0, 0),
        "fanout.lambda_errors": series(0),
        "transform.lambda_errors": series(0),
        "buffer.queue_oldest_age": series(12),
    }
    data.update(overrides)
    return Observation(
        stack=STACK,
        window=WINDOW,
        series=data,
        dead_letter_queue=QueueState("sales-dlq", retention_seconds=1_209_600),
        buffer_queue=QueueState("sales-buffer", visible=40, in_flight=500),
        alarms=[{"name": "a-freshness", "state": "OK", "reason": ""}, {"name": "a-throttled", "state": "OK"}],
    )


def check(checks: list[Check], name: str) -> Check:
    found = [c for c in checks if c.name.startswith(name)]
    assert len(found) == 1, [c.name for c in checks]
    return found[0]


def test_a_healthy_stream_is_ok_and_exits_0() -> None:
    checks = evaluate(healthy(), THRESHOLDS)
    assert overall(checks) is Verdict.OK
    assert exit_status(overall(checks)) == 0
    assert {c.verdict for c in checks} <= {Verdict.OK, Verdict.NO_DATA}
    assert summary_line(checks, healthy()).startswith("OK: Firehose delivery healthy")


def test_throttled_records_warn_and_are_named_in_the_summary() -> None:
    observation = healthy(throttled_records=series(0, 3))
    checks = evaluate(observation, THRESHOLDS)
    assert check(checks, "ThrottledRecords").verdict is Verdict.WARN
    assert exit_status(overall(checks)) == 1
    assert summary_line(checks, observation).startswith("WARNING: ThrottledRecords 3")


@pytest.mark.parametrize(
    ("freshness", "verdict"),
    [((320, 570), Verdict.OK), ((900, 400), Verdict.WARN), ((400, 571), Verdict.FAIL)],
    ids=["at-threshold", "recovered", "latest-above"],
)
def test_freshness_is_judged_by_the_alarm_threshold_latest_first(freshness: tuple[int, int], verdict: Verdict) -> None:
    checks = evaluate(healthy(data_freshness=series(*freshness)), THRESHOLDS)
    assert check(checks, "DeliveryToS3.DataFreshness").verdict is verdict
    assert "570 s" in check(checks, "DeliveryToS3.DataFreshness").threshold


def test_freshness_above_threshold_is_critical_and_exits_2() -> None:
    checks = evaluate(healthy(data_freshness=series(320, 900), throttled_records=series(1)), THRESHOLDS)
    assert overall(checks) is Verdict.FAIL
    assert exit_status(overall(checks)) == 2


def test_no_delivery_while_records_came_in_long_enough_ago_fails() -> None:
    # Records since 40 minutes ago, nothing delivered: older than the 570 s freshness threshold allows.
    observation = healthy(
        incoming_records=series(100, 100, 100, minutes_ago=30),
        delivery_success=Series(),
        data_freshness=Series(),
        delivered_records=Series(),
    )
    checks = evaluate(observation, THRESHOLDS)
    for name in ("DeliveryToS3.Success", "DeliveryToS3.DataFreshness", "DeliveryToS3.Records"):
        assert check(checks, name).verdict is Verdict.FAIL
        assert "no delivery" in check(checks, name).detail


def test_no_delivery_yet_for_records_that_just_came_in_is_no_data_not_a_failure() -> None:
    observation = healthy(
        incoming_records=series(100, minutes_ago=2),
        delivery_success=Series(),
        data_freshness=Series(),
        delivered_records=Series(),
    )
    checks = evaluate(observation, THRESHOLDS)
    assert check(checks, "DeliveryToS3.DataFreshness").verdict is Verdict.NO_DATA
    assert overall(checks) is Verdict.OK


def test_an_idle_stream_says_no_data_and_is_not_a_failure() -> None:
    observation = healthy()
    observation.series = {}
    observation.buffer_queue = QueueState("sales-buffer")
    checks = evaluate(observation, THRESHOLDS)
    assert check(checks, "IncomingRecords").verdict is Verdict.NO_DATA
    assert check(checks, "IncomingRecords").value == "no data"
    assert overall(checks) is Verdict.OK


def test_a_stream_cloudwatch_never_heard_of_is_unknown() -> None:
    observation = healthy()
    observation.series, observation.stream_known = {}, False
    checks = evaluate(observation, THRESHOLDS)
    assert check(checks, "Firehose metrics").verdict is Verdict.UNKNOWN
    assert exit_status(overall(checks)) == 3


@pytest.mark.parametrize(
    ("peak_per_5_min", "verdict"),
    [(300 * 800, Verdict.OK), (300 * 801, Verdict.WARN), (300 * 1000, Verdict.FAIL)],
    ids=["80%", "above-80%", "100%"],
)
def test_incoming_put_requests_share_of_the_quota(peak_per_5_min: float, verdict: Verdict) -> None:
    # eu-central-1 has the 1,000 requests/s quota; no limit metric in the window, so the documented one is used.
    checks = evaluate(healthy(incoming_put_requests=series(10, peak_per_5_min)), THRESHOLDS)
    found = check(checks, "IncomingPutRequests")
    assert found.verdict is verdict
    assert "documented default" in found.threshold


def test_the_published_limit_metric_wins_over_the_documented_quota() -> None:
    observation = healthy(incoming_records=series(300 * 9_000), records_per_second_limit=series(10_000, 10_000))
    found = check(evaluate(observation, THRESHOLDS), "IncomingRecords")
    assert found.verdict is Verdict.WARN
    assert "90.00%" in found.value
    assert "RecordsPerSecondLimit" in found.threshold


def test_documented_quotas_differ_by_region() -> None:
    assert metrics.documented_stream_limits("us-east-1")["put_requests"] == 2_000
    assert metrics.documented_stream_limits("eu-central-1")["put_requests"] == 1_000


@pytest.mark.parametrize(
    ("success", "verdict"),
    [((1, 1), Verdict.OK), ((0.5, 1), Verdict.WARN), ((1, 0), Verdict.FAIL)],
)
def test_delivery_and_processing_success(success: tuple[float, float], verdict: Verdict) -> None:
    checks = evaluate(healthy(delivery_success=series(*success), processing_success=series(*success)), THRESHOLDS)
    assert check(checks, "DeliveryToS3.Success").verdict is verdict
    assert check(checks, "ExecuteProcessing.Success").verdict is verdict


@pytest.mark.parametrize(
    "key",
    ["transform_records_failed", "failed_conversion_records", "fanout.lambda_errors", "transform.lambda_throttles"],
)
def test_failure_counters_warn_on_any_count(key: str) -> None:
    checks = evaluate(healthy(**{key: series(0, 2)}), THRESHOLDS)
    assert overall(checks) is Verdict.WARN
    assert [c.value for c in checks if c.verdict is Verdict.WARN] == ["2"]


def test_partitions_near_and_over_the_limit() -> None:
    near = check(evaluate(healthy(partition_count=series(400)), THRESHOLDS), "PartitionCount vs")
    assert near.verdict is Verdict.WARN
    over = evaluate(healthy(partition_count=series(500), partition_count_exceeded=series(0, 1)), THRESHOLDS)
    assert check(over, "PartitionCount vs").verdict is Verdict.FAIL
    assert check(over, "PartitionCountExceeded").verdict is Verdict.FAIL


def test_dead_letters_warn_and_count_messages_being_received() -> None:
    observation = healthy()
    observation.dead_letter_queue = QueueState("sales-dlq", visible=1, in_flight=2, retention_seconds=1_209_600)
    found = check(evaluate(observation, THRESHOLDS), "dead-letter queue depth")
    assert found.verdict is Verdict.WARN
    assert found.value.startswith("3 ")


def test_dead_letters_about_to_expire_fail() -> None:
    observation = healthy(**{"dlq.queue_oldest_age": series(0.8 * 345_600)})
    observation.dead_letter_queue = QueueState("sales-dlq", visible=1, retention_seconds=345_600)
    assert check(evaluate(observation, THRESHOLDS), "dead-letter queue Approx").verdict is Verdict.FAIL


@pytest.mark.parametrize(("age", "verdict"), [(185, Verdict.OK), (186, Verdict.WARN), (926, Verdict.FAIL)])
def test_buffer_queue_backlog_by_the_age_of_its_oldest_message(age: float, verdict: Verdict) -> None:
    checks = evaluate(healthy(**{"buffer.queue_oldest_age": series(age)}), THRESHOLDS)
    assert check(checks, "buffer queue backlog").verdict is verdict


def test_no_buffer_check_with_the_direct_trigger() -> None:
    observation = healthy()
    observation.stack = StackNames(delivery_stream="s", fanout_trigger="direct")
    assert not [c for c in evaluate(observation, THRESHOLDS) if c.name.startswith("buffer")]


def test_alarms_in_alarm_are_named_and_none_deployed_is_said() -> None:
    observation = healthy()
    observation.alarms = [{"name": "a-freshness", "state": "ALARM"}, {"name": "a-throttled", "state": "OK"}]
    found = check(evaluate(observation, THRESHOLDS), "alarms in ALARM")
    assert (found.verdict, found.value, found.detail) == (Verdict.WARN, "1 of 2", "a-freshness")
    observation.alarms = None
    assert check(evaluate(observation, THRESHOLDS), "alarms in ALARM").value == "none deployed"


def test_a_queue_that_cannot_be_read_is_unknown_with_the_reason() -> None:
    observation = healthy()
    observation.dead_letter_queue = QueueState("sales-dlq", error="AccessDenied: not allowed")
    checks = evaluate(observation, THRESHOLDS)
    assert check(checks, "dead-letter queue depth").verdict is Verdict.UNKNOWN
    assert exit_status(overall(checks)) == 3


def test_critical_outranks_unknown_which_outranks_warning() -> None:
    def c(verdict: Verdict) -> Check:
        return Check("x", verdict, "", "")

    assert overall([c(Verdict.WARN), c(Verdict.UNKNOWN)]) is Verdict.UNKNOWN
    assert overall([c(Verdict.UNKNOWN), c(Verdict.FAIL), c(Verdict.WARN)]) is Verdict.FAIL
    assert overall([c(Verdict.NO_DATA)]) is Verdict.OK


def test_text_output_has_the_summary_first_and_json_the_same_verdicts() -> None:
    observation = healthy(throttled_records=series(4))
    checks = evaluate(observation, THRESHOLDS)
    text = render_text(checks, observation)
    assert text.splitlines()[0] == summary_line(checks, observation)
    document = to_json(checks, observation)
    assert (document["status"], document["exit_status"]) == ("WARNING", 1)
    assert {"name": "ThrottledRecords", "verdict": "WARN"}.items() <= document["checks"][3].items()


@pytest.mark.parametrize(
    ("text", "seconds"), [("30m", 1800), ("2h", 7200), ("1d", 86400), ("90s", 90), (" 1w ", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "0h", "2 hours", "-1h", "64d"])
def test_bad_durations_are_one_line_errors_with_exit_3(text: str) -> None:
    with pytest.raises(OperatorError, match="--since") as raised:
        parse_duration(text)
    assert raised.value.exit_status == 3


def test_the_window_starts_on_a_period_boundary_and_is_labelled_as_asked() -> None:
    window = Window.ending(datetime(2026, 11, 27, 12, 7, 30, tzinfo=UTC), timedelta(minutes=30))
    assert window.start == datetime(2026, 11, 27, 11, 35, tzinfo=UTC)
    assert window.label == "last 30m"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_watch_refreshes_in_place_on_a_terminal_and_returns_the_last_status() -> None:
    statuses = iter([0, 1])
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    out = _Terminal()
    assert watch(lambda: next(statuses), 5, out=out, sleep=sleep) == 1
    assert out.getvalue().count("\x1b[H\x1b[2J") == 2
    plain = io.StringIO()
    statuses = iter([2, 2])
    sleeps.clear()
    assert watch(lambda: next(statuses), 5, out=plain, sleep=sleep) == 2
    assert "\x1b" not in plain.getvalue()


class _PagingCloudWatch:
    """Answers GetMetricData in two pages per call, one datapoint per query, and records every call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def get_metric_data(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        queries = request["MetricDataQueries"]
        half = len(queries) // 2
        chosen = queries[half:] if "NextToken" in request else queries[:half]
        page: dict[str, Any] = {
            "MetricDataResults": [
                {"Id": q["Id"], "Timestamps": [END - timedelta(minutes=5)], "Values": [1.0]} for q in chosen
            ]
        }
        if "NextToken" not in request:
            page["NextToken"] = "next"
        return page


class _Sqs:
    def get_queue_attributes(self, **request: Any) -> dict[str, Any]:
        return {"Attributes": {"ApproximateNumberOfMessages": "2", "ApproximateNumberOfMessagesNotVisible": "1",
                               "MessageRetentionPeriod": "1209600"}}  # fmt: skip


def test_collect_asks_for_at_most_500_queries_a_call_and_reads_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    from operations import monitor

    # the module, not the function of the same name the package exports; the plan has 24 queries: 4 calls of <= 7
    monkeypatch.setattr(importlib.import_module("operations.monitor.collect"), "MAX_QUERIES_PER_CALL", 7)
    cloudwatch = _PagingCloudWatch()
    stack = StackNames(**{**STACK.__dict__, "alarm_names": None})
    observation = monitor.collect(cloudwatch, _Sqs(), stack, WINDOW)
    first_pages = [c for c in cloudwatch.calls if "NextToken" not in c]
    assert [len(c["MetricDataQueries"]) for c in first_pages] == [7, 7, 7, 3]
    assert len(cloudwatch.calls) == 8  # each call's second page read too
    assert all(not s.empty for s in observation.series.values()), "every query's datapoint was kept"
    assert observation.dead_letter_queue == QueueState("sales-dlq", 2, 1, 1_209_600)
    first = first_pages[0]
    assert (first["StartTime"], first["EndTime"], first["ScanBy"]) == (WINDOW.start, WINDOW.end, "TimestampAscending")
    freshness = next(
        q for c in first_pages for q in c["MetricDataQueries"]
        if q["MetricStat"]["Metric"]["MetricName"] == "DeliveryToS3.DataFreshness"
    )  # fmt: skip
    assert freshness["MetricStat"]["Stat"] == "Maximum" and freshness["MetricStat"]["Period"] == 300
    assert freshness["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "DeliveryStreamName", "Value": "sales-history"}]


def test_a_cloudwatch_error_is_unknown_with_its_code() -> None:
    from botocore.exceptions import ClientError

    from operations import monitor

    class Refusing:
        def get_metric_data(self, **_: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetMetricData")

    with pytest.raises(OperatorError, match="cannot read CloudWatch metrics: AccessDenied: no") as raised:
        monitor.collect(Refusing(), _Sqs(), STACK, WINDOW)
    assert raised.value.exit_status == 3
