"""``sales-pipeline monitor``: is Firehose delivery healthy right now, and if not, what is wrong?

Reads the stack's CloudWatch metrics over a window (GetMetricData, up to 500 queries a call, every page),
the live depth of its queues (GetQueueAttributes) and the states of its alarms (DescribeAlarms), judges
each with a stated threshold, and prints one summary line first, then the details. Exit status follows
the monitoring-plugin convention that cron, CI and monitoring systems read (see :data:`EXIT_STATUS_HELP`).

The work splits in three so the report and the tests reuse it: :func:`collect` reads (boto3 only),
:func:`evaluate` judges (pure), :func:`render_text` / :func:`to_json` print.
"""

from __future__ import annotations

import argparse
import enum
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pipeline_config
from operations import aws, metrics
from operations import outputs as stack_outputs
from operations.errors import OperatorError

__all__ = [
    "EXIT_STATUS_HELP",
    "LOCAL_RUN_MARKER",
    "Check",
    "Observation",
    "QueueState",
    "Series",
    "StackNames",
    "Thresholds",
    "Verdict",
    "Window",
    "collect",
    "evaluate",
    "exit_status",
    "overall",
    "parse_duration",
    "refuse_ended_local_run",
    "register",
    "render_text",
    "summary_line",
    "to_json",
    "watch",
]

#: Firehose's recommended rate unit: the peak five-minute sum divided by 300 s.
PERIOD = 300
#: GetMetricData accepts at most 500 queries per call.
MAX_QUERIES_PER_CALL = 500
#: CloudWatch keeps five-minute datapoints for 63 days.
MAX_WINDOW = timedelta(days=63)
#: The queue age (as a share of the queue's retention) past which dead letters are about to expire.
EXPIRY_SHARE = 0.75

EXIT_STATUS_HELP = """exit status (the monitoring-plugin convention):
  0  OK        every check healthy (checks without data are listed, and do not count)
  1  WARNING   something needs a look: throttled or failed records, dead letters, Lambda errors, an alarm
  2  CRITICAL  delivery is failing or behind: freshness above its threshold, S3 delivery or the transform
               failing, partitions over the limit, incoming traffic at the quota, nothing delivered
  3  UNKNOWN   could not read: no outputs, no credentials, CloudWatch refused, a bad option value, or
               no Firehose metric at all for the stream
"""


class Verdict(enum.Enum):
    """A check's verdict. NO DATA is neutral: it is said, and counts for nothing in the overall verdict."""

    OK = "OK"
    NO_DATA = "NO DATA"
    WARN = "WARN"
    UNKNOWN = "UNKNOWN"
    FAIL = "FAIL"


# Monitoring-plugin severity: CRITICAL outranks UNKNOWN, which outranks WARNING.
_RANK = {Verdict.OK: 0, Verdict.NO_DATA: 0, Verdict.WARN: 1, Verdict.UNKNOWN: 2, Verdict.FAIL: 3}
_EXIT = {Verdict.OK: 0, Verdict.NO_DATA: 0, Verdict.WARN: 1, Verdict.FAIL: 2, Verdict.UNKNOWN: 3}
_PLUGIN_WORD = {Verdict.OK: "OK", Verdict.WARN: "WARNING", Verdict.FAIL: "CRITICAL", Verdict.UNKNOWN: "UNKNOWN"}


