"""report: the dashboards in Athena (Stubber), the charts and the page, without any AWS endpoint."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from operations import report
from operations.errors import OperatorError
from operations.monitor import Observation, QueueState, Series, StackNames, Thresholds, Window, evaluate

END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
WINDOW = Window.ending(END, timedelta(hours=1))
THRESHOLDS = Thresholds(570, 300, 500, 185, 5)


def test_view_definitions_are_left_out_of_the_dashboard_queries() -> None:
    names = [name for name, _sql in report.load_dashboard_queries()]
    assert names == [
        "days_to_sell_by_category_season",
        "price_realisation_by_condition",
        "sales_revenue_by_tenant_brand_category_month",
    ]


def _athena_page(rows: list[list[str | None]], *, header: bool) -> dict[str, Any]:
    columns = [("condition", "varchar"), ("sales", "bigint"), ("avg_realisation", "double")]
    data = [[{"VarCharValue": name} for name, _ in columns]] if header else []
    data += [[{} if cell is None else {"VarCharValue": cell} for cell in row] for row in rows]
    return {
        "ResultSet": {
            "Rows": [{"Data": cells} for cells in data],
            "ResultSetMetadata": {
                "ColumnInfo": [
                    {"CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
                     "Type": kind, "Precision": 0, "Scale": 0, "Nullable": "UNKNOWN", "CaseSensitive": False}
                    for name, kind in columns
                ]
            },
        },
    }  # fmt: skip


def test_athena_results_are_read_page_by_page_typed_and_without_the_header(tmp_path: Path) -> None:
    (tmp_path / "price_realisation_by_condition.sql").write_text("SELECT 1", encoding="utf-8")
    (tmp_path / "view.sql").write_text("-- a view\nCREATE OR REPLACE VIEW v AS SELECT 1", encoding="utf-8")
    athena = boto3.client("athena", region_name="us-east-1")
    with Stubber(athena) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q-1"},
            {"QueryString": "SELECT 1", "WorkGroup": "wg", "QueryExecutionContext": {"Database": "db"}},
        )
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "RUNNING"}}})
        stub.add_response("get_query_execution", {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}})
        first = _athena_page([["new", "12", "0.951"]], header=True)
        stub.add_response("get_query_results", {**first, "NextToken": "t"}, {"QueryExecutionId": "q-1"})
        stub.add_response(
            "get_query_results",
            _athena_page([["fair", "3", None]], header=False),
            {"QueryExecutionId": "q-1", "NextToken": "t"},
        )
        results = report.run_athena_dashboards(athena, workgroup="wg", database="db", queries_dir=tmp_path,
                                               poll_seconds=0)  # fmt: skip
    assert results == [
        report.DashboardResult(
            "price_realisation_by_condition",
            ["condition", "sales", "avg_realisation"],
            [("new", 12, 0.951), ("fair", 3, None)],
        )
    ]


def test_a_failed_athena_query_is_a_one_line_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "revenue.sql").write_text("SELECT 1", encoding="utf-8")
    athena = boto3.client("athena", region_name="us-east-1")
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q-2"})
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND"}}},
        )
        with pytest.raises(OperatorError, match="Athena query revenue FAILED: TABLE_NOT_FOUND"):
            report.run_athena_dashboards(athena, workgroup="wg", database="db", queries_dir=tmp_path)


def _observation(**series: Series) -> Observation:
    return Observation(
        stack=StackNames(delivery_stream="sales <history>", dead_letter_queue_url="http://127.0.0.1/1/dlq"),
        window=WINDOW,
        series=series,
        dead_letter_queue=QueueState("dlq", visible=2, retention_seconds=345_600),
    )


def _data_ids(svg: str) -> list[str]:
    return re.findall(r'id="(data-[^"]+)"', svg)


def test_delivery_charts_draw_every_series_and_say_when_the_window_is_empty() -> None:
    at = (END - timedelta(minutes=10), END - timedelta(minutes=5))
    charts = dict(
        report.delivery_charts(
            _observation(incoming_records=Series(at, (10.0, 20.0)), data_freshness=Series(at, (200.0, 650.0))),
            THRESHOLDS,
        )
    )
    assert len(charts) == 5
    incoming = charts["Incoming vs delivered records"]
    assert _data_ids(incoming) == ["data-0"]  # delivered had no data: not drawn as zeros
    # Failure counters with no datapoint while records came in are drawn as zeros (nothing counted).
    assert _data_ids(charts["Throttled records"]) == ["data-0"]
    assert _data_ids(charts["Processing and conversion failures"]) == ["data-0", "data-1"]
    freshness = charts["DeliveryToS3.DataFreshness against its alarm threshold"]
    assert 'id="threshold"' in freshness
    assert _data_ids(charts["Dead-letter queue depth"]) == ["data-0"]  # the live depth from GetQueueAttributes
    empty = dict(report.delivery_charts(_observation(), THRESHOLDS))["Incoming vs delivered records"]
    assert _data_ids(empty) == []
    for svg in charts.values():
        assert svg.startswith("<svg") and "<metadata>" not in svg and "<text" not in svg  # text drawn as paths


def test_delivery_charts_draw_one_line_per_stream_with_several_streams() -> None:
    at = (END - timedelta(minutes=10), END - timedelta(minutes=5))
    observation = _observation(
        incoming_records=Series(at, (10.0, 20.0)),
        data_freshness=Series(at, (200.0, 650.0)),
        **{"stream1.incoming_records": Series(at, (5.0, 7.0)), "stream1.data_freshness": Series(at, (90.0, 80.0))},
    )
    observation.stack = StackNames(delivery_stream="a", delivery_streams=("a", "b"))

    charts = dict(report.delivery_charts(observation, THRESHOLDS))

    assert _data_ids(charts["Incoming vs delivered records"]) == ["data-0", "data-1"]  # each stream's incoming
    assert _data_ids(charts["DeliveryToS3.DataFreshness against its alarm threshold"]) == ["data-0", "data-1"]
    assert _data_ids(charts["Throttled records"]) == ["data-0", "data-1"]  # nothing counted on either stream
    # TransformRecordsFailed (one metric for the stack) and each stream's FailedConversion.Records
    assert _data_ids(charts["Processing and conversion failures"]) == ["data-0", "data-1", "data-2"]


def test_dashboard_charts_one_per_known_query_each_bar_and_line_marked() -> None:
    results = [
        report.DashboardResult(
            "sales_revenue_by_tenant_brand_category_month",
            ["tenant_id", "year", "month", "brand", "category", "sales", "revenue"],
            [
                ("t1", 2025, 7, "b", "c", 2, 100.0),
                ("t1", 2025, 7, "b2", "c", 1, 50.0),
                ("t2", 2025, 8, "b", "c", 1, 9.5),
            ],
        ),
        report.DashboardResult(
            "price_realisation_by_condition",
            ["condition", "sales", "avg_realisation", "weighted_realisation"],
            [("new", 3, 0.95, 0.94), ("fair", 1, 0.6, None)],
        ),
        report.DashboardResult(
            "days_to_sell_by_category_season",
            ["category", "season", "sales", "avg_days_to_sell", "median_days_to_sell", "max_days_to_sell"],
            [("shoes", "Q1", 2, 30.5, 30, 40), ("bags", "Q2", 1, 12.0, 12, 12)],
        ),
        report.DashboardResult("unknown_query", ["x"], [(1,)]),
        report.DashboardResult("price_realisation_by_condition", ["condition"], []),
    ]
    charts = report.dashboard_charts(results)
    assert [title for title, _ in charts] == [
        "Revenue by tenant and month of sale",
        "Price realisation by condition (sale / listed price)",
        "Average days to sell by category and season",
    ]
    assert _data_ids(charts[0][1]) == ["data-t1", "data-t2"]
    assert len(_data_ids(charts[1][1])) == 4
    assert len(_data_ids(charts[2][1])) == 4  # two categories x two seasons


def test_the_page_escapes_names_and_puts_the_verdicts_first() -> None:
    observation = _observation()
    checks = evaluate(observation, THRESHOLDS)
    page = report.render_html(observation, checks, [("a <chart>", "<svg></svg>")], [], dashboards_source="none here")
    assert "sales &lt;history&gt;" in page and "sales <history>" not in page
    assert page.index("WARNING: dead-letter queue depth 2") < page.index("Firehose delivery")
    assert 'data-title="a &lt;chart&gt;"' in page
    assert "none here" in page and "Nothing to chart: no dashboard rows." in page


class _QuietCloudWatch:
    """A CloudWatch with no datapoint and no metric: the page is still built, every check without data."""

    def get_metric_data(self, **_: Any) -> dict[str, Any]:
        return {"MetricDataResults": []}

    def list_metrics(self, **_: Any) -> dict[str, Any]:
        return {"Metrics": []}


def _page(**kwargs: Any) -> str:
    outputs = {"delivery_stream_name": "sales-history", "aws_region": "us-east-1"}
    return report.build_report(cloudwatch=_QuietCloudWatch(), sqs=None, outputs=outputs, now=END, **kwargs)


def test_dashboards_computed_on_a_local_lake_are_charted_and_said_to_be_duckdbs() -> None:
    # GIVEN dashboard results the caller computed on a local lake (the library never runs the local runtime)
    results = [
        report.DashboardResult(
            "price_realisation_by_condition",
            ["condition", "avg_realisation", "weighted_realisation"],
            [("new", 0.9, 0.95)],
        )
    ]
    # WHEN the page is built with them THEN they are charted under the local lake's source line
    page = _page(dashboards=results)
    assert html.escape(report.LOCAL_DASHBOARDS_SOURCE) in page
    assert 'data-title="Price realisation by condition (sale / listed price)"' in page


def test_a_local_lake_without_parquet_yet_says_there_is_nothing_to_chart() -> None:
    page = _page(dashboards=[])
    assert html.escape(report.LOCAL_DASHBOARDS_SOURCE) in page
    assert "Nothing to chart: no dashboard rows." in page


def test_without_dashboards_or_athena_the_page_says_why_there_are_none() -> None:
    page = _page()
    assert "not run (no local lake given, and no Athena workgroup in the outputs)" in page
    assert "DuckDB" not in page
