"""``sales-pipeline monitor``: is Firehose delivery healthy right now? (the work is in operations.monitor)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from operations import metrics
from operations import monitor as mon
from operations import outputs as stack_outputs
from operations.aws import AwsOptions
from operations.errors import OperatorError
from sales_pipeline.options import add_aws_arguments

__all__ = ["register", "run_command"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``monitor``'s arguments, description and exit statuses to its parser."""
    parser.description = (
        "Read the stack's CloudWatch metrics over a window, its queues and its alarms; judge "
        "ingestion against the stream's quotas, throttling, delivery to S3 and its freshness, the transform, "
        "Parquet conversion, partitions, both Lambdas, the dead-letter and buffer queues. One summary line "
        "first, then one row per check with its value, threshold and verdict."
    )
    parser.epilog = mon.EXIT_STATUS_HELP
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_aws_arguments(parser)
    parser.add_argument(
        "--since",
        default="1h",
        metavar="DURATION",
        help="the window read, up to now: 30m, 2h, 1d, ... (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document (per refresh) instead of text")
    parser.add_argument(
        "--watch",
        metavar="SECONDS",
        help="refresh every SECONDS (in place on a terminal) until interrupted; exits with the last status",
    )
    parser.add_argument(
        "--metrics-namespace",
        default=metrics.EMF_NAMESPACE,
        help="the Lambdas' EMF namespace (Terraform's metrics_namespace; default: %(default)s)",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    """``monitor``: every error that stops reading is UNKNOWN (3), never a traceback."""
    out = out or sys.stdout
    try:
        since = mon.parse_duration(args.since)
        interval = _watch_seconds(args.watch)
        path = None if args.outputs is None else Path(args.outputs)
        values = stack_outputs.load(path)
        stack_outputs.refuse_ended_local_run(path, values, args.endpoint_url)
        stack = mon.StackNames.from_outputs(values, metrics_namespace=args.metrics_namespace)
        options = AwsOptions.from_values(
            region=args.region, profile=args.profile, endpoint_url=args.endpoint_url, outputs=values
        )
        cloudwatch, sqs = options.client("cloudwatch"), options.client("sqs")
    except OperatorError as exc:
        raise OperatorError(str(exc), exit_status=3) from exc
    thresholds = mon.Thresholds.from_declarations()

    def once() -> int:
        observation = mon.collect(cloudwatch, sqs, stack, mon.Window.ending(datetime.now(UTC), since))
        checks = mon.evaluate(observation, thresholds)
        if args.json:
            print(json.dumps(mon.to_json(checks, observation)), file=out)
        else:
            print(mon.render_text(checks, observation), file=out)
        return mon.exit_status(mon.overall(checks))

    if interval is None:
        return once()
    return mon.watch(once, interval, out=out)


def _watch_seconds(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if seconds < 1:
        raise OperatorError(f"--watch {text!r}: expected a number of seconds, at least 1", exit_status=3)
    return seconds
