"""``sales-pipeline run --table-format iceberg``: the lake as an Iceberg table, upserted on sale_id (issue 20).

One run of the issue's command (2,000 events, SQS redeliveries and fan-out crashes injected), then the table is
opened from its metadata file alone, as any Iceberg reader would, and checked against the generated burst.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyiceberg.table import StaticTable
from pyiceberg.transforms import IdentityTransform

import glue_schemas
from fanout_lambda.sale import sale_id
from local_pipeline.faults import FaultSpec
from local_pipeline.generator import BurstSpec, generate
from local_pipeline.runner import RunOptions, RunSummary, run

pytestmark = pytest.mark.integration

BURST = BurstSpec(events=2000, seed=7, burst_seconds=900)
FAULTS = "sqs-redelivery=0.2,fanout-crash=0.1"


@pytest.fixture(scope="module")
def iceberg_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Path]:
    out = tmp_path_factory.mktemp("iceberg") / "lake"
    options = RunOptions(
        events=BURST.events, seed=BURST.seed, out=out, table_format="iceberg", faults=FaultSpec.parse(FAULTS)
    )
    return run(options, out=io.StringIO()), out


def _static(summary: RunSummary) -> StaticTable:
    assert summary.iceberg_metadata_location is not None
    return StaticTable.from_metadata(summary.iceberg_metadata_location)


def test_the_audit_finds_nothing_lost_and_nothing_twice(iceberg_run: tuple[RunSummary, Path]) -> None:
    summary, _ = iceberg_run
    assert summary.audit is not None
    assert summary.audit.ok, summary.audit.lines()
    assert (summary.audit.lost, summary.audit.duplicated_after_dedup) == (0, 0)
    assert summary.faults_injected["fanout-crash"] > 0
    assert summary.faults_injected["sqs-redelivery"] > 0


def test_the_table_from_its_metadata_file_holds_each_processed_sale_exactly_once(
    iceberg_run: tuple[RunSummary, Path],
) -> None:
    # GIVEN the sales the burst meant to deliver (valid, retried or re-published: one sale_id each)
    summary, out = iceberg_run
    expected = {
        sale_id(g.event["detail"]["tenantId"], g.event["detail"]["productId"], g.event["detail"]["soldDate"])
        for g in generate(BURST)
        if g.kind in {"valid", "retry", "republish"}
    }
    # WHEN the table is opened from its current metadata file alone (no catalog) and scanned
    table = _static(summary)
    assert table.metadata_location.startswith(out.absolute().as_uri())
    rows = table.scan().to_arrow()
    ids = rows["sale_id"].to_pylist()
    # THEN every sale is there once, and nothing else; the audit parked none
    assert len(ids) == len(set(ids))
    assert summary.audit is not None
    assert summary.audit.in_error_prefix == summary.audit.in_dead_letters == 0
    assert set(ids) == expected
    assert rows.num_rows == summary.audit.in_lake


def test_the_table_has_the_glue_schemas_columns_and_is_partitioned_by_tenant(
    iceberg_run: tuple[RunSummary, Path],
) -> None:
    summary, _ = iceberg_run
    table = _static(summary)
    schema = table.schema()
    declared = glue_schemas.sales_history()
    assert [f.name for f in schema.fields] == [c["name"] for c in declared["columns"] + declared["partition_keys"]]
    spec = [(schema.find_field(f.source_id).name, f.transform) for f in table.spec().fields]
    assert spec == [(name, IdentityTransform()) for name in ("tenant_id", "year", "month")]
    # Every data file holds one tenant's (and one month's) rows, the ones its partition tuple names.
    files = table.inspect.files().to_pylist()
    assert files
    tenants = set()
    for entry in files:
        if entry["content"] != 0:  # data files only
            continue
        partition = entry["partition"]
        data = pq.read_table(entry["file_path"].removeprefix("file://"), columns=["tenant_id", "year", "month"])
        assert set(data["tenant_id"].to_pylist()) == {partition["tenant_id"]}
        assert set(zip(data["year"].to_pylist(), data["month"].to_pylist(), strict=True)) == {
            (partition["year"], partition["month"])
        }
        tenants.add(partition["tenant_id"])
    assert len(tenants) > 1


def test_summary_json_names_the_format_and_the_current_metadata_file(iceberg_run: tuple[RunSummary, Path]) -> None:
    summary, out = iceberg_run
    written = json.loads((out / "summary.json").read_text())
    assert written["lake_table_format"] == "iceberg"
    assert written["iceberg_metadata_location"] == summary.iceberg_metadata_location
    newest = max((out / "sales_history" / "metadata").glob("*.metadata.json"), key=lambda p: p.name)
    assert written["iceberg_metadata_location"] == newest.as_uri()
    # One commit per delivered buffer, as Firehose commits once per flush.
    assert written["lake_objects"] == int(newest.name.split("-", 1)[0])


def test_the_dashboards_read_the_table(iceberg_run: tuple[RunSummary, Path]) -> None:
    summary, _ = iceberg_run
    by_name = {result.name: result for result in summary.dashboards}
    revenue = by_name["sales_revenue_by_tenant_brand_category_month"]
    assert summary.audit is not None
    assert sum(row[revenue.columns.index("sales")] for row in revenue.rows) == summary.audit.in_lake


def test_the_default_stays_parquet() -> None:
    assert RunOptions().table_format == "parquet"
