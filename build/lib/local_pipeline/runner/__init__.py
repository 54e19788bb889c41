"""One local run: stream generated (or read) events through the rule, the chosen trigger, the fan-out and the
local Firehose on a simulated clock; mirror the lake; write the summary, the dead letters and the outputs.

The handlers are the real ones, called as AWS calls them. Each AWS service moto leaves out is simulated in a
module of its own (:mod:`local_pipeline.eventbridge`, :mod:`local_pipeline.buffer_queue`,
:mod:`local_pipeline.lambda_service`, :mod:`local_pipeline.firehose`). This package runs them, one concern a
module:

- :mod:`.options`: what the run was asked to do (:class:`RunOptions`) and the checks before anything starts;
- :mod:`.wiring`: the services of one run (:func:`build_services`), fault injection wrapped around them;
- :mod:`.sender`, :mod:`.dead_letters`, :mod:`.latency`: the fan-out's Firehose sender on the simulated
  timeline, the dead-letter queue's metrics and file, the events in flight for the delivery latency;
- :mod:`.loop`: the simulation (:func:`simulate`);
- :mod:`.end`, :mod:`.accounting`: the end phase (metrics, mirror, outputs, dashboards, report) and the audit;
- :mod:`.summary`, :mod:`.files`: :class:`RunSummary`, the printed summary, ``summary.json``, the files' names;
- :mod:`.pipeline`: :func:`run`, all of it in order.

A caller that wants to alter a service (fault injection, an audit) passes ``wrap`` to :func:`run`: it receives
the :class:`Services` before the first event and returns them, changed as it likes; the handlers never branch
on it.

Time: events arrive at their simulated moments; the trigger invokes the fan-out at simulated moments (a
batch when it closes, an asynchronous retry after Lambda's wait); the delivery stream's buffers and quotas
follow the same clock. Nothing sleeps: a burst of 900 simulated seconds costs only the work it does.

Memory: events are generated (or read) one at a time and forgotten once the rule, the queue or Lambda is done
with them; summaries are counters. Only the queue's backlog and the stream's buffers hold events, as in AWS.
"""

from __future__ import annotations

from local_pipeline.context import FANOUT_FUNCTION, TRANSFORM_FUNCTION
from local_pipeline.lambda_service import destination_record
from local_pipeline.runner.files import DEAD_LETTERS_FILE, LAKE_MARKER, OUTPUTS_FILE, REPORT_FILE, SUMMARY_FILE
from local_pipeline.runner.loop import simulate
from local_pipeline.runner.options import DEFAULT_EVENTS, RunError, RunOptions, Trigger
from local_pipeline.runner.pipeline import run
from local_pipeline.runner.summary import RunSummary, format_summary
from local_pipeline.runner.wiring import FANOUT_TIMEOUT_MS, Services, build_services

__all__ = [
    "DEAD_LETTERS_FILE",
    "DEFAULT_EVENTS",
    "FANOUT_FUNCTION",
    "FANOUT_TIMEOUT_MS",
    "LAKE_MARKER",
    "OUTPUTS_FILE",
    "REPORT_FILE",
    "SUMMARY_FILE",
    "TRANSFORM_FUNCTION",
    "RunError",
    "RunOptions",
    "RunSummary",
    "Services",
    "Trigger",
    "build_services",
    "destination_record",
    "format_summary",
    "run",
    "simulate",
]
