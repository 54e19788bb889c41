"""Lambda as the local run needs it: functions invoked on the simulated clock, and asynchronous invocation.

moto without Docker never runs a function, so the local run invokes the real handlers itself, exactly as the
service does (same event shapes, a context per invocation), and keeps what Lambda would publish:
``AWS/Lambda`` ``Invocations``, ``Errors``, ``Throttles``, ``Duration`` and ``ConcurrentExecutions`` per
``FunctionName``.

Time. A handler runs in wall-clock time, but in the simulation an invocation *starts* at the simulated moment
it is invoked and *lasts* a modelled duration (:class:`InvocationTiming`), so that concurrency and every
call an invocation makes land at distinct simulated moments: the fan-out's calls happen at the invocation's
start, and its slot is free again at start + duration.

Asynchronous invocation (the ``direct`` trigger, EventBridge → Lambda): when the handler raises, Lambda runs
it two more times, "with a one-minute wait between the first two attempts, and two minutes between the
second and third attempts" (AWS Lambda Developer Guide, "Error handling and automatic retries in Lambda" /
"How Lambda handles errors and retries with asynchronous invocation"); after the last attempt the
invocation record goes to the on-failure destination.
"""

from __future__ import annotations

import heapq
import itertools
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from local_pipeline.clock import SimulatedClock
from local_pipeline.context import LambdaContext, function_arn
from local_pipeline.metrics import MetricsRecorder
from local_pipeline.spill import BodyFile, BodyRef

__all__ = [
    "ASYNC_RETRY_DELAYS_MS",
    "INVOCATION_PAYLOAD_LIMIT",
    "AsyncInvoker",
    "AsyncStats",
    "InvocationTiming",
    "LambdaFunction",
    "destination_record",
]

#: Lambda's invocation payload limit, request and response alike: 6 MB (6,291,456 bytes) for a synchronous
#: invocation (AWS Lambda Developer Guide, "Lambda quotas", "Function configuration, deployment, and execution").
#: The event source mapping keeps each SQS batch under it; a Firehose transform response past it is an error.
INVOCATION_PAYLOAD_LIMIT = 6 * 1024 * 1024

#: Waits before the second and the third attempt of an asynchronous invocation (see the module docstring).
ASYNC_RETRY_DELAYS_MS = (60_000, 120_000)

Handler = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class InvocationTiming:
    """The simulated duration of one fan-out invocation: a fixed part plus a part per record it carries.

    The default (100 ms + 1 ms per record: 101 ms for one event, 600 ms for a batch of 500) is a model, not a
    measurement of AWS: the fan-out's calls of a batch run concurrently, so a batch costs a few round trips,
    not one per sale.
    """

    base_ms: int = 100
    per_record_ms: int = 1

    def duration_ms(self, records: int) -> int:
        """How long an invocation carrying ``records`` records lasts on the simulated clock."""
        return self.base_ms + self.per_record_ms * records


class LambdaFunction:
    """One function: invokes its handler with a fresh context and records the ``AWS/Lambda`` metrics."""

    def __init__(
        self,
        name: str,
        handler: Handler,
        *,
        clock: SimulatedClock,
        region: str = "us-east-1",
        metrics: MetricsRecorder | None = None,
        timeout_ms: int = 30_000,
        waited_ms: Callable[[], int] | None = None,
    ) -> None:
        self.name = name
        #: How long the last invocation waited beyond its modelled work (its resends' backoff), in simulated ms.
        self._waited_ms = waited_ms
        #: The last invocation's simulated duration, waits included.
        self.last_duration_ms = 0
        self.arn = function_arn(name, region)
        self.region = region
        self._handler = handler
        self._clock = clock
        self._metrics = metrics
        self._timeout_ms = timeout_ms
        self._running: list[int] = []  # end moments of the invocations in flight (a heap)
        self.invocations = 0
        self.errors = 0
        self.max_concurrency = 0

    def invoke(self, event: Any, *, duration_ms: int | None = None) -> Any:
        """Run the handler once at the simulated now; ``duration_ms`` None means the measured wall time.

        Raises what the handler raises (counted as an ``Errors`` datapoint).
        """
        now = self._clock.now_ms
        while self._running and self._running[0] <= now:
            heapq.heappop(self._running)
        context = LambdaContext(self.name, region=self.region, timeout_ms=self._timeout_ms)
        started = time.perf_counter()
        failed = False
        try:
            return self._handler(event, context)
        except Exception:
            failed = True
            raise
        finally:
            took = duration_ms if duration_ms is not None else (time.perf_counter() - started) * 1000
            if self._waited_ms is not None:
                # A throttled invocation's resends wait on the simulated clock: it lasts (and holds its
                # concurrency slot) that much longer, never past its timeout.
                took = min(took + self._waited_ms(), self._timeout_ms)
            self.last_duration_ms = max(1, int(took))
            heapq.heappush(self._running, now + max(1, int(took)))
            self.invocations += 1
            self.errors += failed
            self.max_concurrency = max(self.max_concurrency, len(self._running))
            self._record(now, took, failed)

    def __call__(self, event: Any, context: Any) -> Any:
        """The handler's own signature, for a caller (the delivery stream) that builds its own context."""
        return self.invoke(event)

    def _record(self, now: int, took: float, failed: bool) -> None:
        if self._metrics is None:
            return
        dims = {"FunctionName": self.name}
        add = self._metrics.add
        add("AWS/Lambda", "Invocations", 1, "Count", now, dims)
        add("AWS/Lambda", "Errors", 1 if failed else 0, "Count", now, dims)
        add("AWS/Lambda", "Throttles", 0, "Count", now, dims)
        add("AWS/Lambda", "Duration", took, "Milliseconds", now, dims)
        add("AWS/Lambda", "ConcurrentExecutions", len(self._running), "Count", now, dims)


