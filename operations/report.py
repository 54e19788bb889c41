"""``sales-pipeline report --html FILE``: one self-contained HTML page a person opens in a browser.

At the top the monitor's verdicts; then Firehose delivery over the window as charts (incoming vs delivered
records, freshness against its alarm threshold, throttled records, processing and conversion failures,
dead-letter-queue depth); then the dashboard queries' results as charts, run on a local lake with DuckDB or
in the stack's Athena workgroup. Charts are drawn by matplotlib and inlined as SVG (text as paths): the file
loads no script, font, style sheet or image from anywhere.

:func:`build_report` takes boto3-like clients, so ``sales-pipeline run`` calls it with the clients of its
embedded AWS and writes ``report.html`` into ``--out``.
"""

from __future__ import annotations

import argparse
import html
import io
import re
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from operations import aws
from operations import monitor as mon
from operations import outputs as stack_outputs
from operations.errors import OperatorError

__all__ = [
    "DashboardResult",
    "build_report",
    "load_dashboard_queries",
    "register",
    "run_athena_dashboards",
    "run_local_dashboards",
    "write_report",
]

#: The dashboard SQL files (Athena dialect), the same ones Terraform deploys as named queries.
QUERIES_DIR = Path(__file__).resolve().parents[1] / "athena_queries"
_CREATES_VIEW = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\b", re.IGNORECASE)
_VERDICT_COLOURS = {"OK": "#1a7f37", "NO DATA": "#6e7781", "WARN": "#9a6700", "UNKNOWN": "#8250df", "FAIL": "#cf222e"}


@dataclass(frozen=True)
class DashboardResult:
    """One dashboard query's result: file name (without .sql), column names, rows."""

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


# -- dashboards ------------------------------------------------------------------------------------------------


def load_dashboard_queries(queries_dir: Path = QUERIES_DIR) -> list[tuple[str, str]]:
    """``(name, sql)`` of every dashboard query (view definitions left out: the stack has them deployed)."""
    queries = []
    for path in sorted(queries_dir.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
        if not _CREATES_VIEW.match(body):
            queries.append((path.stem, sql))
    return queries


def run_local_dashboards(lake_dir: Path) -> list[DashboardResult]:
    """The dashboards on a local lake folder (a run's ``--out``) with DuckDB, as ``sales-pipeline run`` does."""
    # Imported here: the local runtime (DuckDB, sqlglot) is needed only for a local lake.
    from local_pipeline.config import StreamConfig  # noqa: PLC0415
    from local_pipeline.dashboards import run_dashboards  # noqa: PLC0415

    config = StreamConfig.from_declarations()
    if not any((lake_dir / config.table_prefix).rglob("*.parquet")):
        return []  # nothing delivered: DuckDB would refuse to read an empty glob
    results = run_dashboards(
        lake_dir,
        table_name=config.table_name,
        table_prefix=config.table_prefix,
        partition_keys=config.glue_table["partition_keys"],
        queries_dir=QUERIES_DIR,
    )
    return [DashboardResult(r.name, list(r.columns), list(r.rows)) for r in results]


def run_athena_dashboards(
    athena: Any,
    *,
    workgroup: str,
    database: str,
    queries_dir: Path = QUERIES_DIR,
    timeout_seconds: float = 300.0,
    poll_seconds: float = 1.0,
) -> list[DashboardResult]:
    """Run every dashboard query in the stack's Athena workgroup and read the results back (every page)."""
    results = []
    for name, sql in load_dashboard_queries(queries_dir):
        execution = athena.start_query_execution(
            QueryString=sql, WorkGroup=workgroup, QueryExecutionContext={"Database": database}
        )["QueryExecutionId"]
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise OperatorError(f"Athena query {name} {status['State']}: {reason}", exit_status=1)
            if time.monotonic() > deadline:
                raise OperatorError(f"Athena query {name} did not finish in {timeout_seconds:.0f} s", 1)
            time.sleep(poll_seconds)
        results.append(_athena_result(athena, name, execution))
    return results


def _athena_result(athena: Any, name: str, execution: str) -> DashboardResult:
    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution):
        result_set = page["ResultSet"]
        if not columns:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            columns = [c["Name"] for c in info]
            types = [c.get("Type", "varchar") for c in info]
        for row in result_set.get("Rows", []):
            cells = [d.get("VarCharValue") for d in row.get("Data", [])]
            if cells == columns:  # the header row Athena puts first for a SELECT
                continue
            rows.append(tuple(_athena_value(cell, kind) for cell, kind in zip(cells, types, strict=False)))
    return DashboardResult(name, columns, rows)


