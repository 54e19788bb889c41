"""``sales-pipeline monitor``'s library: is Firehose delivery healthy right now, and if not, what is wrong?

Reads the stack's CloudWatch metrics over a window (GetMetricData, up to 500 queries a call, every page),
the live depth of its queues (GetQueueAttributes) and the states of its alarms (DescribeAlarms), judges
each with a stated threshold, and renders one summary line first, then the details. Exit status follows
the monitoring-plugin convention that cron, CI and monitoring systems read (see :data:`EXIT_STATUS_HELP`).

The work splits in three so the report and the tests reuse it: :func:`collect` reads (boto3 only,
:mod:`~operations.monitor.collect`), :func:`evaluate` judges (pure, :mod:`~operations.monitor.checks`),
:func:`render_text` / :func:`to_json` print (:mod:`~operations.monitor.render`).

``operations.monitor.collect`` is the function (as before the split); to reach the module of the same name,
e.g. to patch a constant, use ``importlib.import_module("operations.monitor.collect")``.
"""

from __future__ import annotations

from operations.monitor.checks import (
    EXIT_STATUS_HELP,
    EXPIRY_SHARE,
    Check,
    Thresholds,
    Verdict,
    evaluate,
    exit_status,
    overall,
)
from operations.monitor.collect import (
    MAX_QUERIES_PER_CALL,
    MAX_WINDOW,
    PERIOD,
    Observation,
    QueueState,
    Series,
    StackNames,
    Window,
    collect,
    format_duration,
    metric_queries,
    parse_duration,
    queue_name,
    read_alarms,
    read_queue,
)
from operations.monitor.render import render_text, summary_line, to_json, watch
from operations.outputs import LOCAL_RUN_MARKER, refuse_ended_local_run

__all__ = [
    "EXIT_STATUS_HELP",
    "EXPIRY_SHARE",
    "LOCAL_RUN_MARKER",
    "MAX_QUERIES_PER_CALL",
    "MAX_WINDOW",
    "PERIOD",
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
    "format_duration",
    "metric_queries",
    "overall",
    "parse_duration",
    "queue_name",
    "read_alarms",
    "read_queue",
    "refuse_ended_local_run",
    "render_text",
    "summary_line",
    "to_json",
    "watch",
]
