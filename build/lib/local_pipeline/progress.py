"""Progress of a run: a bar with rate and ETA on a terminal, plain periodic lines otherwise (CI logs, pipes).

The bar is drawn with rich, the library the operator commands draw theirs with, so one progress library serves
the whole CLI; its columns read as a run's did: ``45% ━━━━━    90/200 [0:00:01<0:00:01, 85 events/s]`` then the
outcome counts.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable
from datetime import timedelta
from typing import IO, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Column
from rich.text import Text

__all__ = ["Progress"]

#: Plain mode prints at every tenth of the run, and at least this often (seconds) on a long run.
PLAIN_INTERVAL_SECONDS = 10.0
#: The bar is redrawn at most this often (seconds): a redraw costs more than offering an event.
REDRAW_SECONDS = 0.1
#: The width assumed on a terminal that reports no size (a pseudo-terminal nobody sized: `docker run -t`, some
#: CI runners); rich would otherwise fall back to 80 columns, or draw nothing useful at 0.
UNSIZED_COLUMNS = 100


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
        self._bar: RichProgress | None = None
        self._task = TaskID(0)
        self._done = 0
        if _is_terminal(out):
            self._bar, self._task = _rich_bar(total, out, unit)

    def update(self, done: int) -> None:
        """``done`` events have been offered so far."""
        self._done = done
        now = time.perf_counter()
        if self._bar is not None:
            fields: dict[str, Any] = {}
            if done % self._step == 0 or done == self.total:
                fields["detail"] = self._detail()
            self._bar.update(self._task, completed=done, **fields)
            if now - self._last_print >= REDRAW_SECONDS or done == self.total:
                self._last_print = now
                self._bar.refresh()
            return
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
        """Finish the bar, left on screen (plain mode has nothing to close)."""
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


#: The outcome counts' column: what the other columns leave (ratio 1), one row, cut with an ellipsis.
_CUT_AT_THE_EDGE = Column(ratio=1, no_wrap=True, overflow="ellipsis")


def _rich_bar(total: int, out: IO[str], unit: str) -> tuple[RichProgress, TaskID]:
    """A started rich progress bar on ``out`` and its one task."""
    columns = _terminal_columns(out)
    bar = RichProgress(
        TaskProgressColumn(),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        TimesAndRateColumn(unit),
        # The counts come last and are cut at the terminal's edge rather than wrapped onto more rows.
        TextColumn("{task.fields[detail]}", markup=False, table_column=_CUT_AT_THE_EDGE),
        # A sized terminal is measured at each redraw (it may be resized); an unsized one gets a fixed width.
        console=Console(file=out, force_terminal=True, width=None if columns > 0 else UNSIZED_COLUMNS),
        auto_refresh=False,  # redrawn from update(), at most every REDRAW_SECONDS: no thread beside the run
        # The handlers' output is redirected during the run (the run captures it): rich must leave stdout alone.
        redirect_stdout=False,
        redirect_stderr=False,
        transient=False,
        expand=True,  # the counts take what the other columns leave (ratio 1)
    )
    bar.start()
    return bar, bar.add_task("run", total=total, detail="")


class TimesAndRateColumn(ProgressColumn):
    """``[elapsed<remaining, rate unit/s]``: how long the run took so far, how long it has left, how fast."""

    def __init__(self, unit: str) -> None:
        super().__init__()
        self._unit = unit

    def render(self, task: Task) -> Text:
        """The column's text for ``task`` now."""
        elapsed = task.finished_time if task.finished else task.elapsed
        remaining = 0.0 if task.finished else task.time_remaining
        speed = task.finished_speed or task.speed
        if speed is None and elapsed:
            speed = task.completed / elapsed
        rate = "?" if speed is None else f"{speed:,.0f}"
        return Text(f"[{_clock(elapsed)}<{_clock(remaining)}, {rate} {self._unit}/s]", style="progress.elapsed")


def _clock(seconds: float | None) -> str:
    """``h:mm:ss``, or ``?`` when not known yet."""
    return "?" if seconds is None else str(timedelta(seconds=int(seconds)))


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
