"""The fan-out's Firehose sender in a local run: its chunks in turn, its backoff on the simulated timeline."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from typing import Any

from fanout_lambda.adapters import Backoff, FirehoseSender, Pending
from local_pipeline.firehose.streams import DeliveryStreams

__all__ = ["ChunksInTurn", "StagesInTurn", "afresh", "on_timeline", "seeded_jitter"]


class ChunksInTurn(FirehoseSender):
    """The fan-out's Firehose sender in a local run: the same class, limits and resends, but a batch's
    PutRecordBatch chunks go one after the other in the invoking thread instead of side by side on the pool,
    each from the invocation's start on its own simulated timeline (as parallel chunks would).

    Its backoff between resends (capped exponential, full jitter, until the invocation's deadline for a
    throughput refusal) waits on that timeline (:meth:`DeliveryStreams.wait`), and the deadline is measured on
    it, not on the wall clock: a resend that crosses into the next simulated second meets that second's quota,
    as in AWS, while the shared clock and every other invocation (they run side by side in AWS) go on
    unaffected; the invocation lasts (and holds its concurrency slot) as long as its longest timeline waited.

    On the pool, which of a batch's two chunks met an exhausted quota first, and which drew which jitter,
    depended on thread scheduling: a throttled burst gave different figures from run to run. In turn, a
    seeded run gives the same figures every time.

    Only the public surface is used: the sleep, clock and jitter the sender takes, and the executor
    :meth:`submit` takes (one task per chunk), which here starts each chunk's timeline and runs it at once.
    """

    def __init__(
        self,
        client: Any,
        stream_names: Sequence[str],
        *,
        stream: DeliveryStreams,
        jitter: Callable[[float, float], float],
    ) -> None:
        super().__init__(
            client,
            stream_names,
            sleep=lambda seconds: stream.wait(round(seconds * 1000)),
            jitter=jitter,
            # The invocation's deadline is measured on its own simulated timeline (its waits), not the wall clock.
            clock=lambda: stream.caller_now_ms() / 1000,
        )
        self._stream = stream

    def submit(self, records: Sequence[bytes], executor: Executor, keys: Sequence[str] | None = None) -> Pending:
        """Deliver ``records`` chunk after chunk in this thread (``executor``, the fan-out's pool, is not used).

        The chunks start together, when the invocation's earlier stages are done: after its longest wait so far
        (a DynamoDB write resent for throughput delays the records that follow it)."""
        stage_start = self._stream.longest_wait_ms()
        in_turn = InTurn(before_each=lambda: self._stream.new_timeline(stage_start))
        return super().submit(records, in_turn, keys)


class InTurn(Executor):
    """An executor that runs each task at once, in the submitting thread, after ``before_each()``."""

    def __init__(self, before_each: Callable[[], None] = lambda: None) -> None:
        self._before_each = before_each

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` now; its result (or exception) in a done future."""
        future = self._new_future()
        try:
            self._before_each()
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # as a pool's future would hold it
            future.set_exception(exc)
        return future

    def _new_future(self) -> Future[Any]:
        return Future()


class StagesInTurn(InTurn):
    """The fan-out's thread pool in a local run: each call of a batch runs at once, in the invoking thread, on a
    simulated timeline of its own that starts where the batch's previous stage ended.

    The batch (``fanout_lambda.batch``) submits a stage's calls (the claims, the item writes, the completions),
    then waits for their results before the next stage: a stage starts at the first submit after results were
    collected, at the invocation's longest wait so far. Its calls each start there, as calls side by side on a
    pool do, and resend on their own timelines (:func:`on_timeline`).

    On the pool, which of a batch's claims met a table's spent capacity first depended on thread scheduling, so a
    run DynamoDB throttled gave different figures each time; in turn, a seeded run gives the same figures.
    """

    def __init__(self, stream: DeliveryStreams) -> None:
        super().__init__(before_each=self._start)
        self._stream = stream
        self._stage_start: int | None = None

    def _start(self) -> None:
        """A call's timeline starts at its stage's start (the first call of a stage fixes it)."""
        longest = self._stream.longest_wait_ms()
        if self._stage_start is None or self._stage_start > longest:  # a new stage, or a new invocation
            self._stage_start = longest
        self._stream.new_timeline(self._stage_start)

    def _new_future(self) -> Future[Any]:
        return _StageResult(self)

    def stage_done(self) -> None:
        """A result was collected: the next submit starts a new stage."""
        self._stage_start = None


class _StageResult(Future[Any]):
    """A done future that tells its executor when its result is collected (the stage it belongs to is over)."""

    def __init__(self, executor: StagesInTurn) -> None:
        super().__init__()
        self._executor = executor

    def result(self, timeout: float | None = None) -> Any:
        self._executor.stage_done()
        return super().result(timeout)


def on_timeline(backoff: Backoff, stream: DeliveryStreams, jitter: Callable[[float, float], float]) -> None:
    """Make ``backoff`` (a DynamoDB writer's) pause on the calling thread's simulated timeline and measure its
    deadline there, as :class:`ChunksInTurn` does for Firehose: a throttled write is resent in a later simulated
    second, which has capacity of its own, and the invocation lasts as long as it waited."""
    backoff.sleep = lambda seconds: stream.wait(round(seconds * 1000))
    backoff.clock = lambda: stream.caller_now_ms() / 1000
    backoff.jitter = jitter


def seeded_jitter(seed: int) -> Callable[[float, float], float]:
    """The jitter of the fan-out's Firehose backoff in a local run: drawn from the run's seed, so a run is
    reproducible (one generator for the run, so a container rebuilt after a crash goes on with it)."""
    return random.Random(seed).uniform  # noqa: S311 - simulated jitter, reproducible by design


def afresh(stream: DeliveryStreams, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``handler`` with the stream told each time an invocation starts (its waits begin from the shared clock)."""

    def invoke(event: Any, context: Any) -> Any:
        stream.new_invocation()
        return handler(event, context)

    return invoke