@dataclass(frozen=True)
class Window:
    """The time range read, aligned to the period so buckets are whole."""

    start: datetime
    end: datetime
    period: int = PERIOD
    #: What was asked for (``--since``); the start is aligned down from ``end - length``.
    length: timedelta | None = None

    @classmethod
    def ending(cls, end: datetime, length: timedelta, period: int = PERIOD) -> Window:
        """The window of ``length`` up to ``end``, its start aligned down to a multiple of ``period``."""
        start = end - length
        aligned = datetime.fromtimestamp(int(start.timestamp()) // period * period, UTC)
        return cls(aligned, end, period, length)

    @property
    def label(self) -> str:
        """``last 1h`` style."""
        return f"last {format_duration(self.length or (self.end - self.start))}"


@dataclass(frozen=True)
class Series:
    """One query's datapoints, oldest first; empty when CloudWatch had none in the window."""

    timestamps: tuple[datetime, ...] = ()
    values: tuple[float, ...] = ()

    @property
    def empty(self) -> bool:
        """No datapoint in the window."""
        return not self.values

    @property
    def total(self) -> float:
        """Sum of the datapoints."""
        return float(sum(self.values))

    @property
    def peak(self) -> float:
        """Largest datapoint (0 when empty)."""
        return max(self.values, default=0.0)

    @property
    def lowest(self) -> float:
        """Smallest datapoint (0 when empty)."""
        return min(self.values, default=0.0)

    @property
    def latest(self) -> float:
        """Newest datapoint (0 when empty)."""
        return self.values[-1] if self.values else 0.0


@dataclass(frozen=True)
class QueueState:
    """A queue's live counts (GetQueueAttributes), or the error that stopped reading them."""

    name: str
    visible: int = 0
    in_flight: int = 0
    retention_seconds: int | None = None
    error: str | None = None

    @property
    def depth(self) -> int:
        """Messages in the queue, visible or being received."""
        return self.visible + self.in_flight


@dataclass(frozen=True)
class StackNames:
    """What monitor watches, from the stack's outputs."""

    delivery_stream: str
    region: str | None = None
    fanout_lambda: str | None = None
    transform_lambda: str | None = None
    dead_letter_queue_url: str | None = None
    fanout_trigger: str | None = None
    buffer_queue_url: str | None = None
    alarm_names: tuple[str, ...] | None = None
    metrics_namespace: str = metrics.EMF_NAMESPACE

    @classmethod
    def from_outputs(cls, values: stack_outputs.StackOutputs, *, metrics_namespace: str | None = None) -> StackNames:
        """Names from ``terraform output -json`` (or a local run's outputs.json)."""
        alarms = values.get("alarm_names")
        return cls(
            delivery_stream=str(values.require("delivery_stream_name")),
            region=values.get("aws_region"),
            fanout_lambda=values.get("fanout_lambda_name"),
            transform_lambda=values.get("transform_lambda_name"),
            dead_letter_queue_url=values.get("dead_letter_queue_url"),
            fanout_trigger=values.get("fanout_trigger"),
            buffer_queue_url=values.get("buffer_queue_url"),
            alarm_names=tuple(alarms) if alarms else None,
            metrics_namespace=metrics_namespace or metrics.EMF_NAMESPACE,
        )


@dataclass(frozen=True)
class Thresholds:
    """Every threshold monitor judges by; the ones an alarm shares are computed by the alarm's rule."""

    freshness_seconds: int
    buffering_interval_seconds: int
    active_partitions_limit: int
    buffer_visibility_timeout_seconds: int
    buffer_max_receive_count: int
    incoming_limit_percent: float = metrics.INCOMING_LIMIT_PERCENT
    partitions_warn_percent: float = metrics.PARTITIONS_WARN_PERCENT

    @classmethod
    def from_declarations(cls, pipeline: Mapping[str, Any] | None = None) -> Thresholds:
        """From ``pipeline_config/pipeline.json`` (the file Terraform reads too)."""
        declared = pipeline if pipeline is not None else pipeline_config.load()
        firehose = declared["firehose"]
        return cls(
            freshness_seconds=metrics.freshness_threshold_seconds(firehose),
            buffering_interval_seconds=int(firehose["buffering_interval_seconds"]),
            active_partitions_limit=int(firehose["active_partitions_limit"]),
            buffer_visibility_timeout_seconds=int(declared["buffer_queue"]["visibility_timeout_seconds"]),
            buffer_max_receive_count=int(declared["buffer_queue"]["max_receive_count"]),
        )


@dataclass
class Observation:
    """Everything read from the stack for one window."""

    stack: StackNames
    window: Window
    series: dict[str, Series] = field(default_factory=dict)
    dead_letter_queue: QueueState | None = None
    buffer_queue: QueueState | None = None
    alarms: list[dict[str, Any]] | None = None
    alarms_error: str | None = None
    #: False when CloudWatch holds no AWS/Firehose metric at all for the stream (wrong stream or region).
    stream_known: bool = True

    def get(self, key: str) -> Series:
        """The series read under ``key``, empty when it was not read or had no data."""
        return self.series.get(key, Series())


@dataclass(frozen=True)
class Check:
    """One judged check."""

    name: str
    verdict: Verdict
    value: str
    threshold: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        """JSON-ready."""
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
        }


# -- reading ---------------------------------------------------------------------------------------------------


def metric_queries(stack: StackNames) -> dict[str, tuple[metrics.Metric, str, str | None]]:
    """Series key -> (metric, dimension value, namespace override) for everything monitor and report read."""
    firehose_keys = [key for key, metric in metrics.ALL.items() if metric.namespace == metrics.FIREHOSE]
    plan: dict[str, tuple[metrics.Metric, str, str | None]] = {
        key: (metrics.ALL[key], stack.delivery_stream, None) for key in firehose_keys
    }
    plan["transform_records_failed"] = (
        metrics.ALL["transform_records_failed"],
        metrics.TRANSFORM_SERVICE,
        stack.metrics_namespace,
    )
    for role, name in (("fanout", stack.fanout_lambda), ("transform", stack.transform_lambda)):
        if name:
            plan[f"{role}.lambda_errors"] = (metrics.ALL["lambda_errors"], name, None)
            plan[f"{role}.lambda_throttles"] = (metrics.ALL["lambda_throttles"], name, None)
    for role, url in (("dlq", stack.dead_letter_queue_url), ("buffer", _buffer_url(stack))):
        if url:
            plan[f"{role}.queue_visible"] = (metrics.ALL["queue_visible"], queue_name(url), None)
            plan[f"{role}.queue_oldest_age"] = (metrics.ALL["queue_oldest_age"], queue_name(url), None)
    return plan


