"""``send``'s library: publish a JSONL file of EventBridge events to the stack's bus (printing is the CLI's).

The file is checked whole before anything is sent: a line that is not a JSON event (or is too large for
PutEvents) stops the command with its line number, and nothing is published. Then the events go out with
PutEvents (:mod:`operations.publisher`: 10 entries / 256 KB per call, rejected entries resent with backoff),
optionally paced to ``--rate`` events per second, with a progress bar and a summary (sent, failed with error
codes, wall time). Each line is an event as a rule target receives it (``source``, ``detail-type``,
``detail``, optional ``time`` and ``resources``; ``sales-pipeline run`` and the generator write this shape) or
a PutEvents entry (``Source``, ``DetailType``, ``Detail``).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from operations.command_support import Progress
from operations.errors import OperatorError
from operations.publisher import (
    MAX_ENTRIES,
    MAX_REQUEST_BYTES,
    EventPublisher,
    InvalidEvent,
    PublishResult,
    entry_from_event,
    entry_size,
)

__all__ = ["SHOWN_BAD_LINES", "SendSummary", "check_file", "read_entries", "send"]

#: Bad lines printed before the command stops (all are counted).
SHOWN_BAD_LINES = 10


def read_entries(path: Path, bus_name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, PutEvents entry)`` per non-blank line; :class:`InvalidEvent` names the line."""
    for number, line in _lines(path):
        yield number, _entry(line, number, bus_name)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if line.strip():
                    yield number, line
    except OSError as exc:
        raise OperatorError(f"--events {path}: cannot read it ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise OperatorError(f"--events {path}: not UTF-8 text ({exc})") from exc


def _entry(line: str, number: int, bus_name: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise InvalidEvent(f"line {number}: not JSON ({exc})") from exc
    try:
        entry = entry_from_event(event, bus_name)
    except InvalidEvent as exc:
        raise InvalidEvent(f"line {number}: {exc}") from exc
    size = entry_size(entry)
    if size >= MAX_REQUEST_BYTES:
        raise InvalidEvent(f"line {number}: entry of {size} bytes exceeds PutEvents' {MAX_REQUEST_BYTES}-byte limit")
    return entry


def check_file(path: Path, bus_name: str) -> tuple[int, int, int]:
    """Check every line; return ``(events, bytes, calls)`` or raise :class:`OperatorError` naming the bad lines."""
    bad: list[tuple[int, str]] = []
    events = total_bytes = calls = 0
    call_size = call_entries = 0
    for number, line in _lines(path):
        try:
            entry = _entry(line, number, bus_name)
        except InvalidEvent as exc:
            bad.append((number, str(exc)))
            continue
        size = entry_size(entry)
        events += 1
        total_bytes += size
        if call_entries in {0, MAX_ENTRIES} or call_size + size >= MAX_REQUEST_BYTES:
            calls += 1
            call_entries, call_size = 0, 0
        call_entries += 1
        call_size += size
    if len(bad) == 1:
        raise OperatorError(f"--events {path}: {bad[0][1]}; nothing was sent")
    if bad:
        for _, message in bad[:SHOWN_BAD_LINES]:
            sys.stderr.write(f"--events {path}: {message}\n")
        numbers = ", ".join(str(number) for number, _ in bad[:SHOWN_BAD_LINES])
        more = ", ..." if len(bad) > SHOWN_BAD_LINES else ""
        raise OperatorError(f"--events {path}: {len(bad)} bad lines ({numbers}{more}), listed above; nothing was sent")
    if events == 0:
        raise OperatorError(f"--events {path}: no events in the file; nothing was sent")
    return events, total_bytes, calls


@dataclass
class SendSummary:
    """What one send did."""

    events: int = 0
    sent: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # line number -> last ErrorCode
    calls: int = 0
    resent: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        """The summary as ``send --json`` prints it."""
        return {
            "events": self.events,
            "sent": self.sent,
            "failed": len(self.failed),
            "errorCodes": dict(Counter(self.failed.values())),
            "failedLines": sorted(self.failed),
            "calls": self.calls,
            "resent": self.resent,
            "wallSeconds": round(self.seconds, 3),
            "eventsPerSecond": round(self.sent / self.seconds, 1) if self.seconds > 0 else None,
        }


def send(
    path: Path,
    bus_name: str,
    publisher: EventPublisher,
    *,
    rate: float | None,
    progress: Progress,
    concurrency: int = 1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> SendSummary:
    """Publish every event of ``path`` with up to ``concurrency`` PutEvents calls in flight, paced to ``rate``
    events per second when given (a call is started when its first event is due)."""
    summary = SendSummary()
    started = clock()
    # Paced sending offers PutEvents at most `rate` events at a time, so a slow rate does not come in bursts of 10.
    chunk_size = MAX_ENTRIES if rate is None else max(1, min(MAX_ENTRIES, int(rate)))
    submitted = 0
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="put-events") as pool:
        in_flight: set[Future[PublishResult]] = set()
        for chunk in _chunks(read_entries(path, bus_name), chunk_size):
            if rate is not None:
                _wait_until(started + submitted / rate, clock, sleep)
            while len(in_flight) >= concurrency:
                done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                _record(done, summary, progress)
            in_flight.add(pool.submit(publisher.publish, chunk))
            submitted += len(chunk)
        _record(in_flight, summary, progress)
    summary.seconds = clock() - started
    return summary


def _chunks(items: Iterator[tuple[int, dict[str, Any]]], size: int) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    chunk: list[tuple[int, dict[str, Any]]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _wait_until(due: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
    wait_for = due - clock()
    if wait_for > 0:
        sleep(wait_for)


def _record(futures: Iterable[Future[PublishResult]], summary: SendSummary, progress: Progress) -> None:
    for future in futures:
        result = future.result()  # an SDK error of a call surfaces here, as one line through aws_call
        events = len(result.accepted) + len(result.failed)
        summary.events += events
        summary.sent += len(result.accepted)
        summary.failed.update({int(str(key)): code for key, code in result.failed.items()})
        summary.calls += result.calls
        summary.resent += result.resent
        progress.advance(events)
