"""``sales-pipeline run``: a burst through the whole pipeline on this machine (the work is in local_pipeline)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sales_pipeline.options import integer, positive

__all__ = ["register"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``run``'s arguments to its parser."""
    from local_pipeline.runner import DEFAULT_EVENTS  # noqa: PLC0415 - only when `run` is the command

    parser.description = (
        "Generate a seeded burst of sale events (or read --events FILE), route it through the "
        "EventBridge pattern, the fan-out Lambda, the local Firehose and the transform Lambda into a Parquet "
        "lake, print a summary, mirror the lake to --out and print the dashboard queries' results."
    )
    # A generated burst's size and an events file exclude each other: -n with --events is refused, not ignored.
    source = parser.add_mutually_exclusive_group()
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
        type=positive,
        default=None,
        help=f"number of events to generate (default: {DEFAULT_EVENTS})",
    )
    parser.add_argument("--seed", type=integer, default=7, help="seed of the generated burst (default: %(default)s)")
    parser.add_argument(
        "--trigger",
        choices=("queue", "direct"),
        default=None,
        help="how EventBridge reaches the fan-out: 'queue' (SQS buffer queue, batches) or 'direct' (one "
        "asynchronous invocation per event); default: pipeline.json's fanout_trigger, as Terraform's",
    )
    parser.add_argument(
        "--burst-seconds",
        type=positive,
        default=900,
        help="simulated seconds the burst is spread over; drives Firehose buffering (default: %(default)s)",
    )
    parser.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS-compatible endpoint (e.g. a running moto_server at http://127.0.0.1:5000) "
        "instead of the embedded moto",
    )
    parser.add_argument(
        "--region",
        default="us-east-1",
        help="region of the embedded AWS; sets Firehose's Direct PUT quotas (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("lake"),
        help="folder the lake bucket is mirrored to, same key layout (default: %(default)s)",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=None,
        metavar="SPEC",
        help="inject faults, e.g. dynamodb-throttle=0.1,fanout-crash=0.05: comma-separated NAME=RATE, RATE in 0-1 "
        "drawn from --seed (reproducible). NAMEs: dynamodb-throttle, firehose-unavailable, firehose-partial, "
        "fanout-crash, transform-error, s3-unavailable, sqs-redelivery. Every run ends with an audit of every "
        "event; the exit status is 1 when one is lost",
    )
    parser.add_argument(
        "--firehose-streams",
        type=positive,
        default=None,
        metavar="N",
        help="identical Direct PUT streams the fan-out spreads its records over, each with the region's quotas "
        "(default: pipeline.json's firehose.stream_count, as Terraform's firehose_stream_count)",
    )
    parser.add_argument(
        "--table-format",
        choices=("parquet", "iceberg"),
        default="parquet",
        help="the lake: Parquet objects under dynamic partitions, or an Apache Iceberg table upserted on sale_id "
        "(a SQLite catalog in --out), as Terraform's lake_table_format (default: %(default)s)",
    )
    parser.add_argument(
        "--dynamodb-warm-writes",
        type=positive,
        default=None,
        metavar="N",
        help="write units per second each DynamoDB table and index serves from the start: a pre-warmed table "
        "(update-table --warm-throughput) or one with a higher past peak (default: 4000, a new on-demand table's; "
        "at most 40000, the default per-table quota). Capacity grows to twice a peak 30 minutes after it",
    )
    parser.add_argument("--no-dashboards", dest="dashboards", action="store_false", help="skip the dashboard queries")
    parser.add_argument(
        "--lambda-log",
        type=Path,
        metavar="FILE",
        help="append the Lambdas' structured logs and EMF metrics to FILE (default: discarded)",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace) -> int:
    """Run, print the summary; exit 2 on a refused run, 1 when the audit finds an event lost."""
    from local_pipeline.runner import DEFAULT_EVENTS, RunError, RunOptions, run  # noqa: PLC0415 - see register

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
        firehose_streams=args.firehose_streams,
        table_format=args.table_format,
        dynamodb_warm_writes=args.dynamodb_warm_writes,
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


def _faults(text: str) -> Any:
    from local_pipeline.faults import FaultSpec, FaultSpecError  # noqa: PLC0415 - see register

    try:
        return FaultSpec.parse(text)
    except FaultSpecError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
