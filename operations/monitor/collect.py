"""What ``monitor`` reads: the stack's names, the window, the metric queries, CloudWatch and SQS.

Reading only (boto3-like clients in, plain values out); judging is :mod:`operations.monitor.checks`. The
durations (``--since``) are here too, because a window is stated in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from operations import metrics
from operations import outputs as stack_outputs
from operations.errors import OperatorError
from operations.monitor.dynamodb import write_queries, write_targets

__all__ = [
    "MAX_QUERIES_PER_CALL",
    "MAX_WINDOW",
    "PERIOD",
    "Observation",
    "QueueState",
    "Series",
    "StackNames",
    "Window",
    "collect",
    "format_duration",
    "metric_queries",
    "parse_duration",
    "queue_name",
    "read_alarms",
    "read_queue",
    "stream_key",
]

#: Firehose's recommended rate unit: the peak five-minute sum divided by 300 s.
PERIOD = 300
#: GetMetricData accepts at most 500 queries per call.
MAX_QUERIES_PER_CALL = 500
#: CloudWatch keeps five-minute datapoints for 63 days.
MAX_WINDOW = timedelta(days=63)


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
    """What monitor watches, from the stack's outputs.

    ``delivery_stream`` is stream 0; ``delivery_streams`` every stream (empty: ``delivery_stream`` alone)."""

    delivery_stream: str
    region: str | None = None
    fanout_lambda: str | None = None
    transform_lambda: str | None = None
    dead_letter_queue_url: str | None = None
    fanout_trigger: str | None = None
    buffer_queue_url: str | None = None
    sales_table: str | None = None
    idempotency_table: str | None = None
    alarm_names: tuple[str, ...] | None = None
    metrics_namespace: str = metrics.EMF_NAMESPACE
    delivery_streams: tuple[str, ...] = ()
    #: The lake's table format (output ``lake_table_format``; absent: a stack from before it, parquet).
    lake_table_format: str = "parquet"

    @property
    def streams(self) -> tuple[str, ...]:
        """Every delivery stream, stream 0 first."""
        return self.delivery_streams or (self.delivery_stream,)

    @classmethod
    def from_outputs(cls, values: stack_outputs.StackOutputs, *, metrics_namespace: str | None = None) -> StackNames:
        """Names from ``terraform output -json`` (or a local run's outputs.json)."""
        alarms = values.get("alarm_names")
        streams = stack_outputs.delivery_stream_names(values)
        return cls(
            delivery_stream=streams[0],
            delivery_streams=tuple(streams),
            region=values.get("aws_region"),
            fanout_lambda=values.get("fanout_lambda_name"),
            transform_lambda=values.get("transform_lambda_name"),
            dead_letter_queue_url=values.get("dead_letter_queue_url"),
            fanout_trigger=values.get("fanout_trigger"),
            buffer_queue_url=values.get("buffer_queue_url"),
            sales_table=values.get("sales_table_name"),
            idempotency_table=values.get("idempotency_table_name"),
            alarm_names=tuple(alarms) if alarms else None,
            metrics_namespace=metrics_namespace or metrics.EMF_NAMESPACE,
            lake_table_format=str(values.get("lake_table_format") or "parquet"),
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
    #: False when CloudWatch holds no AWS/Firehose metric at all for the stream (wrong stream or region);
    #: with several streams, False when that holds for any of them, named in ``unknown_streams``.
    stream_known: bool = True
    unknown_streams: tuple[str, ...] = ()

    def get(self, key: str) -> Series:
        """The series read under ``key``, empty when it was not read or had no data."""
        return self.series.get(key, Series())

    def for_stream(self, index: int) -> Observation:
        """The observation as one stack of stream ``index`` alone: its Firehose series under the plain keys
        (``incoming_records``), every other series, queue and alarm as they are."""
        name = self.stack.streams[index]
        series = {key: value for key, value in self.series.items() if not _is_stream_key(key)}
        for key in _FIREHOSE_KEYS:
            found = self.series.get(stream_key(index, key))
            if found is None:
                series.pop(key, None)
            else:
                series[key] = found
        known = self.stream_known if len(self.stack.streams) == 1 else name not in self.unknown_streams
        return replace(
            self,
            stack=replace(self.stack, delivery_stream=name, delivery_streams=(name,)),
            series=series,
            stream_known=known,
            unknown_streams=() if known else (name,),
        )


#: The series keys of the AWS/Firehose metrics, read once per stream.
_FIREHOSE_KEYS = tuple(key for key, metric in metrics.ALL.items() if metric.namespace == metrics.FIREHOSE)


#: The Firehose metrics only an Iceberg destination publishes, and those only an S3 destination with Parquet
#: conversion and dynamic partitioning publishes.
_ICEBERG_KEYS = frozenset(key for key in _FIREHOSE_KEYS if key.startswith("iceberg_"))
_PARQUET_ONLY_KEYS = frozenset(
    {
        "delivery_success",
        "data_freshness",
        "delivered_records",
        "failed_conversion_records",
        "partition_count",
        "partition_count_exceeded",
        "active_partitions_limit",
    }
)


def stream_key(index: int, key: str) -> str:
    """The series key of Firehose metric ``key`` for stream ``index``: plain for stream 0 (the keys of a
    one-stream stack, unchanged), ``stream<N>.<key>`` for the others."""
    return key if index == 0 else f"stream{index}.{key}"


def _is_stream_key(key: str) -> bool:
    return key in _FIREHOSE_KEYS or (key.startswith("stream") and key.partition(".")[2] in _FIREHOSE_KEYS)


# -- reading ---------------------------------------------------------------------------------------------------


def metric_queries(stack: StackNames) -> dict[str, tuple[metrics.Metric, str, str | None]]:
    """Series key -> (metric, dimension value, namespace override) for everything monitor and report read.

    The Firehose metrics are read for every stream (:func:`stream_key`), the others once."""
    # A stream publishes either its Iceberg delivery metrics or its S3 ones (lake_table_format): read only those.
    skipped = _PARQUET_ONLY_KEYS if stack.lake_table_format == "iceberg" else _ICEBERG_KEYS
    plan: dict[str, tuple[metrics.Metric, str, str | None]] = {
        stream_key(index, key): (metrics.ALL[key], stream, None)
        for index, stream in enumerate(stack.streams)
        for key in _FIREHOSE_KEYS
        if key not in skipped
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
    plan.update(write_queries(write_targets(stack.sales_table, stack.idempotency_table)))
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
        for index, stream in enumerate(stack.streams):
            if all(not points.get(stream_key(index, key)) for key in _FIREHOSE_KEYS) and not _stream_has_metrics(
                cloudwatch, stream
            ):
                observation.unknown_streams += (stream,)
        observation.stream_known = not observation.unknown_streams
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
