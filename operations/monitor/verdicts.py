"""monitor's verdicts: the thresholds it judges by, a judged :class:`Check`, the overall verdict, the exit status.

Pure; shared by the per-stream checks (:mod:`~operations.monitor.stream_checks`) and the stack's
(:mod:`~operations.monitor.checks`).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pipeline_config
from operations import metrics

__all__ = ["EXIT_STATUS_HELP", "Check", "Thresholds", "Verdict", "exit_status", "overall"]

EXIT_STATUS_HELP = """exit status (the monitoring-plugin convention):
  0  OK        every check healthy (checks without data are listed, and do not count)
  1  WARNING   something needs a look: throttled or failed records, dead letters, Lambda errors, DynamoDB
               write throttles (absorbed by flow control: capacity to pre-warm), an alarm
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
    #: The delivery stream a Firehose check judges (``None``: a check of the stack, e.g. a Lambda or a queue).
    stream: str | None = None

    def as_dict(self) -> dict[str, str | None]:
        """JSON-ready."""
        return {
            "name": self.name,
            "verdict": self.verdict.value,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
            "stream": self.stream,
        }


def overall(checks: Sequence[Check]) -> Verdict:
    """The worst verdict: FAIL, then UNKNOWN, then WARN; OK when every check is OK or has no data."""
    worst = max(checks, key=lambda check: _RANK[check.verdict], default=None)
    if worst is None or _RANK[worst.verdict] == 0:
        return Verdict.OK
    return worst.verdict


def exit_status(verdict: Verdict) -> int:
    """0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN."""
    return _EXIT[verdict]
