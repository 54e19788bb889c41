"""The simulation loop: every event offered at its arrival moment on the simulated clock, everything the trigger
and the stream have due done in time order between arrivals, then the pipeline drained.

Nothing sleeps: a burst of 900 simulated seconds costs only the work it does.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator
from typing import Any

from fanout_lambda import handler as fanout_handler
from local_pipeline.eventbridge import matches
from local_pipeline.generator import GeneratedEvent
from local_pipeline.metrics import EmfLogSink
from local_pipeline.runner.latency import event_id
from local_pipeline.runner.summary import RunSummary
from local_pipeline.runner.wiring import Services
from transform_lambda import handler as transform_handler

__all__ = ["simulate"]


def simulate(
    events: Iterator[GeneratedEvent],
    services: Services,
    summary: RunSummary,
    *,
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Offer every event at its arrival moment, then let the trigger and the stream finish their work."""
    clock = services.clock
    pattern = services.config.event_pattern
    with _emf_capture(services.emf):
        for generated in events:
            if summary.events_total == 0:
                clock.now_ms = generated.arrival_ms  # the clock starts with the burst
                summary.first_event_ms = generated.arrival_ms
            _run_until(services, generated.arrival_ms)
            summary.events_total += 1
            if matches(pattern, generated.event):
                traced = event_id(generated.event)
                if traced is not None:
                    services.in_flight.add(traced, generated.arrival_ms)
                services.deliver(generated.event)
            else:
                summary.not_matched += 1
            progress(summary.events_total)
        _drain(services)
        # Let the buffering interval elapse after the last event, then flush what is left.
        services.stream.advance_to(clock.now_ms + services.config.buffering_interval_seconds * 1000)
        services.stream.close()


def _run_until(services: Services, moment_ms: int) -> None:
    """Everything due up to ``moment_ms``, in time order, then the clock at ``moment_ms``."""
    trigger, stream, clock = services.trigger, services.stream, services.clock
    while True:
        due = trigger.next_due()
        if due is None or due > moment_ms:
            break
        due = max(due, clock.now_ms)
        stream.advance_to(due)
        clock.advance_to(due)
        trigger.step()
    stream.advance_to(moment_ms)
    clock.advance_to(moment_ms)


def _drain(services: Services) -> None:
    """Let the trigger finish what it holds (batches, retries), in time order."""
    while not services.trigger.idle():
        due = services.trigger.next_due()
        if due is None:
            break
        _run_until(services, max(due, services.clock.now_ms))


@contextlib.contextmanager
def _emf_capture(sink: EmfLogSink | None) -> Iterator[None]:
    """Send the handlers' structured logs and EMF lines to ``sink`` (CloudWatch Logs' part) for the run."""
    target: Any = sink if sink is not None else open(os.devnull, "w")  # noqa: SIM115, PTH123
    handlers = [
        handler
        for module in (fanout_handler, transform_handler)
        for handler in module.logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    previous = [handler.setStream(target) for handler in handlers]
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            if old is not None:
                handler.setStream(old)
        target.flush()
