"""The simulated clock every simulated service of the local run shares (Firehose, Lambda, the buffer queue).

Time is epoch milliseconds that move only when the runner says so, so a 300 s buffering interval or a
two-minute retry wait costs no wall-clock time. It lives apart from any one service because all of them
read it: a service module importing another's just for the clock would tie them together for nothing.
:class:`ProcessClock` holds the process's own wall clock at the simulated one, for code that reads
``datetime.now()`` (the fan-out's idempotency claims).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from types import TracebackType
from typing import Any

import time_machine

__all__ = ["ProcessClock", "SimulatedClock"]


class SimulatedClock:
    """Epoch milliseconds that move only when the runner says so."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def advance_to(self, ms: int) -> None:
        """Move forward to ``ms`` (never backwards)."""
        self.now_ms = max(self.now_ms, ms)


class ProcessClock:
    """The process's wall clock (``time.time()``, ``datetime.now()``) held at the simulated clock during a run.

    The fan-out stamps a claim's in-progress expiry as ``datetime.now()`` + the context's remaining time and tests
    it against ``datetime.now()`` when a copy of the sale comes (its claims and Powertools read the wall clock).
    A simulated redelivery comes minutes later on the simulated clock but microseconds later on the wall clock, so
    without this the dead invocation's claim would never lapse in a run and every crashed sale would be parked.
    :meth:`sync` moves the process clock to the simulated now (call it as each invocation starts); between syncs
    it stands still, which keeps runs reproducible. ``time.perf_counter`` and ``time.monotonic`` are untouched.
    """

    def __init__(self, clock: SimulatedClock) -> None:
        self._clock = clock
        self._entered = False
        self._travel: Any = None
        self._traveller: Any = None

    def __enter__(self) -> ProcessClock:
        self._entered = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._entered = False
        if self._travel is not None:
            self._travel.stop()
            self._travel = self._traveller = None

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock.now_ms / 1000, dt.UTC)

    def sync(self) -> None:
        """Move the process clock to the simulated now (the first sync starts holding it; before, it is real)."""
        if not self._entered:
            return
        if self._travel is None:
            self._travel = time_machine.travel(self._now(), tick=False)
            self._traveller = self._travel.start()
        else:
            self._traveller.move_to(self._now())

    def wrap(self, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
        """``handler`` with the process clock synced as each invocation starts."""

        def invoke(event: Any, context: Any) -> Any:
            self.sync()
            return handler(event, context)

        return invoke
