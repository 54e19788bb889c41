"""``sales-pipeline report --html FILE``: one self-contained HTML report (the page is built in operations.report).

This is the one place both libraries meet for the report: the dashboards of a local lake are computed here with
the local runtime (DuckDB) and handed to :func:`operations.report.write_report`, which never imports it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

from operations import monitor as mon
from operations import outputs as stack_outputs
from operations.aws import AwsOptions
from operations.errors import OperatorError
from sales_pipeline.options import add_aws_arguments

__all__ = ["register", "run_command"]


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``report``'s arguments and description to its parser."""
    parser.description = (
        "Write one HTML file that opens without network: the monitor's verdicts, Firehose delivery "
        "over the window as charts, and the dashboard queries' results as charts (on a local lake with DuckDB, "
        "or in the stack's Athena workgroup)."
    )
    add_aws_arguments(parser)
    parser.add_argument("--html", required=True, type=Path, metavar="FILE", help="the HTML file to write")
    parser.add_argument("--since", default="1h", metavar="DURATION", help="the window: 30m, 2h, 1d (default: 1h)")
    parser.add_argument(
        "--lake",
        type=Path,
        metavar="DIR",
        help="run the dashboards with DuckDB on this local lake folder (a run's --out; default: the folder of "
        "--outputs when it is a local run's, else the stack's Athena workgroup)",
    )
    parser.add_argument(
        "--metrics-namespace",
        default=None,
        help="the Lambdas' EMF namespace (Terraform's metrics_namespace; default: CarouselSalesPipeline)",
    )
    parser.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, *, out: IO[str] | None = None) -> int:
    """``report``: 0 when written (whatever the verdicts say), an error line otherwise."""
    out = out or sys.stdout
    since = mon.parse_duration(args.since)
    outputs_path = None if args.outputs is None else Path(args.outputs)
    values = stack_outputs.load(outputs_path)
    stack_outputs.refuse_ended_local_run(outputs_path, values, args.endpoint_url)
    options = AwsOptions.from_values(
        region=args.region, profile=args.profile, endpoint_url=args.endpoint_url, outputs=values
    )
    lake = args.lake
    if (
        lake is None
        and outputs_path is not None
        and values.get("endpoint_url")
        and not values.get("athena_workgroup_name")
    ):
        lake = outputs_path.resolve().parent  # a local run's outputs.json sits in its lake folder
    if lake is not None and not lake.is_dir():
        raise OperatorError(f"--lake {lake}: no such folder")
    if args.html.parent and not args.html.parent.resolve().is_dir():
        raise OperatorError(f"--html {args.html}: folder {args.html.parent} does not exist")
    # Loaded only now: the local runtime (DuckDB, sqlglot) and matplotlib are not needed for `report --help`.
    from operations.report import write_report  # noqa: PLC0415

    dashboards = None
    if lake is not None:
        from local_pipeline.dashboards import run_local_dashboards  # noqa: PLC0415

        dashboards = run_local_dashboards(lake)
    write_report(
        args.html,
        cloudwatch=options.client("cloudwatch"),
        sqs=options.client("sqs"),
        athena=options.client("athena") if lake is None else None,
        outputs=values.values,
        dashboards=dashboards,
        since=since,
        metrics_namespace=args.metrics_namespace,
    )
    print(f"wrote {args.html}", file=out)
    return 0