def collect(cloudwatch: Any, sqs: Any, stack: StackNames, window: Window) -> Observation:
    """Read the window's metrics, the queues' live counts and the alarms' states.

    A failed CloudWatch metrics read raises :class:`OperatorError` (exit 3): nothing can be judged without
    it. A queue or alarm read that fails is recorded and judged UNKNOWN on its own.
    """
    observation = Observation(stack=stack, window=window)
    plan = metric_queries(stack)
    ids = {f"m{index}": key for index, key in enumerate(plan)}
    queries = [metric.query(query_id, value, window.period, namespace=ns) for query_id, (metric, value, ns) in
               zip(ids, plan.values(), strict=True)]  # fmt: skip
    points: dict[str, list[tuple[datetime, float]]] = {key: [] for key in plan}
    try:
        for start in range(0, len(queries), MAX_QUERIES_PER_CALL):
            for result in _metric_data_pages(cloudwatch, queries[start : start + MAX_QUERIES_PER_CALL], window):
                points[ids[result["Id"]]] += zip(result.get("Timestamps", []), result.get("Values", []), strict=True)
        if all(not points[key] for key in plan if plan[key][0].namespace == metrics.FIREHOSE):
            observation.stream_known = _stream_has_metrics(cloudwatch, stack.delivery_stream)
    except Exception as exc:
        _reraise_unless_aws(exc)
        raise OperatorError(f"cannot read CloudWatch metrics: {_describe(exc)}", exit_status=3) from exc
    observation.series = {key: _series(found) for key, found in points.items()}
    if stack.dead_letter_queue_url:
        observation.dead_letter_queue = read_queue(sqs, stack.dead_letter_queue_url)
    if _buffer_url(stack):
        observation.buffer_queue = read_queue(sqs, str(stack.buffer_queue_url))
    if stack.alarm_names:
        try:
            observation.alarms = read_alarms(cloudwatch, stack.alarm_names)
        except Exception as exc:  # judged UNKNOWN, with the reason
            _reraise_unless_aws(exc)
            observation.alarms_error = _describe(exc)
    return observation


def _metric_data_pages(cloudwatch: Any, queries: list[dict[str, Any]], window: Window) -> Iterable[dict[str, Any]]:
    request: dict[str, Any] = {
        "MetricDataQueries": queries,
        "StartTime": window.start,
        "EndTime": window.end,
        "ScanBy": "TimestampAscending",
    }
    while True:
        page = cloudwatch.get_metric_data(**request)
        yield from page.get("MetricDataResults", [])
        token = page.get("NextToken")
        if not token:
            return
        request["NextToken"] = token


def _stream_has_metrics(cloudwatch: Any, stream: str) -> bool:
    page = cloudwatch.list_metrics(
        Namespace=metrics.FIREHOSE, Dimensions=[{"Name": "DeliveryStreamName", "Value": stream}]
    )
    return bool(page.get("Metrics"))


def _series(points: list[tuple[datetime, float]]) -> Series:
    ordered = sorted(points, key=lambda point: point[0])
    return Series(tuple(p[0] for p in ordered), tuple(float(p[1]) for p in ordered))


def read_queue(sqs: Any, url: str) -> QueueState:
    """A queue's live message counts and retention."""
    try:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "MessageRetentionPeriod",
            ],
        )["Attributes"]
    except Exception as exc:  # judged UNKNOWN, with the reason
        _reraise_unless_aws(exc)
        return QueueState(queue_name(url), error=_describe(exc))
    return QueueState(
        queue_name(url),
        visible=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        retention_seconds=int(attributes["MessageRetentionPeriod"]) if "MessageRetentionPeriod" in attributes else None,
    )


def read_alarms(cloudwatch: Any, names: Sequence[str]) -> list[dict[str, Any]]:
    """Name, state and reason of each alarm (DescribeAlarms takes 100 names a call)."""
    found: list[dict[str, Any]] = []
    for start in range(0, len(names), 100):
        paginator = cloudwatch.get_paginator("describe_alarms")
        for page in paginator.paginate(AlarmNames=list(names[start : start + 100])):
            for alarm in [*page.get("MetricAlarms", []), *page.get("CompositeAlarms", [])]:
                found.append(
                    {
                        "name": alarm["AlarmName"],
                        "state": alarm.get("StateValue", "INSUFFICIENT_DATA"),
                        "reason": alarm.get("StateReason", ""),
                    }
                )
    return found