@dataclass
class AsyncStats:
    """What asynchronous invocation did to the events it was given."""

    events: int = 0
    attempts: int = 0
    retried_events: int = 0
    failed_events: int = 0


@dataclass(order=True)
class _Retry:
    due_ms: int
    sequence: int
    event: BodyRef = field(compare=False)  # its JSON, in the invoker's BodyFile (a backlog stays on disk)
    attempt: int = field(compare=False)


class AsyncInvoker:
    """EventBridge → Lambda (asynchronous invocation) with Lambda's retries on the simulated clock.

    :meth:`invoke` runs the first attempt at the simulated now; a failed attempt is scheduled again after
    :data:`ASYNC_RETRY_DELAYS_MS`; the runner calls :meth:`step` when :meth:`next_due` comes. After the last
    attempt, ``on_failure`` receives Lambda's invocation record (the on-failure destination is the DLQ).
    ``on_settled(event)`` is told once an event is done with (succeeded or handed to the destination).
    """

    def __init__(
        self,
        function: LambdaFunction,
        *,
        clock: SimulatedClock,
        on_failure: Callable[[dict[str, Any]], None],
        timing: InvocationTiming | None = None,
        on_result: Callable[[Any, Any], None] | None = None,
        on_settled: Callable[[Any], None] | None = None,
    ) -> None:
        self.function = function
        self.stats = AsyncStats()
        self._clock = clock
        self._on_failure = on_failure
        self._on_result = on_result
        self._on_settled = on_settled
        self._timing = timing or InvocationTiming()
        self._retries: list[_Retry] = []
        self._events = BodyFile()
        self._sequence = itertools.count()

    def invoke(self, event: Any) -> None:
        """Accept one event (Lambda's async queue) and run its first attempt now."""
        self.stats.events += 1
        self._attempt(event, 1)

    def next_due(self) -> int | None:
        """The simulated moment of the next retry, or None."""
        return self._retries[0].due_ms if self._retries else None

    def step(self) -> None:
        """Run every retry due at the simulated now."""
        while self._retries and self._retries[0].due_ms <= self._clock.now_ms:
            retry = heapq.heappop(self._retries)
            self._attempt(orjson.loads(self._events.get(retry.event)), retry.attempt)

    def idle(self) -> bool:
        """No retry is waiting."""
        return not self._retries

    def _attempt(self, event: Any, attempt: int) -> None:
        self.stats.attempts += 1
        try:
            result = self.function.invoke(event, duration_ms=self._timing.duration_ms(1))
        except Exception as exc:  # the handler raising is Lambda's cue to retry
            if attempt <= len(ASYNC_RETRY_DELAYS_MS):
                if attempt == 1:
                    self.stats.retried_events += 1
                due = self._clock.now_ms + ASYNC_RETRY_DELAYS_MS[attempt - 1]
                # Kept as JSON, on disk, while it waits: a throttled burst leaves a backlog of tens of thousands.
                waiting = self._events.put(orjson.dumps(event))
                heapq.heappush(self._retries, _Retry(due, next(self._sequence), waiting, attempt + 1))
                return
            self.stats.failed_events += 1
            self._on_failure(destination_record(event, exc, attempts=attempt, function_arn=self.function.arn))
            if self._on_settled is not None:
                self._on_settled(event)
            return
        if self._on_result is not None:
            self._on_result(event, result)
        if self._on_settled is not None:
            self._on_settled(event)


def destination_record(event: Any, error: BaseException, *, attempts: int, function_arn: str) -> dict[str, Any]:
    """The record Lambda sends an asynchronous invocation's on-failure destination after the last retry
    (AWS Lambda guide, "Capturing records of Lambda asynchronous invocations": example invocation record)."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_exception(error)[1:],
        },
    }
