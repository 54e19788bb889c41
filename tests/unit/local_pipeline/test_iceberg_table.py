"""The local Iceberg lake: the Glue contract as an Iceberg schema, upsert by sale_id, the staged folder."""

from __future__ import annotations

import base64
import dataclasses
import shutil
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from pyiceberg.table import StaticTable
from pyiceberg.transforms import IdentityTransform

import glue_schemas
from local_pipeline.config import StreamConfig
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock
from local_pipeline.iceberg_table import LakeTable, open_table
from local_pipeline.parquet import arrow_schema
from tests.unit.local_pipeline.test_firehose import T0, MemoryS3

TABLE = glue_schemas.sales_history()
CONFIG = StreamConfig.from_declarations("stream-under-test")


def _rows(*sales: tuple[str, float], tenant: str = "t1") -> pa.Table:
    """Rows of the Iceberg table's columns, one per ``(sale_id, sale_price)``."""
    columns = glue_schemas.iceberg_columns()
    schema = arrow_schema({"columns": columns})
    values: dict[str, list[Any]] = {}
    for column in columns:
        name = column["name"]
        values[name] = [
            {"sale_id": sale, "sale_price": price, "tenant_id": tenant, "year": 2025, "month": 12}.get(name)
            for sale, price in sales
        ]
    values["embedding"] = [[0.25] * 4 for _ in sales]
    return pa.Table.from_pydict(values, schema=schema)


def test_schema_is_the_glue_columns_then_the_partition_keys_partitioned_by_identity(tmp_path: Path) -> None:
    lake = LakeTable(tmp_path / "staged", tmp_path / "out", "sales_history/", TABLE)
    schema = lake.table.schema()
    assert [f.name for f in schema.fields] == [c["name"] for c in TABLE["columns"] + TABLE["partition_keys"]]
    assert [schema.find_field(i).name for i in schema.identifier_field_ids] == ["sale_id"]
    spec = lake.table.spec()
    assert [(schema.find_field(f.source_id).name, f.transform) for f in spec.fields] == [
        ("tenant_id", IdentityTransform()),
        ("year", IdentityTransform()),
        ("month", IdentityTransform()),
    ]
    assert lake.table.format_version == 2


def test_upsert_replaces_a_sale_by_its_id_and_keeps_the_last_copy_of_a_buffer(tmp_path: Path) -> None:
    # GIVEN a table holding sales a and b
    lake = LakeTable(tmp_path / "staged", tmp_path / "out", "sales_history/", TABLE)
    lake.upsert(_rows(("a", 1.0), ("b", 1.0)))
    # WHEN a later buffer holds b again (twice) and a new sale c
    lake.upsert(_rows(("b", 2.0), ("c", 2.0), ("b", 3.0)))
    # THEN each sale is there once, b as its last copy; two commits, one metadata file each
    scanned = lake.scan()
    assert sorted(zip(scanned["sale_id"].to_pylist(), scanned["sale_price"].to_pylist(), strict=True)) == [
        ("a", 1.0),
        ("b", 3.0),
        ("c", 2.0),
    ]
    assert lake.commits == 2


def test_the_staged_table_reads_from_its_final_folder_once_moved_in(tmp_path: Path) -> None:
    # GIVEN a table written while the run's folder was staged
    staged, out = tmp_path / "staged", tmp_path / "out"
    lake = LakeTable(staged, out, "sales_history/", TABLE)
    lake.upsert(_rows(("a", 1.0), ("b", 1.0), tenant="t2"))
    assert not out.exists()  # nothing written outside the staging folder
    # WHEN the staging folder becomes the final one
    shutil.move(staged, out)
    # THEN the metadata file alone opens the table (paths are the final ones), as does the catalog
    static = StaticTable.from_metadata(lake.metadata_location)
    assert sorted(static.scan().to_arrow()["sale_id"].to_pylist()) == ["a", "b"]
    assert open_table(out).metadata_location == lake.metadata_location
    files = static.inspect.files()
    assert all(path.startswith(out.as_uri()) for path in files["file_path"].to_pylist())


def test_the_stream_upserts_a_redelivered_record_instead_of_adding_a_row(tmp_path: Path) -> None:
    # GIVEN a stream delivering to an Iceberg table, its transform answering as the iceberg transform does
    lake = LakeTable(tmp_path / "staged", tmp_path / "out", "sales_history/", TABLE)
    s3 = MemoryS3()
    clock = SimulatedClock(T0)

    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "records": [
                {"recordId": r["recordId"], "result": "Ok", "data": r["data"], "metadata": {"otfMetadata": {}}}
                for r in event["records"]
            ]
        }

    config = dataclasses.replace(CONFIG, stream_name="s")
    stream = LocalDeliveryStream(config, transform=transform, s3=s3, bucket="lake", clock=clock, iceberg=lake)

    def put(sale: str, price: float, bad: bool = False) -> None:
        row = _rows((sale, price)).to_pylist()[0]
        row["sold_date"] = "2025-12-30"
        if bad:
            row["days_to_sell"] = "not a number"
        stream.put_record_batch(DeliveryStreamName="s", Records=[{"Data": orjson.dumps(row)}])

    # WHEN a sale is delivered, its buffer flushed, then delivered again (at-least-once) with a bad neighbour
    put("a", 1.0)
    stream.advance_to(T0 + 3_600_000)
    put("a", 2.0)
    put("z", 9.0, bad=True)
    stream.close()
    # THEN the table holds it once (the later copy), no S3 object in the lake prefix, the bad record in the
    # error prefix; two commits
    scanned = lake.scan()
    assert list(zip(scanned["sale_id"].to_pylist(), scanned["sale_price"].to_pylist(), strict=True)) == [("a", 2.0)]
    assert not s3.under("sales_history/")
    (failed,) = s3.error_lines("iceberg-failed")
    assert orjson.loads(base64.b64decode(failed["rawData"]))["sale_id"] == "z"
    assert stream.stats.objects_written == 2
    assert stream.stats.rows_delivered == 2
    assert stream.stats.partitions == {"tenant_id=t1/year=2025/month=12"}
