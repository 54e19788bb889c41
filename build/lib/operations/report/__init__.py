"""``sales-pipeline report``'s library: one self-contained HTML page a person opens in a browser.

At the top the monitor's verdicts; then Firehose delivery over the window as charts (incoming vs delivered
records, freshness against its alarm threshold, throttled records, processing and conversion failures,
dead-letter-queue depth); then the dashboard queries' results as charts, computed on a local lake with DuckDB
(by the caller, who passes them in) or run here in the stack's Athena workgroup. Charts are drawn by
matplotlib and inlined as SVG (text as paths): the file loads no script, font, style sheet or image from
anywhere.

:func:`build_report` takes boto3-like clients, so ``sales-pipeline run`` calls it with the clients of its
embedded AWS and writes ``report.html`` into ``--out``. Split by concern: :mod:`~operations.report.athena`
(queries and results), :mod:`~operations.report.charts` (matplotlib), :mod:`~operations.report.page` (HTML).
"""

from __future__ import annotations

from operations.report.athena import DashboardResult, load_dashboard_queries, run_athena_dashboards
from operations.report.charts import dashboard_charts, delivery_charts
from operations.report.page import LOCAL_DASHBOARDS_SOURCE, build_report, render_html, write_report

__all__ = [
    "LOCAL_DASHBOARDS_SOURCE",
    "DashboardResult",
    "build_report",
    "dashboard_charts",
    "delivery_charts",
    "load_dashboard_queries",
    "render_html",
    "run_athena_dashboards",
    "write_report",
]
