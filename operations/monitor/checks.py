"""What ``monitor`` judges: every stream's Firehose checks, then the stack's (Lambdas, queues, alarms).

Pure: an :class:`~operations.monitor.collect.Observation` in, :class:`Check` rows out (no I/O). The thresholds,
verdicts and exit status are in :mod:`~operations.monitor.verdicts`, the checks of one stream in
:mod:`~operations.monitor.stream_checks`.
"""

from __future__ import annotations

from dataclasses import replace

from operations.monitor.collect import Observation, QueueState, Series
from operations.monitor.dynamodb_checks import dynamodb_checks
from operations.monitor.stream_checks import count_check, stream_checks, transform_failed_check
from operations.monitor.verdicts import (
    EXIT_STATUS_HELP,
    Check,
    Thresholds,
    Verdict,
    exit_status,
    overall,
)

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


# -- judging ---------------------------------------------------------------------------------------------------


def evaluate(observation: Observation, thresholds: Thresholds) -> list[Check]:
    """Judge every check of ``observation``; pure (no I/O).

    One stream: its checks as they have always been named. Several: each stream's checks, named
    ``<check> [<stream>]``, one stream after the other, then the transform's failed records (one metric for all).
    """
    streams = observation.stack.streams
    checks: list[Check] = []
    if len(streams) == 1:
        checks += [replace(c, stream=streams[0]) for c in stream_checks(observation, thresholds)]
    else:
        for index, name in enumerate(streams):
            own = stream_checks(observation.for_stream(index), thresholds, transform_failed=False)
            checks += [replace(c, name=f"{c.name} [{name}]", stream=name) for c in own]
        checks.append(transform_failed_check(observation))
    checks += _lambda_checks(observation)
    checks += dynamodb_checks(observation)
    checks += _queue_checks(observation, thresholds)
    checks.append(_alarm_check(observation))
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
            checks.append(count_check(f"{label} ({name})", series, Verdict.WARN, problem, none_means="none reported"))
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
