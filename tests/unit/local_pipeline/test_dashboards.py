from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlglot

import glue_schemas
import pipeline_config
from local_pipeline.dashboards import QUERIES_DIR, load_queries, render, run_dashboards, translate
from local_pipeline.parquet import ParquetConverter
from tests.unit.local_pipeline.test_parquet import row

TABLE = glue_schemas.sales_history()
TABLE_PREFIX = pipeline_config.load()["lake"]["table_prefix"]


def write_object(lake: Path, tenant: str, year: int, month: int, name: str, rows: list[dict[str, Any]]) -> None:
    folder = lake / TABLE_PREFIX / f"tenant_id={tenant}" / f"year={year}" / f"month={month:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    body = ParquetConverter(TABLE).convert([orjson.dumps(r) + b"\n" for r in rows]).parquet
    assert body is not None
    # Firehose appends .parquet to the objects of a stream that converts to Parquet (the test names carry none).
    (folder / f"{name}.parquet").write_bytes(body)


def run(lake: Path) -> dict[str, list[dict[str, Any]]]:
    results = run_dashboards(
        lake, table_name=TABLE["table"], table_prefix=TABLE_PREFIX, partition_keys=TABLE["partition_keys"]
    )
    return {r.name: [dict(zip(r.columns, values, strict=True)) for values in r.rows] for r in results}


@pytest.mark.parametrize("path", sorted(QUERIES_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_every_query_is_athena_sql_that_translates_to_duckdb(path: Path) -> None:
    sql = path.read_text()
    sqlglot.parse_one(sql, read="athena")
    assert translate(sql)


def test_the_deduplicated_view_runs_first() -> None:
    names = [name for name, _ in load_queries()]
    assert names[0] == "sales_history_dedup"
    assert {
        "sales_revenue_by_tenant_brand_category_month",
        "days_to_sell_by_category_season",
        "price_realisation_by_condition",
    } <= set(names)


def test_dashboards_read_through_the_deduplicated_view(tmp_path: Path) -> None:
    # GIVEN the same event delivered twice (in two objects), the same sale re-published under a new event id
    # after a failed first attempt, and one other sale
    write_object(tmp_path, "t1", 2025, 12, "a", [row(event_id="e1", sale_price=80.0, listed_price=100.0)])
    write_object(tmp_path, "t1", 2025, 12, "b", [row(event_id="e1", sale_price=80.0, listed_price=100.0)])
    republished = row(event_id="e1-again", event_time="2026-01-15 09:05:00.000", sale_price=80.0)
    write_object(tmp_path, "t1", 2025, 12, "d", [republished])
    write_object(
        tmp_path,
        "t2",
        2026,
        1,
        "c",
        [row(event_id="e2", sale_id="s2", sale_price=50.0, listed_price=100.0, sold_date="2026-01-03", season="Q1")],
    )
    # WHEN the dashboards run
    results = run(tmp_path)
    # THEN each sale counts once, in its own tenant/year/month
    revenue = results["sales_revenue_by_tenant_brand_category_month"]
    assert [(r["tenant_id"], r["year"], r["month"], r["sales"], r["revenue"]) for r in revenue] == [
        ("t1", 2025, 12, 1, 80.0),
        ("t2", 2026, 1, 1, 50.0),
    ]
    [realisation] = results["price_realisation_by_condition"]
    assert realisation["sales"] == 2
    assert realisation["avg_realisation"] == pytest.approx(0.65)
    seasons = {(r["season"], r["sales"]) for r in results["days_to_sell_by_category_season"]}
    assert seasons == {("Q4", 1), ("Q1", 1)}


def test_render_shows_the_row_count_and_the_first_rows(tmp_path: Path) -> None:
    write_object(tmp_path, "t1", 2025, 12, "a", [row(event_id=f"e{i}") for i in range(3)])
    results = run_dashboards(
        tmp_path, table_name=TABLE["table"], table_prefix=TABLE_PREFIX, partition_keys=TABLE["partition_keys"]
    )
    text = render(results[0], limit=1)
    assert text.splitlines()[0].startswith(f"-- {results[0].name} (")
