"""``sales-pipeline send --events FILE``: publish a JSONL file of EventBridge events to the stack's bus.

The work is in :mod:`operations.send` (checking the file whole, paced and concurrent PutEvents); this module
parses and prints.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from operations.command_support import INCOMPLETE, Progress, aws_call, print_json
from operations.publisher import EventPublisher
from operations.send import SHOWN_BAD_LINES, SendSummary, check_file, send
from sales_pipeline.options import add_aws_arguments, add_dry_run, add_json, bounded_integer, positive_number, stack

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``send``'s arguments and description to its parser."""
    parser.description = (
        "Publish each line of --events FILE (one EventBridge event per line) to the stack's bus "
        "(output event_bus_name) with PutEvents, optionally paced to --rate events per second. The file is "
        "checked whole first: a bad line stops the command with its line number before anything is sent."
    )
    parser.add_argument("--events", required=True, type=Path, metavar="FILE", help="JSONL file of events")
    parser.add_argument(
        "--rate",
        type=positive_number("events per second"),
        metavar="EVENTS_PER_SECOND",
        help="pace the sending (default: as fast as it goes)",
    )
    parser.add_argument(
        "--concurrency",
        type=bounded_integer(1, 64),
        default=4,
        metavar="N",
        help="PutEvents calls in flight at once (default: %(default)s; boto3 clients are thread-safe)",
    )
    add_json(parser, "the summary")
    add_dry_run(parser, "send")
    add_aws_arguments(parser)
    parser.set_defaults(handler=send_command)


def send_command(args: argparse.Namespace) -> int:
    """``send --events FILE``."""
    outputs, aws = stack(args, purpose="send to its bus")
    bus_name = str(outputs.require("event_bus_name"))
    events, total_bytes, calls = check_file(args.events, bus_name)
    if args.dry_run:
        message = (
            f"would send {events} event(s) ({total_bytes} bytes) from {args.events} to bus {bus_name!r} in about "
            f"{calls} PutEvents call(s)"
        )
        if args.rate:
            message += f", paced to {args.rate:g} events/s (about {events / args.rate:.1f} s)"
        if args.json:
            print_json({"dryRun": True, "events": events, "bytes": total_bytes, "calls": calls, "bus": bus_name})
        else:
            sys.stdout.write(message + " (dry run: nothing sent)\n")
        return 0
    publisher = EventPublisher(aws.client("events"))
    with aws_call(f"PutEvents to bus {bus_name!r}"), Progress(f"sending to {bus_name}", events) as progress:
        summary = send(
            args.events, bus_name, publisher, rate=args.rate, progress=progress, concurrency=args.concurrency
        )
    if args.json:
        print_json(summary.as_json())
    else:
        _print_summary(summary, args.events, bus_name)
    return INCOMPLETE if summary.failed else 0


def _print_summary(summary: SendSummary, path: Path, bus_name: str) -> None:
    out = sys.stdout
    speed = f" ({summary.sent / summary.seconds:.1f} events/s)" if summary.seconds > 0 else ""
    out.write(f"{path} -> bus {bus_name!r}: {summary.events} event(s) in {summary.seconds:.2f} s wall time{speed}\n")
    out.write(f"  sent      {summary.sent} in {summary.calls} PutEvents call(s) ({summary.resent} entries resent)\n")
    if summary.failed:
        codes = ", ".join(f"{code} x{count}" for code, count in Counter(summary.failed.values()).most_common())
        lines = ", ".join(str(number) for number in sorted(summary.failed)[:SHOWN_BAD_LINES])
        out.write(f"  failed    {len(summary.failed)} ({codes}); lines {lines}\n")
    else:
        out.write("  failed    0\n")
