from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import glue_schemas
from local_pipeline.parquet import MALFORMED_DATA, ParquetConverter, arrow_schema

TABLE = glue_schemas.sales_history()


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e1",
        "event_time": "2026-01-15 09:00:00.000",
        "sale_id": "s1",
        "product_id": "P1",
        "category": "handbags",
        "brand": "Chanel",
        "condition": "good",
        "listed_price": 100.0,
        "sale_price": 80.0,
        "sold_date": "2025-12-30",
        "season": "Q4",
        "days_to_sell": 12,
        "vendor_id": "V1",
        "description": "d",
        "image_s3_key": "s3://x/y.jpg",
        "embedding_id": "emb-1",
        "embedding": [0.5, -0.25, 1.0],
    }
    base.update(overrides)
    return base


def encode(obj: dict[str, Any]) -> bytes:
    return orjson.dumps(obj) + b"\n"


def read(body: bytes | None) -> pa.Table:
    assert body is not None
    return pq.read_table(io.BytesIO(body))


def test_the_file_holds_exactly_the_glue_columns_with_their_types() -> None:
    converted = ParquetConverter(TABLE).convert([encode(row())])
    table = read(converted.parquet)
    assert table.column_names == [c["name"] for c in TABLE["columns"]]
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    assert types["listed_price"] == pa.float64()
    assert types["days_to_sell"] == pa.int32()
    assert types["sold_date"] == pa.date32()
    assert types["event_time"] == pa.timestamp("ms")
    assert types["embedding"] == pa.list_(pa.float32())
    assert table.to_pylist()[0]["sold_date"] == date(2025, 12, 30)


def test_keys_match_columns_case_insensitively_and_unknown_keys_are_ignored() -> None:
    record = row()
    record["Brand"] = record.pop("brand")
    record["unexpected"] = {"nested": True}
    table = read(ParquetConverter(TABLE).convert([encode(record)]).parquet)
    assert table.column("brand").to_pylist() == ["Chanel"]
    assert "unexpected" not in table.column_names


def test_a_missing_key_is_a_null() -> None:
    record = row()
    del record["vendor_id"]
    assert read(ParquetConverter(TABLE).convert([encode(record)]).parquet).column("vendor_id").to_pylist() == [None]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("days_to_sell", 12.5),
        ("days_to_sell", "twelve"),
        ("days_to_sell", 2**40),
        ("listed_price", "cheap"),
        ("listed_price", True),
        ("sold_date", "30/12/2025"),
        ("event_time", "yesterday"),
        ("embedding", "not an array"),
        ("embedding", [1.0, 1e39]),
        ("brand", {"name": "x"}),
    ],
)
def test_a_value_that_does_not_fit_fails_only_its_record(column: str, value: Any) -> None:
    good, bad = encode(row(event_id="good")), encode(row(event_id="bad", **{column: value}))
    converted = ParquetConverter(TABLE).convert([good, bad, good])
    assert [(f.index, f.error_code) for f in converted.failures] == [(1, MALFORMED_DATA)]
    assert column in converted.failures[0].message
    assert read(converted.parquet).column("event_id").to_pylist() == ["good", "good"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-15T09:00:00Z", datetime(2026, 1, 15, 9)),
        ("2026-01-15T09:00:00.5Z", datetime(2026, 1, 15, 9, 0, 0, 500000)),
        ("2026-01-15 09:00:00", datetime(2026, 1, 15, 9)),
        ("2026-1-5 09:00:00", datetime(2026, 1, 5, 9)),
        ("2026-01-5 09:00:00.25", datetime(2026, 1, 5, 9, 0, 0, 250000)),
        ("2026-1-15 09:00:00.123456789", datetime(2026, 1, 15, 9, 0, 0, 123000)),  # the column is timestamp(ms)
        (1768467600, datetime(2026, 1, 15, 9)),
        (1768467600000, datetime(2026, 1, 15, 9)),
    ],
)
def test_timestamps_in_the_formats_the_openx_serde_reads(value: Any, expected: datetime) -> None:
    table = read(ParquetConverter(TABLE).convert([encode(row(event_time=value))]).parquet)
    assert table.column("event_time").to_pylist() == [expected]


