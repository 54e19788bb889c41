"""What ``monitor`` judges: the thresholds, one check per concern, the overall verdict and the exit status.

Pure: an :class:`~operations.monitor.collect.Observation` in, :class:`Check` rows out (no I/O).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pipeline_config
from operations import metrics
from operations.monitor.collect import Observation, QueueState, Series

__all__ = [
    "EXIT_STATUS_HELP",
    "EXPIRY_SHARE",
    "Check",
    "Thresholds",
    "Verdict",
    "evaluate",
    "exit_status",
    "overall",
]

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
