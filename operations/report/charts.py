"""The report's charts, drawn by matplotlib and inlined as SVG (text as paths): Firehose delivery over the window,
and the dashboard queries' results. matplotlib loads only when a chart is drawn."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import Any

from operations import metrics
from operations import monitor as mon
from operations.monitor.collect import stream_key
from operations.report.athena import DashboardResult

__all__ = ["dashboard_charts", "delivery_charts"]


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


def _total(observation: mon.Observation, key: str) -> mon.Series:
    """Firehose series ``key`` summed over every stream, by timestamp (stream 0's own with one stream)."""
    streams = observation.stack.streams
    if len(streams) == 1:
        return observation.get(key)
    sums: dict[Any, float] = defaultdict(float)
    for index in range(len(streams)):
        series = observation.get(stream_key(index, key))
        for stamp, value in zip(series.timestamps, series.values, strict=True):
            sums[stamp] += value
    stamps = sorted(sums)
    return mon.Series(tuple(stamps), tuple(sums[stamp] for stamp in stamps))


def _time_axis(axes: Any) -> None:
    from matplotlib import dates  # noqa: PLC0415

    locator: Any = dates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator, tz=UTC))  # type: ignore[no-untyped-call]


def _per_stream(
    observation: mon.Observation, key: str, label: str, *, counted: bool = False
) -> list[tuple[str, mon.Series]]:
    """One line per delivery stream of Firehose series ``key``: ``label`` alone with one stream (as it has always
    been drawn), ``label [stream]`` with several. ``counted``: drawn as 0 where records came in uncounted."""
    streams = observation.stack.streams
    lines = []
    for index, name in enumerate(streams):
        series = observation.get(stream_key(index, key))
        if counted:
            series = _counted(series, observation.get(stream_key(index, "incoming_records")))
        lines.append((label if len(streams) == 1 else f"{label} [{name}]", series))
    return lines


def delivery_charts(observation: mon.Observation, thresholds: mon.Thresholds) -> list[tuple[str, str]]:
    """(title, svg) of the Firehose delivery charts over the window; a stack with several delivery streams gets
    one line per stream for each Firehose metric."""
    get, window = observation.get, observation.window
    # An Iceberg lake's streams publish DeliveryToIceberg.* instead of DeliveryToS3.* (operations/metrics.py).
    iceberg = observation.stack.lake_table_format == "iceberg"
    delivered_key, freshness_key = (
        ("iceberg_successful_rows", "iceberg_data_freshness") if iceberg else ("delivered_records", "data_freshness")
    )
    incoming = _total(observation, "incoming_records")
    dlq = observation.dead_letter_queue
    live = None if dlq is None or dlq.error else ("now (GetQueueAttributes)", float(dlq.depth))
    charts: list[tuple[str, list[tuple[str, mon.Series]], dict[str, Any]]] = [
        (
            "Incoming vs delivered records",
            [*_per_stream(observation, "incoming_records", "IncomingRecords"),
             *_per_stream(observation, delivered_key, metrics.ALL[delivered_key].name)],
            {"unit": "records per 5 min"},
        ),
        (
            f"{metrics.ALL[freshness_key].name} against its alarm threshold",
            _per_stream(observation, freshness_key, "DataFreshness (max per 5 min)"),
            {"unit": "seconds", "threshold": (f"alarm threshold {thresholds.freshness_seconds} s",
                                              thresholds.freshness_seconds)},
        ),
        (
            "Throttled records",
            _per_stream(observation, "throttled_records", "ThrottledRecords", counted=True),
            {"unit": "records per 5 min"},
        ),
        (
            "Processing and conversion failures",
            [
                ("TransformRecordsFailed", _counted(get("transform_records_failed"), incoming)),
                *_per_stream(observation, "failed_conversion_records", "FailedConversion.Records", counted=True),
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