def _athena_value(cell: str | None, kind: str) -> Any:
    if cell is None:
        return None
    if kind in ("tinyint", "smallint", "integer", "bigint"):
        return int(cell)
    if kind in ("double", "float", "real", "decimal"):
        return float(cell)
    return cell


# -- charts ----------------------------------------------------------------------------------------------------


def _svg(figure: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element: no XML prolog, no metadata, text as paths."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    return re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.DOTALL)


def _figure(width: float = 5.3, height: float = 3.0) -> Any:
    from matplotlib.figure import Figure  # noqa: PLC0415 - matplotlib loads only when a report is drawn

    return Figure(figsize=(width, height), layout="constrained")


def _time_chart(
    title: str,
    window: mon.Window,
    lines: Sequence[tuple[str, mon.Series]],
    *,
    unit: str,
    threshold: tuple[str, float] | None = None,
    now: tuple[str, float] | None = None,
) -> str:
    """A time series chart over the window; every data artist gets an SVG id ``data-N`` (the browser test
    looks for them). ``threshold`` draws a dashed line, ``now`` one live value at the window's end."""
    figure = _figure()
    axes = figure.add_subplot()
    drawn = 0
    for label, series in lines:
        if not series.empty:
            axes.plot(series.timestamps, series.values, marker="o", markersize=3, label=label, gid=f"data-{drawn}")
            drawn += 1
    if now is not None:
        axes.plot([window.end], [now[1]], marker="D", linestyle="none", color="#1f2328", label=now[0],
                  gid=f"data-{drawn}")  # fmt: skip
        drawn += 1
    if threshold is not None:
        axes.axhline(threshold[1], color="#cf222e", linestyle="--", linewidth=1, label=threshold[0], gid="threshold")
    if not drawn:
        axes.text(0.5, 0.5, "no data in the window", transform=axes.transAxes, ha="center", va="center",
                  color="#6e7781")  # fmt: skip
    # a little room after the end, so the live value's marker is not cut in half
    axes.set_xlim(window.start, window.end + timedelta(seconds=window.period / 3))
    axes.set_ylim(bottom=0)
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_ylabel(unit)
    axes.grid(alpha=0.3)
    _time_axis(axes)
    if drawn or threshold is not None:
        axes.legend(fontsize=8, loc="upper left")
    return _svg(figure)


def _counted(series: mon.Series, reference: mon.Series) -> mon.Series:
    """A failure counter for charting: where CloudWatch has no datapoint while records came in, nothing was
    counted (the alarms treat missing data the same way), so it is drawn as 0 at the reference's times."""
    if not series.empty or reference.empty:
        return series
    return mon.Series(reference.timestamps, tuple(0.0 for _ in reference.timestamps))


def _time_axis(axes: Any) -> None:
    from matplotlib import dates  # noqa: PLC0415

    locator: Any = dates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]


def delivery_charts(observation: mon.Observation, thresholds: mon.Thresholds) -> list[tuple[str, str]]:
    """(title, svg) of the Firehose delivery charts over the window."""
    get, window = observation.get, observation.window
    incoming = get("incoming_records")
    dlq = observation.dead_letter_queue
    live = None if dlq is None or dlq.error else ("now (GetQueueAttributes)", float(dlq.depth))
    charts: list[tuple[str, list[tuple[str, mon.Series]], dict[str, Any]]] = [
        (
            "Incoming vs delivered records",
            [("IncomingRecords", incoming), ("DeliveryToS3.Records", get("delivered_records"))],
            {"unit": "records per 5 min"},
        ),
        (
            "DeliveryToS3.DataFreshness against its alarm threshold",
            [("DataFreshness (max per 5 min)", get("data_freshness"))],
            {"unit": "seconds", "threshold": (f"alarm threshold {thresholds.freshness_seconds} s",
                                              thresholds.freshness_seconds)},
        ),
        (
            "Throttled records",
            [("ThrottledRecords", _counted(get("throttled_records"), incoming))],
            {"unit": "records per 5 min"},
        ),
        (
            "Processing and conversion failures",
            [
                ("TransformRecordsFailed", _counted(get("transform_records_failed"), incoming)),
                ("FailedConversion.Records", _counted(get("failed_conversion_records"), incoming)),
            ],
            {"unit": "records per 5 min"},
        ),
        (
            "Dead-letter queue depth",
            [("ApproximateNumberOfMessagesVisible (max)", get("dlq.queue_visible"))],
            {"unit": "messages", "now": live},
        ),
    ]  # fmt: skip
    return [(title, _time_chart(title, window, lines, **options)) for title, lines, options in charts]


