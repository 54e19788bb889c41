"""The transform's pure normaliser, driven by the Glue schema."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import glue_schemas
import pipeline_config
from transform_lambda.records import RecordRejected, SaleNormaliser, camel_case, season

NORMALISER = SaleNormaliser(glue_schemas.sales_history(), 4, pipeline_config.load()["tenant_id_pattern"])


def _record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "eventId": "e-1",
        "eventTime": "2025-12-30T10:15:00+01:00",
        "saleId": "abc",
        "productId": " P-1 ",
        "tenantId": "carousel-labs",
        "category": "  Handbags ",
        "brand": " Louis Vuitton ",
        "condition": "Like New",
        "listedPrice": 500,
        "salePrice": 449.995,
        "soldDate": "2025-12-30",
        "daysToSell": 12.0,
        "embedding": [0.5, 1, -0.25, 0],
        "unknownField": "ignored",
    }
    record.update(overrides)
    return record


def test_normalises_keys_strings_prices_dates_and_embedding() -> None:
    row, keys = NORMALISER.normalise(_record())
    assert row == {
        "event_id": "e-1",
        "event_time": "2025-12-30 09:15:00.000",
        "sale_id": "abc",
        "product_id": "P-1",
        "category": "handbags",
        "brand": "Louis Vuitton",
        "condition": "like_new",
        "listed_price": 500.0,
        "sale_price": 450.0,
        "sold_date": "2025-12-30",
        "season": "Q4",
        "days_to_sell": 12,
        "vendor_id": None,
        "description": None,
        "image_s3_key": None,
        "embedding_id": None,
        "embedding": [0.5, 1.0, -0.25, 0.0],
    }
    assert keys == {"tenant_id": "carousel-labs", "year": "2025", "month": "12"}


def test_snake_case_input_is_accepted_too() -> None:
    record = {
        "event_id": "e",
        "event_time": 1_767_089_700_000,
        "sale_id": "s",
        "product_id": "p",
        "tenant_id": "t",
        "category": "c",
        "brand": "b",
        "condition": "good",
        "listed_price": 1,
        "sale_price": 1,
        "sold_date": "2026-01-02T03:04:05Z",
        "days_to_sell": 0,
        "embedding": [0.0] * 4,
    }
    row, keys = NORMALISER.normalise(record)
    assert row["sold_date"] == "2026-01-02"
    assert row["event_time"] == "2025-12-30 10:15:00.000"
    assert keys == {"tenant_id": "t", "year": "2026", "month": "01"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"salePrice": -1}, "salePrice: must not be negative"),
        ({"salePrice": True}, "salePrice: must be a number"),
        ({"soldDate": "2025-02-30"}, "soldDate: is not a calendar date"),
        ({"soldDate": "yesterday"}, "soldDate: must be an ISO date"),
        ({"brand": "   "}, "brand: must not be blank"),
        ({"brand": None}, "brand: is required"),
        ({"daysToSell": 1.5}, "daysToSell: must be an integer"),
        ({"embedding": [0.1] * 3}, "embedding: must have 4 items, has 3"),
        ({"embedding": [0.1, None, 0.1, 0.1]}, "embedding: items must be numbers"),
        ({"eventTime": "noon"}, "eventTime: must be an ISO 8601 timestamp"),
        ({"tenantId": "a/b"}, "tenantId: must match"),
        ({"tenantId": 7}, "tenantId: must match"),
    ],
)
def test_invalid_values_name_the_field(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(RecordRejected, match=message.replace("(", r"\(")):
        NORMALISER.normalise(_record(**overrides))


def test_missing_tenant_and_non_object_are_rejected() -> None:
    record = _record()
    del record["tenantId"]
    with pytest.raises(RecordRejected, match="tenantId: is required"):
        NORMALISER.normalise(record)
    with pytest.raises(RecordRejected, match="record: must be a JSON object"):
        NORMALISER.normalise([1, 2])


@given(st.dates(min_value=dt.date(1970, 1, 1), max_value=dt.date(2999, 12, 31)))
def test_season_and_partition_month_follow_the_sale_date(day: dt.date) -> None:
    row, keys = NORMALISER.normalise(_record(soldDate=day.isoformat()))
    assert row["season"] == season(day) == f"Q{(day.month + 2) // 3}"
    assert keys["year"] == f"{day.year:04d}"
    assert keys["month"] == f"{day.month:02d}" and len(keys["month"]) == 2


def test_camel_case_matches_the_fanout_field_names() -> None:
    assert [camel_case(n) for n in ("image_s3_key", "days_to_sell", "event_id", "season")] == [
        "imageS3Key",
        "daysToSell",
        "eventId",
        "season",
    ]


def test_schema_has_no_data_column_repeating_a_partition_key_and_lowercase_names() -> None:
    schema = glue_schemas.sales_history()
    data = {c["name"] for c in schema["columns"]}
    partitions = {c["name"] for c in schema["partition_keys"]}
    assert not data & partitions
    assert all(name == name.lower() and name.isidentifier() for name in data | partitions)
    assert {"event_id", "season", "event_time", "embedding"} <= data
    assert [p["name"] for p in schema["partition_keys"]] == ["tenant_id", "year", "month"]


@pytest.mark.parametrize("value", ["2025-12-30 anything", "\uff12\uff10\uff12\uff15-12-30", "2025-12-30T25:00:00"])
def test_sale_date_must_be_a_whole_iso_date_or_timestamp(value: str) -> None:
    with pytest.raises(RecordRejected, match="soldDate: must be an ISO date"):
        NORMALISER.normalise(_record(soldDate=value))


@given(st.datetimes(min_value=dt.datetime(1000, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)))
def test_eventbridge_time_takes_the_fast_path_to_the_same_lake_timestamp(moment: dt.datetime) -> None:
    # EventBridge writes `time` as yyyy-MM-ddTHH:mm:ssZ; the transform slices it instead of converting, and the
    # result must be what the general path gives for the same instant written with an explicit offset.
    moment = moment.replace(microsecond=0)
    fast = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    general = moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    row, _ = NORMALISER.normalise(_record(eventTime=fast))
    assert row["event_time"] == NORMALISER.normalise(_record(eventTime=general))[0]["event_time"]
    assert row["event_time"] == moment.strftime("%Y-%m-%d %H:%M:%S.000")


def test_days_to_sell_beyond_the_int_column_is_rejected_not_left_to_parquet_conversion() -> None:
    # Found by tests/functional/fanout_lambda/test_handler_properties.py: 2**31 passed as Ok, then failed Parquet
    # conversion.
    normaliser = SaleNormaliser(glue_schemas.sales_history(), embedding_dimension=2, tenant_id_pattern=r"^[a-z-]+$")
    record = {
        "eventId": "e1", "eventTime": "2025-12-30T10:15:00Z", "saleId": "s1", "productId": "p1", "tenantId": "t-a",
        "category": "bags", "brand": "B", "condition": "good", "listedPrice": 1, "salePrice": 1,
        "soldDate": "2025-12-30", "daysToSell": 2**31 - 1, "embedding": [0.5, 0.5],
    }  # fmt: skip
    assert normaliser.normalise(record)[0]["days_to_sell"] == 2**31 - 1
    with pytest.raises(RecordRejected, match="daysToSell: must be at most 2147483647"):
        normaliser.normalise({**record, "daysToSell": 2**31})


@pytest.mark.parametrize(
    ("event_time", "expected"),
    [("0027-06-17T07:47:56", "0027-06-17 07:47:56.000"), ("0001-01-01", "0001-01-01 00:00:00.000"),
     ("2025-12-30T10:15:00.1234+01:00", "2025-12-30 09:15:00.123")],
)  # fmt: skip
def test_event_time_has_a_four_digit_year_even_before_year_1000(event_time: str, expected: str) -> None:
    # Found by tests/functional/fanout_lambda/test_handler_properties.py: strftime("%Y") wrote "27-06-17 ...",
    # which Parquet conversion refused (format-conversion-failed) although the transform had answered Ok.
    from transform_lambda.records import _timestamp

    assert _timestamp(event_time) == expected