def queue_name(url: str) -> str:
    """The queue name (AWS/SQS's QueueName dimension) from its URL."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _buffer_url(stack: StackNames) -> str | None:
    return stack.buffer_queue_url if stack.fanout_trigger == "queue" else None


def _reraise_unless_aws(exc: Exception) -> None:
    """Errors of the SDK (refused, unreachable, no credentials) are "could not read"; any other is a bug."""
    if not type(exc).__module__.startswith(("botocore", "boto3")):
        raise exc


def _describe(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping) and "Error" in response:
        error = response["Error"]
        return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', '')}".rstrip(": ")
    return f"{type(exc).__name__}: {exc}"


# -- judging ---------------------------------------------------------------------------------------------------


def evaluate(observation: Observation, thresholds: Thresholds) -> list[Check]:
    """Judge every check of ``observation``; pure (no I/O)."""
    checks: list[Check] = []
    if not observation.stream_known:
        checks.append(
            Check(
                "Firehose metrics",
                Verdict.UNKNOWN,
                "none",
                "any AWS/Firehose metric for the stream",
                f"CloudWatch holds no AWS/Firehose metric for stream {observation.stack.delivery_stream!r} "
                f"in {observation.stack.region or 'this region'}: wrong outputs, region or stream?",
            )
        )
    checks += _incoming_checks(observation, thresholds)
    checks += _delivery_checks(observation, thresholds)
    checks += _processing_checks(observation)
    checks += _partition_checks(observation, thresholds)
    checks += _lambda_checks(observation)
    checks += _queue_checks(observation, thresholds)
    checks.append(_alarm_check(observation))
    return checks


def _incoming_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    documented = metrics.documented_stream_limits(observation.stack.region)
    checks = []
    for kind, metric_key, limit_key, unit in (
        ("records", "incoming_records", "records_per_second_limit", "records/s"),
        ("bytes", "incoming_bytes", "bytes_per_second_limit", "bytes/s"),
        ("put_requests", "incoming_put_requests", "put_requests_per_second_limit", "requests/s"),
    ):
        metric, limit_metric = metrics.ALL[metric_key], metrics.ALL[limit_key]
        limit_series = observation.get(limit_key)
        if limit_series.empty:
            limit, limit_source = documented[kind], f"documented default for {observation.stack.region}"
        else:
            limit, limit_source = limit_series.lowest, limit_metric.name
        threshold = (
            f"warn > {thresholds.incoming_limit_percent:g}%, fail >= 100% of {limit:,.0f} {unit} ({limit_source})"
        )
        series = observation.get(metric_key)
        name = f"{metric.name} vs {limit_metric.name}"
        if series.empty:
            checks.append(Check(name, Verdict.NO_DATA, "no data", threshold, "nothing came in"))
            continue
        rate = series.peak / observation.window.period
        share = 100 * rate / limit if limit else 0.0
        verdict = (
            Verdict.FAIL if share >= 100 else Verdict.WARN if share > thresholds.incoming_limit_percent else Verdict.OK
        )
        value = f"{share:.2f}% (peak {rate:,.2f} {unit} over 5 min)"
        detail = "" if verdict is Verdict.OK else "batch more per call or ask AWS to raise the quota"
        checks.append(Check(name, verdict, value, threshold, detail))
    throttled = observation.get("throttled_records")
    checks.append(
        _count_check(
            "ThrottledRecords",
            throttled,
            Verdict.WARN,
            "Firehose refused records over its quota; the fan-out resends them",
            none_means="none reported",
        )
    )
    return checks


def _count_check(name: str, series: Series, verdict: Verdict, problem: str, *, none_means: str) -> Check:
    """A failure counter: any count above 0 is ``verdict``; no datapoint means nothing was counted."""
    if series.empty:
        return Check(name, Verdict.NO_DATA, "no data", "> 0", none_means)
    total = series.total
    if total > 0:
        return Check(name, verdict, f"{total:,.0f}", "> 0", problem)
    return Check(name, Verdict.OK, "0", "> 0")


def _delivery_gap(observation: Observation, thresholds: Thresholds) -> Check | None:
    """FAIL when records came in earlier than the freshness threshold allows and nothing was delivered."""
    incoming = observation.get("incoming_records")
    if incoming.empty or incoming.total <= 0:
        return None
    first = incoming.timestamps[0]
    overdue = observation.window.end - timedelta(seconds=thresholds.freshness_seconds + observation.window.period)
    if first > overdue:
        return None
    return Check(
        "delivery",
        Verdict.FAIL,
        "no data",
        f"a delivery within {thresholds.freshness_seconds} s of incoming records",
        f"{incoming.total:,.0f} records came in since {first:%H:%M} UTC but Firehose reported no delivery",
    )


def _no_data(name: str, threshold: str, gap: Check | None, detail: str = "no delivery in the window") -> Check:
    if gap is not None:
        return Check(name, Verdict.FAIL, "no data", threshold, gap.detail)
    return Check(name, Verdict.NO_DATA, "no data", threshold, detail)


def _delivery_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    gap = _delivery_gap(observation, thresholds)
    checks = []
    success = observation.get("delivery_success")
    threshold = "warn < 1 in any 5 min, fail when the latest is 0"
    if success.empty:
        checks.append(_no_data("DeliveryToS3.Success", threshold, gap))
    elif success.latest == 0:
        checks.append(Check("DeliveryToS3.Success", Verdict.FAIL, "0 (latest)", threshold, "S3 puts are failing"))
    elif success.lowest < 1:
        value = f"{success.lowest:.3f} (lowest)"
        checks.append(Check("DeliveryToS3.Success", Verdict.WARN, value, threshold, "some S3 puts failed (retried)"))
    else:
        checks.append(Check("DeliveryToS3.Success", Verdict.OK, f"{success.lowest:g}", threshold))

    freshness = observation.get("data_freshness")
    threshold = (
        f"{thresholds.freshness_seconds} s (1.5 x {thresholds.buffering_interval_seconds} s buffering + processor "
        "buffer + 60 s, as the alarm)"
    )
    if freshness.empty:
        checks.append(_no_data("DeliveryToS3.DataFreshness", threshold, gap))
    elif freshness.latest > thresholds.freshness_seconds:
        value = f"{freshness.latest:,.0f} s (latest)"
        detail = "delivery to S3 is falling behind: the oldest record waits longer than normal delivery takes"
        checks.append(Check("DeliveryToS3.DataFreshness", Verdict.FAIL, value, threshold, detail))
    elif freshness.peak > thresholds.freshness_seconds:
        value = f"{freshness.peak:,.0f} s (peak), {freshness.latest:,.0f} s latest"
        detail = "delivery fell behind earlier in the window and has caught up"
        checks.append(Check("DeliveryToS3.DataFreshness", Verdict.WARN, value, threshold, detail))
    else:
        value = f"{freshness.peak:,.0f} s (peak)"
        checks.append(Check("DeliveryToS3.DataFreshness", Verdict.OK, value, threshold))

    delivered = observation.get("delivered_records")
    if delivered.empty:
        checks.append(_no_data("DeliveryToS3.Records", "records delivered while records come in", gap))
    else:
        incoming = observation.get("incoming_records").total
        value = f"{delivered.total:,.0f} (incoming {incoming:,.0f})"
        checks.append(Check("DeliveryToS3.Records", Verdict.OK, value, "records delivered while records come in"))
    return checks


def _processing_checks(observation: Observation) -> list[Check]:
    checks = []
    success = observation.get("processing_success")
    threshold = "warn < 1 in any 5 min (as the alarm), fail when the latest is 0"
    if success.empty:
        checks.append(Check("ExecuteProcessing.Success", Verdict.NO_DATA, "no data", threshold, "no transform ran"))
    elif success.latest == 0:
        detail = "every transform invocation is failing: records go to processing-failed after the retries"
        checks.append(Check("ExecuteProcessing.Success", Verdict.FAIL, "0 (latest)", threshold, detail))
    elif success.lowest < 1:
        detail = "some transform invocations failed (Firehose retries them)"
        value = f"{success.lowest:.3f} (lowest)"
        checks.append(Check("ExecuteProcessing.Success", Verdict.WARN, value, threshold, detail))
    else:
        checks.append(Check("ExecuteProcessing.Success", Verdict.OK, f"{success.lowest:g}", threshold))
    checks.append(
        _count_check(
            "TransformRecordsFailed",
            observation.get("transform_records_failed"),
            Verdict.WARN,
            "the transform failed records: they are under the error prefix (processing-failed)",
            none_means="none reported",
        )
    )
    checks.append(
        _count_check(
            "FailedConversion.Records",
            observation.get("failed_conversion_records"),
            Verdict.WARN,
            "records failed Parquet conversion: they are under the error prefix (format-conversion-failed)",
            none_means="none reported",
        )
    )
    return checks


def _partition_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    count, limit_series = observation.get("partition_count"), observation.get("active_partitions_limit")
    if limit_series.empty:
        limit, source = float(thresholds.active_partitions_limit), "pipeline.json active_partitions_limit"
    else:
        limit, source = limit_series.lowest, "ActivePartitionsLimit"
    threshold = f"warn >= {thresholds.partitions_warn_percent:g}%, fail >= 100% of {limit:,.0f} ({source})"
    name = "PartitionCount vs ActivePartitionsLimit"
    if count.empty:
        checks = [Check(name, Verdict.NO_DATA, "no data", threshold, "no partitioned delivery in the window")]
    else:
        share = 100 * count.peak / limit if limit else 0.0
        verdict = (
            Verdict.FAIL
            if share >= 100
            else Verdict.WARN
            if share >= thresholds.partitions_warn_percent
            else Verdict.OK
        )
        detail = "" if verdict is Verdict.OK else "ask AWS to raise ActivePartitionsLimit before records overflow"
        checks = [Check(name, verdict, f"{count.peak:,.0f} ({share:.1f}%)", threshold, detail)]
    exceeded = observation.get("partition_count_exceeded")
    if exceeded.empty:
        checks.append(
            Check("PartitionCountExceeded", Verdict.NO_DATA, "no data", ">= 1 (as the alarm)", "none reported")
        )
    elif exceeded.peak >= 1:
        detail = "records over the partition limit go to the error prefix"
        checks.append(
            Check("PartitionCountExceeded", Verdict.FAIL, f"{exceeded.peak:g}", ">= 1 (as the alarm)", detail)
        )
    else:
        checks.append(Check("PartitionCountExceeded", Verdict.OK, "0", ">= 1 (as the alarm)"))
    return checks


def _lambda_checks(observation: Observation) -> list[Check]:
    checks = []
    for role, name in (("fanout", observation.stack.fanout_lambda), ("transform", observation.stack.transform_lambda)):
        for key, metric_name, problem in (
            ("lambda_errors", "Errors", "invocations raised errors (retried; persistent ones end in the DLQ)"),
            ("lambda_throttles", "Throttles", "invocations were throttled (concurrency reached)"),
        ):  # fmt: skip
            label = f"{role} Lambda {metric_name}"
            if not name:
                checks.append(
                    Check(label, Verdict.NO_DATA, "no data", "> 0", f"the outputs have no {role}_lambda_name")
                )
                continue
            series = observation.get(f"{role}.{key}")
            checks.append(_count_check(f"{label} ({name})", series, Verdict.WARN, problem, none_means="none reported"))
    return checks


def _queue_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    checks: list[Check] = []
    dlq = observation.dead_letter_queue
    if dlq is None:
        checks.append(Check("dead-letter queue depth", Verdict.NO_DATA, "no data", "> 0", "no dead_letter_queue_url"))
    elif dlq.error:
        checks.append(Check("dead-letter queue depth", Verdict.UNKNOWN, "unread", "> 0", dlq.error))
    else:
        value = f"{dlq.depth:,} ({dlq.in_flight:,} in flight)" if dlq.in_flight else f"{dlq.depth:,}"
        verdict = Verdict.WARN if dlq.depth > 0 else Verdict.OK
        detail = f"dead letters in {dlq.name}: look at them and replay" if dlq.depth else ""
        checks.append(Check("dead-letter queue depth", verdict, value, "> 0", detail))
        checks.append(_dlq_age_check(observation.get("dlq.queue_oldest_age"), dlq))
    if observation.stack.fanout_trigger == "queue":
        checks += _buffer_checks(observation, thresholds)
    return checks


def _dlq_age_check(age: Series, dlq: QueueState) -> Check:
    name = "dead-letter queue ApproximateAgeOfOldestMessage"
    if dlq.retention_seconds is None:
        return Check(name, Verdict.NO_DATA, "no data", "retention unknown", "GetQueueAttributes gave no retention")
    limit = EXPIRY_SHARE * dlq.retention_seconds
    threshold = f"fail > {limit:,.0f} s ({EXPIRY_SHARE:.0%} of the queue's {dlq.retention_seconds:,} s retention)"
    if age.empty:
        return Check(name, Verdict.NO_DATA, "no data", threshold, "SQS publishes it only while the queue is active")
    if age.latest > limit:
        detail = "dead letters are about to expire unread: replay or save them now"
        return Check(name, Verdict.FAIL, f"{age.latest:,.0f} s", threshold, detail)
    return Check(name, Verdict.OK, f"{age.latest:,.0f} s", threshold)


def _buffer_checks(observation: Observation, thresholds: Thresholds) -> list[Check]:
    buffer = observation.buffer_queue
    if buffer is None:
        return [Check("buffer queue backlog", Verdict.NO_DATA, "no data", "-", "the outputs have no buffer_queue_url")]
    if buffer.error:
        return [Check("buffer queue backlog", Verdict.UNKNOWN, "unread", "-", buffer.error)]
    warn = thresholds.buffer_visibility_timeout_seconds
    fail = warn * thresholds.buffer_max_receive_count
    threshold = f"oldest message: warn > {warn} s (visibility timeout), fail > {fail:,} s (x max_receive_count)"
    value = f"{buffer.depth:,} messages ({buffer.in_flight:,} in flight)"
    age = observation.get("buffer.queue_oldest_age")
    if age.empty:
        verdict = Verdict.NO_DATA if buffer.depth == 0 else Verdict.OK
        return [Check("buffer queue backlog", verdict, value, threshold, "no age metric in the window")]
    value += f", oldest {age.latest:,.0f} s"
    if age.latest > fail:
        detail = "the fan-out is not draining the buffer queue"
        return [Check("buffer queue backlog", Verdict.FAIL, value, threshold, detail)]
    if age.latest > warn:
        detail = "messages wait longer than one processing attempt: failures being retried, or the fan-out is behind"
        return [Check("buffer queue backlog", Verdict.WARN, value, threshold, detail)]
    return [Check("buffer queue backlog", Verdict.OK, value, threshold)]


def _alarm_check(observation: Observation) -> Check:
    if observation.alarms_error:
        return Check("alarms in ALARM", Verdict.UNKNOWN, "unread", "any", observation.alarms_error)
    if observation.alarms is None:
        return Check("alarms in ALARM", Verdict.NO_DATA, "none deployed", "any", "the outputs list no alarm_names")
    firing = [a["name"] for a in observation.alarms if a["state"] == "ALARM"]
    insufficient = sum(1 for a in observation.alarms if a["state"] == "INSUFFICIENT_DATA")
    value = f"{len(firing)} of {len(observation.alarms)}" + (
        f" ({insufficient} insufficient data)" if insufficient else ""
    )
    if firing:
        return Check("alarms in ALARM", Verdict.WARN, value, "any", ", ".join(firing))
    return Check("alarms in ALARM", Verdict.OK, value, "any")


def overall(checks: Sequence[Check]) -> Verdict:
    """The worst verdict: FAIL, then UNKNOWN, then WARN; OK when every check is OK or has no data."""
    worst = max(checks, key=lambda check: _RANK[check.verdict], default=None)
    if worst is None or _RANK[worst.verdict] == 0:
        return Verdict.OK
    return worst.verdict


def exit_status(verdict: Verdict) -> int:
    """0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    return _EXIT[verdict]