def test_numbers_are_widened_and_numeric_strings_parsed() -> None:
    table = read(ParquetConverter(TABLE).convert([encode(row(listed_price=100, days_to_sell="7"))]).parquet)
    assert table.column("listed_price").to_pylist() == [100.0]
    assert table.column("days_to_sell").to_pylist() == [7]


@pytest.mark.parametrize("value", ["2026-1-5T09:00:00Z", "2026-13-01 09:00:00", "2026-01-15 9:00:00", "15/01/2026"])
def test_timestamps_outside_those_formats_fail(value: str) -> None:
    converted = ParquetConverter(TABLE).convert([encode(row(event_time=value))])
    assert converted.rows == 0
    assert "event_time" in converted.failures[0].message


@pytest.mark.parametrize(
    "data",
    [
        b'{"event_id": "a"}{"event_id": "b"}',
        b'{"event_id": "a"}\n{"event_id": "b"}\n',
        b'  {"event_id": "a"} \r\n\t{"event_id": "b"}',
        b'{\n  "event_id": "a"\n}\n{\n  "event_id":\n    "b"\n}\n',
    ],
    ids=["concatenated", "newline-separated", "whitespace-between", "multi-line-objects"],
)
def test_a_record_may_hold_several_objects_concatenated_or_spread_over_lines(data: bytes) -> None:
    converted = ParquetConverter(TABLE).convert([data])
    assert converted.failures == []
    assert read(converted.parquet).column("event_id").to_pylist() == ["a", "b"]


@pytest.mark.parametrize(
    "data",
    [b"not json\n", b"[1, 2]\n", b"\n", b'{"event_id": "a"}[1]', b'{"event_id": "a"}{"event_id":', b'{"x": NaN}{}'],
)
def test_records_that_are_not_json_objects_fail(data: bytes) -> None:
    converted = ParquetConverter(TABLE).convert([data])
    assert converted.parquet is None
    assert converted.rows == 0
    assert len(converted.failures) == 1


def test_embedding_is_not_dictionary_encoded_and_row_groups_are_whole_buffers() -> None:
    rows = [encode(row(event_id=f"e{i}", embedding=[i / 10] * 1024)) for i in range(50)]
    body = ParquetConverter(TABLE).convert(rows).parquet
    assert body is not None
    metadata = pq.ParquetFile(io.BytesIO(body)).metadata
    assert metadata.num_row_groups == 1
    names = [metadata.schema.column(i).path for i in range(metadata.num_columns)]
    embedding = metadata.row_group(0).column(names.index("embedding.list.element"))
    assert not any("DICTIONARY" in str(encoding) for encoding in embedding.encodings)
    assert embedding.compression == "SNAPPY"


def test_arrow_schema_rejects_a_type_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="map<string,int>"):
        arrow_schema({"columns": [{"name": "m", "type": "map<string,int>"}]})


@pytest.mark.parametrize(
    "embedding",
    [
        [0.5, -1, 2**70, 3.4e38],
        [1e39],
        [float("nan")],
        [float("inf"), 1.0],
        [1.0, float("nan")],
        [True, 1.0],
        ["1.5", 2.0],
        [None, 1.0],
        [10**400],
        [],
    ],
)
def test_the_embedding_fast_path_accepts_and_refuses_exactly_what_the_per_item_rules_do(embedding: list[Any]) -> None:
    from local_pipeline import parquet

    coerce = parquet._coercer("array<float>")
    try:
        expected: Any = [None if item is None else parquet._float(item) for item in embedding]
    except (TypeError, ValueError, OverflowError) as exc:
        expected = type(exc)
    try:
        got: Any = coerce(embedding)
    except (TypeError, ValueError, OverflowError) as exc:
        got = type(exc)
    if isinstance(expected, list):
        assert [float(x) if x is not None else None for x in got] == expected
    else:
        assert got is expected
