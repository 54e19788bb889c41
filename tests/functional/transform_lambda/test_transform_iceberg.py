"""The transform with ``LAKE_TABLE_FORMAT=iceberg``: the answer Firehose's Iceberg destination reads."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import orjson
import pytest

import glue_schemas
from fanout_lambda.sale import firehose_record
from fanout_lambda.validation import validator
from tests.support import FakeLambdaContext, firehose_event, load_event
from transform_lambda import handler

CONTEXT = FakeLambdaContext(function_name="sales-transform-test")


@pytest.fixture
def iceberg_target() -> Iterator[None]:
    previous = handler.lake
    handler.configure(handler.LakeTarget("iceberg", "carousel_sales_test"))
    yield
    handler.configure(previous)


def _record() -> bytes:
    return firehose_record(validator(1024).validate(load_event("product_sold")))


def test_iceberg_row_carries_the_partition_columns_and_otf_metadata_asks_for_an_update(iceberg_target: None) -> None:
    # GIVEN the transform configured for an Iceberg destination
    # WHEN it transforms a fan-out record
    (out,) = handler.lambda_handler(firehose_event([_record()]), CONTEXT)["records"]
    # THEN the row has exactly the Iceberg table's columns, the partition keys typed as the table's columns
    row = orjson.loads(base64.b64decode(out["data"]))
    assert out["result"] == "Ok"
    assert list(row) == [column["name"] for column in glue_schemas.iceberg_columns()]
    assert (row["tenant_id"], row["year"], row["month"]) == ("carousel-labs", 2025, 12)
    # AND the metadata routes to the one table with operation update (unique keys: a redelivery replaces its row);
    # partitionKeys would be ignored by an Iceberg destination, so none are sent
    assert out["metadata"] == {
        "otfMetadata": {
            "destinationDatabaseName": "carousel_sales_test",
            "destinationTableName": glue_schemas.sales_history()["table"],
            "operation": "update",
        }
    }


def test_the_default_target_is_parquet_with_partition_keys() -> None:
    (out,) = handler.lambda_handler(firehose_event([_record()]), CONTEXT)["records"]
    assert set(out["metadata"]) == {"partitionKeys"}


def test_iceberg_without_a_database_name_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKE_TABLE_FORMAT", "iceberg")
    monkeypatch.delenv("LAKE_DATABASE_NAME", raising=False)
    with pytest.raises(ValueError, match="LAKE_DATABASE_NAME"):
        handler.LakeTarget.from_environment()
    monkeypatch.setenv("LAKE_TABLE_FORMAT", "orc")
    with pytest.raises(ValueError, match="LAKE_TABLE_FORMAT"):
        handler.LakeTarget.from_environment()