# -- printing --------------------------------------------------------------------------------------------------


def summary_line(checks: Sequence[Check], observation: Observation) -> str:
    """``CRITICAL: DeliveryToS3.DataFreshness 900 s (latest) > 570 s; ...`` then the stream and window."""
    verdict = overall(checks)
    where = f"stream {observation.stack.delivery_stream}, {observation.window.label}"
    problems = [c for c in checks if _RANK[c.verdict] > 0]
    problems.sort(key=lambda check: -_RANK[check.verdict])
    if not problems:
        with_data = sum(1 for c in checks if c.verdict is Verdict.OK)
        return f"OK: Firehose delivery healthy ({with_data} checks OK, {len(checks) - with_data} without data; {where})"
    named = "; ".join(f"{c.name} {c.value}" for c in problems)
    return f"{_PLUGIN_WORD[verdict]}: {named} ({where})"


def render_text(checks: Sequence[Check], observation: Observation) -> str:
    """The summary line, then one row per check and its detail."""
    rows = [(c.verdict.value, c.name, c.value, c.threshold) for c in checks]
    widths = [max(len(row[i]) for row in [("VERDICT", "CHECK", "VALUE", "THRESHOLD"), *rows]) for i in range(3)]
    lines = [summary_line(checks, observation), ""]
    header = ("VERDICT", "CHECK", "VALUE", "THRESHOLD")
    for row, check in zip([header, *rows], [None, *checks], strict=True):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
        if check is not None and check.detail and check.verdict is not Verdict.OK:
            lines.append(" " * (widths[0] + 2) + "-> " + check.detail)
    window = observation.window
    lines.append("")
    lines.append(f"window {window.start:%Y-%m-%d %H:%M} to {window.end:%H:%M:%S} UTC, {window.period} s periods")
    return "\n".join(lines)


