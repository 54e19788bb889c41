"""``sales-pipeline generate``: the seeded burst ``run`` would generate, as JSONL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sales_pipeline.options import integer, positive

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``generate``'s arguments to its parser."""
    from local_pipeline.runner import DEFAULT_EVENTS  # noqa: PLC0415 - only when `generate` is the command

    parser.description = (
        "Write the burst `sales-pipeline run -n N --seed S` generates, one EventBridge event per "
        "line, streamed (any size in flat memory): the input of `run --events` and of `send`."
    )
    parser.add_argument(
        "-n", "--count", type=positive, default=DEFAULT_EVENTS, help="number of events (default: %(default)s)"
    )
    parser.add_argument("--seed", type=integer, default=7, help="seed of the burst (default: %(default)s)")
    parser.add_argument(
        "--burst-seconds",
        type=positive,
        default=900,
        help="simulated seconds the burst is spread over (sets each event's time; default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    parser.set_defaults(handler=generate_command)


def generate_command(args: argparse.Namespace) -> int:
    """Write the burst to ``--out`` (whole or not at all) or to stdout."""
    from local_pipeline.generator import BurstSpec, generate, write_jsonl  # noqa: PLC0415 - see register

    events = generate(BurstSpec(events=args.count, seed=args.seed, burst_seconds=args.burst_seconds))
    if args.out is None:
        write_jsonl(events, sys.stdout.buffer)
        sys.stdout.flush()
        return 0
    target: Path = args.out
    if target.is_dir() or not target.absolute().parent.is_dir():
        where = "is a folder" if target.is_dir() else f"has no folder {target.absolute().parent}"
        sys.stderr.write(f"sales-pipeline generate: error: --out {target} {where}\n")
        return 2
    partial = target.with_name(f".{target.name}.partial")
    try:
        with partial.open("wb") as out:
            count = write_jsonl(events, out)
        partial.replace(target)  # a file only once it is whole
    finally:
        partial.unlink(missing_ok=True)
    sys.stderr.write(f"wrote {count} events to {target}\n")
    return 0
