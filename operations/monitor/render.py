"""How ``monitor`` prints: one summary line first, then a row per check (text), or one JSON document."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import IO, Any

from operations.monitor.collect import Observation
from operations.monitor.verdicts import _PLUGIN_WORD, _RANK, Check, Verdict, exit_status, overall

__all__ = ["render_text", "summary_line", "to_json", "watch"]

# -- printing --------------------------------------------------------------------------------------------------


def summary_line(checks: Sequence[Check], observation: Observation) -> str:
    """``CRITICAL: DeliveryToS3.DataFreshness 900 s (latest) > 570 s; ...`` then the stream(s) and window."""
    verdict = overall(checks)
    streams = observation.stack.streams
    named_streams = f"stream {streams[0]}" if len(streams) == 1 else f"{len(streams)} streams {', '.join(streams)}"
    where = f"{named_streams}, {observation.window.label}"
    problems = [c for c in checks if _RANK[c.verdict] > 0]
    problems.sort(key=lambda check: -_RANK[check.verdict])
    if not problems:
        with_data = sum(1 for c in checks if c.verdict is Verdict.OK)
        return f"OK: Firehose delivery healthy ({with_data} checks OK, {len(checks) - with_data} without data; {where})"
    named = "; ".join(f"{c.name} {c.value}" for c in problems)
    return f"{_PLUGIN_WORD[verdict]}: {named} ({where})"


def render_text(checks: Sequence[Check], observation: Observation) -> str:
    """The summary line, then one row per check and its detail."""
    rows = [(c.verdict.value, c.name, c.value, c.threshold) for c in checks]
    widths = [max(len(row[i]) for row in [("VERDICT", "CHECK", "VALUE", "THRESHOLD"), *rows]) for i in range(3)]
    lines = [summary_line(checks, observation), ""]
    header = ("VERDICT", "CHECK", "VALUE", "THRESHOLD")
    for row, check in zip([header, *rows], [None, *checks], strict=True):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)) + "  " + row[3])
        if check is not None and check.detail and check.verdict is not Verdict.OK:
            lines.append(" " * (widths[0] + 2) + "-> " + check.detail)
    window = observation.window
    lines.append("")
    lines.append(f"window {window.start:%Y-%m-%d %H:%M} to {window.end:%H:%M:%S} UTC, {window.period} s periods")
    return "\n".join(lines)


def to_json(checks: Sequence[Check], observation: Observation) -> dict[str, Any]:
    """The machine-readable result."""
    verdict = overall(checks)
    return {
        "status": _PLUGIN_WORD[verdict],
        "exit_status": exit_status(verdict),
        "summary": summary_line(checks, observation),
        "delivery_stream_name": observation.stack.delivery_stream,
        "delivery_stream_names": list(observation.stack.streams),
        "streams": [_stream_json(name, checks) for name in observation.stack.streams],
        "window": {
            "start": observation.window.start.isoformat(),
            "end": observation.window.end.isoformat(),
            "period_seconds": observation.window.period,
        },
        "checks": [check.as_dict() for check in checks],
    }


def _stream_json(name: str, checks: Sequence[Check]) -> dict[str, Any]:
    """One stream's verdict: the worst of its own checks (the stack's checks, e.g. the Lambdas', are not in it)."""
    own = [check for check in checks if check.stream == name]
    verdict = overall(own)
    return {
        "name": name,
        "status": _PLUGIN_WORD[verdict],
        "exit_status": exit_status(verdict),
        "problems": [check.name for check in own if _RANK[check.verdict] > 0],
    }


def watch(
    once: Callable[[], int], interval: float, *, out: IO[str], sleep: Callable[[float], None] = time.sleep
) -> int:
    """Run ``once`` every ``interval`` seconds until Ctrl-C; on a terminal each refresh replaces the last."""
    status = 3
    in_place = out.isatty()
    try:
        while True:
            if in_place:
                out.write("\x1b[H\x1b[2J")  # cursor home, clear screen
            status = once()
            out.write(f"\n(refreshing every {interval:g} s; Ctrl-C to stop)\n" if in_place else "\n")
            out.flush()
            sleep(interval)
    except KeyboardInterrupt:
        return status
