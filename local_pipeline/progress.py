"""Progress of a run: a bar with rate and ETA on a terminal, plain periodic lines otherwise (CI logs, pipes)."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["Progress"]

#: Plain mode prints at every tenth of the run, and at least this often (seconds) on a long run.
PLAIN_INTERVAL_SECONDS = 10.0


class Progress:
    """Report ``done`` out of ``total`` events; ``detail()`` adds the outcome counts to each report."""

    def __init__(
        self, total: int, out: IO[str], *, detail: Callable[[], str] = lambda: "", unit: str = "events"
    ) -> None:
        self.total = total
        self._out = out
        self._detail = detail
        self._unit = unit
        self._started = time.perf_counter()
        self._last_print = self._started
        self._step = max(1, total // 10)
        self._bar: Any = None
        self._done = 0
        if _is_terminal(out):
            from tqdm import tqdm  # noqa: PLC0415 - only a terminal needs it

            # A terminal that reports no size (a pseudo-terminal nobody sized: `docker run -t`, some CI runners)
            # would get nothing from tqdm, which fits the bar to the terminal's width and hides it below its last
            # row: assume 100 x 20 there.
            sized = _terminal_columns(out) > 0
            self._bar = tqdm(
                total=total,
                unit=f" {unit}",
                file=out,
                ncols=None if sized else 100,
                nrows=None if sized else 20,
                dynamic_ncols=sized,
                smoothing=0.1,
                leave=True,
            )

    def update(self, done: int) -> None:
        """``done`` events have been offered so far."""
        advance, self._done = done - self._done, done
        if self._bar is not None:
            self._bar.update(advance)
            if done % self._step == 0 or done == self.total:
                self._bar.set_postfix_str(self._detail(), refresh=False)
            return
        now = time.perf_counter()
        if done % self._step and done != self.total and now - self._last_print < PLAIN_INTERVAL_SECONDS:
            return
        self._last_print = now
        rate = done / max(now - self._started, 1e-9)
        left = (self.total - done) / rate if rate else 0.0
        print(
            f"  [{done:>{len(str(self.total))}}/{self.total}] {self._detail()}  "
            f"({rate:,.0f} {self._unit}/s, about {left:,.0f} s left)",
            file=self._out,
            flush=True,
        )

    def close(self) -> None:
        """Finish the bar (plain mode has nothing to close)."""
        if self._bar is not None:
            self._bar.close()


def _terminal_columns(out: IO[str]) -> int:
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        return 0


def _is_terminal(out: IO[str]) -> bool:
    try:
        return bool(out.isatty())
    except (AttributeError, ValueError):
        return False
