"""The report page: one self-contained HTML file (no script, font, style sheet or image loaded from anywhere)
with the monitor's verdicts, the delivery charts and the dashboards' charts."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from operations import monitor as mon
from operations import outputs as stack_outputs
from operations.report.athena import DashboardResult, run_athena_dashboards
from operations.report.charts import dashboard_charts, delivery_charts

__all__ = ["LOCAL_DASHBOARDS_SOURCE", "build_report", "render_html", "write_report"]

#: What the page says of dashboards computed on a local lake (``sales_pipeline``'s ``report``, ``run``).
LOCAL_DASHBOARDS_SOURCE = "Run with DuckDB on the local lake (the Athena SQL, translated to DuckDB's dialect)."
_VERDICT_COLOURS = {"OK": "#1a7f37", "NO DATA": "#6e7781", "WARN": "#9a6700", "UNKNOWN": "#8250df", "FAIL": "#cf222e"}

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
    dashboards: Sequence[DashboardResult] | None = None,
    athena: Any = None,
    since: timedelta = timedelta(hours=1),
    now: datetime | None = None,
    metrics_namespace: str | None = None,
) -> str:
    """The report as one HTML string.

    ``outputs`` are the stack's output values (``terraform output -json`` names). ``dashboards`` are results
    already computed on a local lake (``local_pipeline.dashboards.run_local_dashboards``: this library never
    runs the local runtime); without them the dashboards run in the stack's Athena workgroup when ``athena``
    is given and the outputs name one; otherwise the page says why there are none.
    """
    values = stack_outputs.StackOutputs(outputs, "the stack outputs")
    stack = mon.StackNames.from_outputs(values, metrics_namespace=metrics_namespace)
    thresholds = mon.Thresholds.from_declarations()
    window = mon.Window.ending(now or datetime.now(UTC), since)
    observation = mon.collect(cloudwatch, sqs, stack, window)
    checks = mon.evaluate(observation, thresholds)
    results: Sequence[DashboardResult]
    if dashboards is not None:
        results, source = dashboards, LOCAL_DASHBOARDS_SOURCE
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