def dashboard_charts(results: Sequence[DashboardResult]) -> list[tuple[str, str]]:
    """(title, svg) of each dashboard result the report knows how to draw."""
    charts = []
    for result in results:
        draw = _DASHBOARD_DRAWERS.get(result.name)
        if draw is not None and result.rows:
            charts.append(draw(result))
    return charts


def _column(result: DashboardResult, name: str) -> list[Any]:
    index = result.columns.index(name)
    return [row[index] for row in result.rows]


def _ids(bars: Any, name: str) -> None:
    """SVG ids ``data-<name>-N`` on each bar, as on the time series' lines."""
    for index, patch in enumerate(bars):
        patch.set_gid(f"data-{name}-{index}")


def _revenue_chart(result: DashboardResult) -> tuple[str, str]:
    revenue: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for tenant, year, month, amount in zip(
        _column(result, "tenant_id"), _column(result, "year"), _column(result, "month"), _column(result, "revenue"),
        strict=True,
    ):  # fmt: skip
        revenue[str(tenant)][f"{int(year):04d}-{int(month):02d}"] += float(amount or 0)
    months = sorted({m for by_month in revenue.values() for m in by_month})
    figure = _figure(10.8, 3.6)
    axes = figure.add_subplot()
    for tenant in sorted(revenue):
        axes.plot(months, [revenue[tenant].get(m, 0.0) for m in months], marker="o", markersize=3, label=tenant,
                  gid=f"data-{tenant}")  # fmt: skip
    title = "Revenue by tenant and month of sale"
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_ylabel("revenue")
    axes.tick_params(axis="x", labelrotation=45, labelsize=8)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return title, _svg(figure)


def _realisation_chart(result: DashboardResult) -> tuple[str, str]:
    conditions = [str(c) for c in _column(result, "condition")]
    average = [float(v or 0) for v in _column(result, "avg_realisation")]
    weighted = [float(v or 0) for v in _column(result, "weighted_realisation")]
    figure = _figure()
    axes = figure.add_subplot()
    positions = range(len(conditions))
    _ids(axes.bar([p - 0.2 for p in positions], average, width=0.4, label="average of sales"), "average")
    _ids(axes.bar([p + 0.2 for p in positions], weighted, width=0.4, label="weighted by listed price"), "weighted")
    axes.set_xticks(list(positions), conditions)
    title = "Price realisation by condition (sale / listed price)"
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_ylim(0, 1.05)
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize=8, loc="lower left")
    return title, _svg(figure)


def _days_to_sell_chart(result: DashboardResult) -> tuple[str, str]:
    days: dict[str, dict[str, float]] = defaultdict(dict)
    for category, season, average in zip(
        _column(result, "category"), _column(result, "season"), _column(result, "avg_days_to_sell"), strict=True
    ):
        days[str(season)][str(category)] = float(average or 0)
    categories = sorted({c for by_category in days.values() for c in by_category})
    seasons = sorted(days)
    figure = _figure(10.8, 3.6)
    axes = figure.add_subplot()
    width = 0.8 / max(len(seasons), 1)
    for offset, season in enumerate(seasons):
        xs = [i + (offset - (len(seasons) - 1) / 2) * width for i in range(len(categories))]
        _ids(axes.bar(xs, [days[season].get(c, 0.0) for c in categories], width=width, label=season), season)
    axes.set_xticks(list(range(len(categories))), categories)
    title = "Average days to sell by category and season"
    axes.set_title(title, fontsize=11, loc="left")
    axes.set_ylabel("days")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize=8, ncols=len(seasons))
    return title, _svg(figure)


_DASHBOARD_DRAWERS = {
    "sales_revenue_by_tenant_brand_category_month": _revenue_chart,
    "price_realisation_by_condition": _realisation_chart,
    "days_to_sell_by_category_season": _days_to_sell_chart,
}


