"""``sales-pipeline``: the command-line face of the local runtime (argparse only; the work is in runner)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The parser for ``sales-pipeline`` and its commands."""
    from local_pipeline.runner import DEFAULT_EVENTS  # noqa: PLC0415 - heavy imports wait until after --help

    parser = argparse.ArgumentParser(
        prog="sales-pipeline",
        description="Run the carousel sales pipeline on this machine: the real Lambdas, a local Firehose that "
        "buffers, transforms, partitions and writes Parquet, and the Athena dashboards on DuckDB.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="generate (or read) a burst of sale events and run it through the whole pipeline",
        description="Generate a seeded burst of sale events (or read --events FILE), route it through the "
        "EventBridge pattern, the fan-out Lambda, the local Firehose and the transform Lambda into a Parquet "
        "lake, print a summary, mirror the lake to --out and print the dashboard queries' results.",
    )
    # A generated burst's size and an events file exclude each other: -n with --events is refused, not ignored.
    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "--events",
        dest="events_file",
        type=Path,
        metavar="FILE",
        help="JSONL file, one EventBridge event per line, instead of a generated burst (excludes -n)",
    )
    source.add_argument(
        "-n",
        "--count",
        dest="count",
        type=_positive,
        default=None,
        help=f"number of events to generate (default: {DEFAULT_EVENTS})",
    )
    run.add_argument("--seed", type=_integer, default=7, help="seed of the generated burst (default: %(default)s)")
    run.add_argument(
        "--trigger",
        choices=("queue", "direct"),
        default=None,
        help="how EventBridge reaches the fan-out: 'queue' (SQS buffer queue, batches) or 'direct' (one "
        "asynchronous invocation per event); default: pipeline.json's fanout_trigger, as Terraform's",
    )
    run.add_argument(
        "--burst-seconds",
        type=_positive,
        default=900,
        help="simulated seconds the burst is spread over; drives Firehose buffering (default: %(default)s)",
    )
    run.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS-compatible endpoint (e.g. a running moto_server at http://127.0.0.1:5000) "
        "instead of the embedded moto",
    )
    run.add_argument(
        "--region",
        default="us-east-1",
        help="region of the embedded AWS; sets Firehose's Direct PUT quotas (default: %(default)s)",
    )
    run.add_argument(
        "--out",
        type=Path,
        default=Path("lake"),
        help="folder the lake bucket is mirrored to, same key layout (default: %(default)s)",
    )
    run.add_argument(
        "--faults",
        type=_faults,
        default=None,
        metavar="SPEC",
        help="inject faults, e.g. dynamodb-throttle=0.1,fanout-crash=0.05: comma-separated NAME=RATE, RATE in 0-1 "
        "drawn from --seed (reproducible). NAMEs: dynamodb-throttle, firehose-unavailable, firehose-partial, "
        "fanout-crash, transform-error, s3-unavailable, sqs-redelivery. Every run ends with an audit of every "
        "event; the exit status is 1 when one is lost",
    )
    run.add_argument("--no-dashboards", dest="dashboards", action="store_false", help="skip the dashboard queries")
    run.add_argument(
        "--lambda-log",
        type=Path,
        metavar="FILE",
        help="append the Lambdas' structured logs and EMF metrics to FILE (default: discarded)",
    )
    run.set_defaults(handler=_run)
    generate = commands.add_parser(
        "generate",
        help="write the seeded burst `run` would generate as JSONL (one EventBridge event per line)",
        description="Write the burst `sales-pipeline run -n N --seed S` generates, one EventBridge event per "
        "line, streamed (any size in flat memory): the input of `run --events` and of `send`.",
    )
    generate.add_argument(
        "-n", "--count", type=_positive, default=DEFAULT_EVENTS, help="number of events (default: %(default)s)"
    )
    generate.add_argument("--seed", type=_integer, default=7, help="seed of the burst (default: %(default)s)")
    generate.add_argument(
        "--burst-seconds",
        type=_positive,
        default=900,
        help="simulated seconds the burst is spread over (sets each event's time; default: %(default)s)",
    )
    generate.add_argument("--out", type=Path, metavar="FILE", help="write to FILE instead of standard output")
    generate.set_defaults(handler=_generate)
    from operations import COMMAND_MODULES  # noqa: PLC0415

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sales-pipeline`` console script."""
    args = build_parser().parse_args(argv)
    from operations.errors import OperatorError  # noqa: PLC0415

    try:
        status: int = args.handler(args)
    except OperatorError as exc:
        sys.stderr.write(f"sales-pipeline {args.command}: error: {exc}\n")
        return exc.exit_status
    return status


def _run(args: argparse.Namespace) -> int:
    from local_pipeline.runner import DEFAULT_EVENTS, RunError, RunOptions, run  # noqa: PLC0415 - see build_parser

    options = RunOptions(
        events=args.count if args.count is not None else DEFAULT_EVENTS,
        seed=args.seed,
        events_file=args.events_file,
        endpoint_url=args.endpoint_url,
        out=args.out,
        burst_seconds=args.burst_seconds,
        region=args.region,
        dashboards=args.dashboards,
        lambda_log=args.lambda_log,
        trigger=args.trigger,
        **({"faults": args.faults} if args.faults is not None else {}),
    )
    try:
        summary = run(options)
    except RunError as exc:
        sys.stderr.write(f"sales-pipeline run: error: {exc}\n")
        return 2
    audit = summary.audit
    if audit is not None and not audit.ok:
        sys.stderr.write(
            f"sales-pipeline run: audit failed: {audit.lost} lost, {audit.duplicated_after_dedup} twice after "
            f"dedup, {audit.unexpected_in_lake} in the lake never sent (see the summary and summary.json)\n"
        )
        return 1
    return 0


def _generate(args: argparse.Namespace) -> int:
    from local_pipeline.generator import BurstSpec, generate, write_jsonl  # noqa: PLC0415 - see build_parser

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


def _faults(text: str) -> Any:
    from local_pipeline.faults import FaultSpec, FaultSpecError  # noqa: PLC0415 - see build_parser

    try:
        return FaultSpec.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


if __name__ == "__main__":
    raise SystemExit(main())
