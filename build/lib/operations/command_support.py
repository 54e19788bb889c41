"""What the recovery commands (``dlq``, ``errors``, ``send``) share: the stack, AWS errors, progress, output.

- :func:`stack` loads ``--outputs`` and builds the clients' options, as every operator command does (and refuses
  the outputs of a local run that has ended).
- :func:`aws_call` turns an SDK failure into one :class:`~operations.errors.OperatorError` line naming the call
  and the resource (a missing queue, a denied action, an unreachable endpoint), never a traceback.
- :class:`Progress` shows a rich progress bar on a terminal and plain lines (at most one every few seconds)
  when stderr is a file or a pipe, so CI logs and ``2>log`` stay readable. Progress always goes to stderr:
  stdout carries the result (text or ``--json``).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from operations.aws import AwsOptions
from operations.errors import OperatorError
from operations.outputs import StackOutputs, load, refuse_ended_local_run

__all__ = ["INCOMPLETE", "Progress", "aws_call", "format_age", "print_json", "stack"]

#: Exit status of a command that ran but could not finish everything (some entries failed, some left).
INCOMPLETE = 1


def stack(
    outputs: Path | None,
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    purpose: str,
) -> tuple[StackOutputs, AwsOptions]:
    """The stack's outputs (``outputs`` or ``terraform output -json``) and the AWS options to reach it.

    Outputs a local run on in-process moto left behind are refused with one line (its AWS ended with the run;
    ``purpose`` says what a moto_server would let the user do), as ``monitor`` and ``report`` refuse them."""
    values = load(outputs)
    refuse_ended_local_run(outputs, values, endpoint_url, purpose=purpose)
    return values, AwsOptions.from_values(region=region, profile=profile, endpoint_url=endpoint_url, outputs=values)


@contextlib.contextmanager
def aws_call(action: str) -> Iterator[None]:
    """Report an SDK failure inside the block as one line: ``<action>: <code>: <message>``."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - keeps `--help` fast

    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "Unknown")
        message = error.get("Message") or str(exc)
        raise OperatorError(f"{action}: {code}: {message}", INCOMPLETE) from exc
    except BotoCoreError as exc:  # no credentials, endpoint unreachable, bad region, ...
        raise OperatorError(f"{action}: {exc}", INCOMPLETE) from exc


def print_json(value: Any, out: IO[str] | None = None) -> None:
    """Write ``value`` as indented JSON (the machine-readable form every ``--json`` prints)."""
    stream = out or sys.stdout
    stream.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")


def format_age(seconds: float) -> str:
    """``95`` -> ``1m35s``; ``90000`` -> ``1d1h``: the two largest units, as an operator reads an age."""
    seconds = max(0, int(seconds))
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    parts: list[str] = []
    for suffix, size in units:
        if seconds >= size or (suffix == "s" and not parts):
            parts.append(f"{seconds // size}{suffix}")
            seconds %= size
        if len(parts) == 2:
            break
    return "".join(parts)


class Progress:
    """A progress bar for long work: rich on a terminal, a plain line every ``interval`` seconds otherwise."""

    def __init__(
        self,
        description: str,
        total: int | None,
        *,
        stream: IO[str] | None = None,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.total = total
        self.done = 0
        self._stream = stream or sys.stderr
        self._interval = interval
        self._clock = clock
        self._last = clock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self._stream.isatty():
            from rich.console import Console  # noqa: PLC0415 - only when a terminal shows it
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn  # noqa: PLC0415
            from rich.progress import Progress as RichProgress  # noqa: PLC0415

            self._bar = RichProgress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(file=self._stream),
                transient=True,
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        return self

    def advance(self, count: int = 1, total: int | None = None) -> None:
        """Record ``count`` more items done (and a better ``total`` when one is known)."""
        self.done += count
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, total=self.total)
            return
        now = self._clock()
        if now - self._last >= self._interval:
            self._last = now
            self._line()

    def _line(self) -> None:
        of = f"/{self.total}" if self.total is not None else ""
        self._stream.write(f"{self.description}: {self.done}{of}\n")
        self._stream.flush()

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