# -- the page --------------------------------------------------------------------------------------------------

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #1f2328; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #d0d7de; }
.summary { font-size: 1.05rem; padding: .6rem .8rem; border-radius: 6px; color: #fff; }
table { border-collapse: collapse; font-size: .9rem; } td, th { padding: .25rem .6rem; text-align: left; }
tr:nth-child(even) { background: #f6f8fa; } .verdict { font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem; } figure.chart { margin: 0; }
figure.chart svg { max-width: 100%; height: auto; } .note { color: #6e7781; }
"""


def render_html(
    observation: mon.Observation,
    checks: Sequence[mon.Check],
    delivery: Sequence[tuple[str, str]],
    dashboards: Sequence[tuple[str, str]],
    *,
    dashboards_source: str,
) -> str:
    """The page: verdicts, delivery charts, dashboard charts."""
    verdict = mon.overall(checks)
    rows = "\n".join(
        f'<tr><td class="verdict" style="color:{_VERDICT_COLOURS[c.verdict.value]}">{c.verdict.value}</td>'
        f"<td>{html.escape(c.name)}</td><td>{html.escape(c.value)}</td><td>{html.escape(c.threshold)}</td>"
        f"<td>{html.escape(c.detail if c.verdict is not mon.Verdict.OK else '')}</td></tr>"
        for c in checks
    )
    window = observation.window
    dashboard_section = (
        _figures(dashboards) if dashboards else '<p class="note">Nothing to chart: no dashboard rows.</p>'
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Sales pipeline report: {html.escape(observation.stack.delivery_stream)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Sales pipeline report: {html.escape(observation.stack.delivery_stream)}</h1>
<p class="note">Window {window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC ({window.label}),
{window.period} s periods. Generated {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC.</p>
<h2>Monitor</h2>
<p class="summary" style="background:{_VERDICT_COLOURS[verdict.value]}">{html.escape(mon.summary_line(checks, observation))}</p>
<table>
<tr><th>Verdict</th><th>Check</th><th>Value</th><th>Threshold</th><th>Detail</th></tr>
{rows}
</table>
<h2>Firehose delivery</h2>
{_figures(delivery)}
<h2>Dashboards</h2>
<p class="note">{html.escape(dashboards_source)}</p>
{dashboard_section}
</body>
</html>
"""  # noqa: E501


def _figures(charts: Sequence[tuple[str, str]]) -> str:
    items = "\n".join(
        f'<figure class="chart" data-title="{html.escape(title)}">{svg}</figure>' for title, svg in charts
    )
    return f'<div class="charts">\n{items}\n</div>'


def build_report(
    *,
    cloudwatch: Any,
    sqs: Any,
    outputs: Mapping[str, Any],
    lake_dir: Path | None = None,
    athena: Any = None,
    since: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    metrics_namespace: str | None = None,
) -> str:
    """The report as one HTML string.

    ``outputs`` are the stack's output values (``terraform output -json`` names). The dashboards run on
    ``lake_dir`` with DuckDB when it is given, else in the stack's Athena workgroup when ``athena`` is given
    and the outputs name one; otherwise the page says why there are none.
    """
    values = stack_outputs.StackOutputs(outputs, "the stack outputs")
    stack = mon.StackNames.from_outputs(values, metrics_namespace=metrics_namespace)
    thresholds = mon.Thresholds.from_declarations()
    window = mon.Window.ending(now or datetime.now(UTC), since)
    observation = mon.collect(cloudwatch, sqs, stack, window)
    checks = mon.evaluate(observation, thresholds)
    if lake_dir is not None:
        results = run_local_dashboards(lake_dir)
        source = "Run with DuckDB on the local lake (the Athena SQL, translated to DuckDB's dialect)."
    elif athena is not None and values.get("athena_workgroup_name"):
        workgroup = str(values.require("athena_workgroup_name"))
        results = run_athena_dashboards(athena, workgroup=workgroup, database=str(values.require("glue_database_name")))
        source = f"Run in the Athena workgroup {workgroup}."
    else:
        results, source = [], "not run (no local lake given, and no Athena workgroup in the outputs)"
    return render_html(
        observation,
        checks,
        delivery_charts(observation, thresholds),
        dashboard_charts(results),
        dashboards_source=source,
    )


def write_report(path: Path, **kwargs: Any) -> Path:
    """:func:`build_report` written to ``path`` (UTF-8); returns ``path``."""
    path.write_text(build_report(**kwargs), encoding="utf-8")
    return path


# -- the command -----------------------------------------------------------------------------------------------


def register(subparsers: Any) -> None:
    """Add ``report`` to the ``sales-pipeline`` command parsers."""
    parser = subparsers.add_parser(
        "report",
        help="write one self-contained HTML report: monitor verdicts, delivery charts, dashboard charts",
        description="Write one HTML file that opens without network: the monitor's verdicts, Firehose delivery "
        "over the window as charts, and the dashboard queries' results as charts (on a local lake with DuckDB, "
        "or in the stack's Athena workgroup).",
    )
    aws.add_arguments(parser)
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
    mon.refuse_ended_local_run(outputs_path, values, args.endpoint_url)
    options = aws.AwsOptions.from_args(args, values)
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
    write_report(
        args.html,
        cloudwatch=options.client("cloudwatch"),
        sqs=options.client("sqs"),
        athena=options.client("athena") if lake is None else None,
        outputs=values.values,
        lake_dir=lake,
        since=since,
        metrics_namespace=args.metrics_namespace,
    )
    print(f"wrote {args.html}", file=out)
    return 0