def to_json(checks: Sequence[Check], observation: Observation) -> dict[str, Any]:
    """The machine-readable result."""
    verdict = overall(checks)
    return {
        "status": _PLUGIN_WORD[verdict],
        "exit_status": exit_status(verdict),
        "summary": summary_line(checks, observation),
        "delivery_stream_name": observation.stack.delivery_stream,
        "window": {
            "start": observation.window.start.isoformat(),
            "end": observation.window.end.isoformat(),
            "period_seconds": observation.window.period,
        },
        "checks": [check.as_dict() for check in checks],
    }


# -- durations -------------------------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, *, option: str = "--since") -> timedelta:
    """``30m``, ``2h``, ``1d``, ``90s``, ``1w`` as a timedelta; a clear error otherwise."""
    match = _DURATION.match(text)
    if not match or int(match.group(1)) == 0:
        raise OperatorError(f"{option} {text!r}: expected a positive duration like 30m, 2h or 1d", exit_status=3)
    length = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if option == "--since" and length > MAX_WINDOW:
        raise OperatorError(f"{option} {text!r}: CloudWatch keeps five-minute data for 63 days at most", 3)
    return length


def format_duration(length: timedelta) -> str:
    """The shortest of ``1d``, ``2h``, ``30m``, ``45s`` that states ``length`` exactly."""
    seconds = int(length.total_seconds())
    for unit in ("w", "d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


# -- the command -----------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``monitor`` to the ``sales-pipeline`` command parsers."""
    parser = subparsers.add_parser(
        "monitor",
        help="is Firehose delivery healthy right now? (exit 0 OK, 1 warning, 2 critical, 3 unknown)",
        description="Read the stack's CloudWatch metrics over a window, its queues and its alarms; judge "
        "ingestion against the stream's quotas, throttling, delivery to S3 and its freshness, the transform, "
        "Parquet conversion, partitions, both Lambdas, the dead-letter and buffer queues. One summary line "
        "first, then one row per check with its value, threshold and verdict.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    aws.add_arguments(parser)
    parser.add_argument(
        "--since",
        default="1h",
        metavar="DURATION",
        help="the window read, up to now: 30m, 2h, 1d, ... (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document (per refresh) instead of text")
    parser.add_argument(
        "--watch",
        metavar="SECONDS",
        help="refresh every SECONDS (in place on a terminal) until interrupted; exits with the last status",
    )
    parser.add_argument(
        "--metrics-namespace",
        default=metrics.EMF_NAMESPACE,
        help="the Lambdas' EMF namespace (Terraform's metrics_namespace; default: %(default)s)",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    """``monitor``: every error that stops reading is UNKNOWN (3), never a traceback."""
    out = out or sys.stdout
    try:
        since = parse_duration(args.since)
        interval = _watch_seconds(args.watch)
        path = None if args.outputs is None else Path(args.outputs)
        values = stack_outputs.load(path)
        refuse_ended_local_run(path, values, args.endpoint_url)
        stack = StackNames.from_outputs(values, metrics_namespace=args.metrics_namespace)
        options = aws.AwsOptions.from_args(args, values)
        cloudwatch, sqs = options.client("cloudwatch"), options.client("sqs")
    except OperatorError as exc:
        raise OperatorError(str(exc), exit_status=3) from exc
    thresholds = Thresholds.from_declarations()

    def once() -> int:
        observation = collect(cloudwatch, sqs, stack, Window.ending(datetime.now(UTC), since))
        checks = evaluate(observation, thresholds)
        if args.json:
            print(json.dumps(to_json(checks, observation)), file=out)
        else:
            print(render_text(checks, observation), file=out)
        return exit_status(overall(checks))

    if interval is None:
        return once()
    return watch(once, interval, out=out)


#: The file ``sales-pipeline run`` leaves in its --out folder (local_pipeline.runner.LAKE_MARKER).
LOCAL_RUN_MARKER = ".sales-pipeline-lake"


def refuse_ended_local_run(path: Path | None, values: stack_outputs.StackOutputs, endpoint_url: str | None) -> None:
    """A local run on in-process moto leaves outputs without ``endpoint_url``: its AWS ended with the run, and
    the names in it must never be looked up in a real account."""
    if path is None or endpoint_url or values.get("endpoint_url"):
        return
    if (path.resolve().parent / LOCAL_RUN_MARKER).exists():
        raise OperatorError(
            f"--outputs {path}: a local run on in-process moto, which ended with the run; run it with "
            "--endpoint-url http://127.0.0.1:PORT (a moto_server) to watch it"
        )


def watch(
    once: Callable[[], int], interval: float, *, out: IO[str], sleep: Callable[[float], None] = time.sleep
) -> int:
    """Run ``once`` every ``interval`` seconds until Ctrl-C; on a terminal each refresh replaces the last."""
    status = 3
    in_place = out.isatty()
    try:
        while True:
            if in_place:
                out.write("\x1b[H\x1b[2J")  # cursor home, clear screen
            status = once()
            out.write(f"\n(refreshing every {interval:g} s; Ctrl-C to stop)\n" if in_place else "\n")
            out.flush()
            sleep(interval)
    except KeyboardInterrupt:
        return status


def _watch_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if seconds < 1:
        raise OperatorError(f"--watch {text!r}: expected a number of seconds, at least 1", exit_status=3)
    return seconds
