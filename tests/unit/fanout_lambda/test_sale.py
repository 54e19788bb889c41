"""Pure sale logic: ids, shards, item layout and its DynamoDB cost."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline_config
from fanout_lambda.sale import (
    EMBEDDING_SHARDS,
    Sale,
    embedding_shard,
    firehose_record,
    item_size_bytes,
    sale_id,
    sales_item,
    write_units,
)
from fanout_lambda.validation import validator
from local_pipeline.generator import BurstSpec, generate
from pipeline_config import embedding_codec, sale_record
from tests.support import load_event

NOW = 1_767_000_000


def _sale(**detail: object) -> Sale:
    event = load_event("product_sold")
    event["detail"].update(detail)
    return validator(1024).validate(event)


def test_sale_id_is_deterministic_and_distinguishes_sales() -> None:
    assert sale_id("t", "p", "2025-12-30") == sale_id("t", "p", "2025-12-30")
    assert sale_id("t", "p", "2025-12-30") != sale_id("t", "p", "2025-12-31")
    assert sale_id("t", "p", "2025-12-30") != sale_id("u", "p", "2025-12-30")
    assert len(sale_id("t", "p", "2025-12-30")) == 20


@given(st.text(min_size=1, max_size=32), st.text(min_size=1, max_size=48))
def test_shard_is_stable_and_in_range(tenant: str, product: str) -> None:
    shard = embedding_shard(tenant, product)
    assert shard == embedding_shard(tenant, product)
    assert 0 <= shard < EMBEDDING_SHARDS


def test_ids_and_shards_are_pinned_across_processes_and_releases() -> None:
    # Fixed values: a salted hash (Python's hash()) or a changed algorithm would move every item.
    assert sale_id("carousel-labs", "PROD-LV-12345", "2025-12-30") == "7b64f7fabb79b9e35c86"
    assert [embedding_shard("carousel-labs", f"PROD-{n}") for n in range(8)] == [0, 3, 0, 0, 0, 3, 1, 3]


def test_shards_spread_products_evenly() -> None:
    counts = [0] * EMBEDDING_SHARDS
    for n in range(5000):
        counts[embedding_shard("carousel-labs", f"PROD-{n}")] += 1
    assert min(counts) > 900  # 1000 expected per shard


#: Write units of the sales item and of its GSI2 copy for the generator's sales, by encoding. The claim and the
#: completion of the idempotency record add 1 each: float32 12, float16 (the default) 8, int8 6 per new sale.
TYPICAL_UNITS = {"float32": (5, 5), "float16": (3, 3), "int8": (2, 2)}
#: The same at every bound of the schema (below): the item stays within these, and the GSI2 copy too.
WORST_CASE_UNITS = {"float32": (5, 5), "float16": (3, 3), "int8": (2, 2)}
IDEMPOTENCY_UNITS = 2


def _gsi2_copy(item: dict[str, Any]) -> dict[str, Any]:
    """What a GSI2 write stores and is billed for: the table and index keys plus the projected attributes."""
    keep = {"PK", "SK", "GSI2PK", "GSI2SK", *pipeline_config.gsi2_projected_attributes()}
    return {name: value for name, value in item.items() if name in keep}


@pytest.mark.parametrize("encoding", embedding_codec.ENCODINGS)
def test_typical_sale_costs_its_encodings_write_units(encoding: str) -> None:
    item = sales_item(_sale(), NOW, encoding)
    assert (write_units(item), write_units(_gsi2_copy(item))) == TYPICAL_UNITS[encoding]


def test_default_encoding_costs_at_most_eight_write_units_per_new_sale_of_the_generator() -> None:
    # GIVEN the local runtime's sales (their string fields vary in length) and pipeline.json's encoding
    events = generate(BurstSpec(events=300, retry_share=0, republish_share=0, invalid_share=0, unmatched_share=0))
    check = validator(pipeline_config.embedding_dimension())
    units = set()
    for generated in events:
        item = sales_item(check.validate(generated.event), NOW)
        units.add(write_units(item) + write_units(_gsi2_copy(item)) + IDEMPOTENCY_UNITS)
    # THEN every new sale costs 8 write units: item 3 + GSI2 copy 3 + claim 1 + completion 1
    assert pipeline_config.dynamodb_embedding_encoding() == "float16"
    assert units == {8}


def _worst_case_sale() -> Sale:
    # every bounded field at its maximum length, in 4-byte UTF-8 characters wherever the schema allows them
    # (category, brand); the id-like fields are ASCII by pattern; a sale id and shard as long as they get
    wide = "\U0001f45c"
    event = load_event("product_sold")
    event["id"] = "i" * 64
    event["detail"].update(
        tenantId="T" * 32,
        productId="P" * 48,
        category=wide * 32,
        brand=wide * 48,
        condition="c" * 24,
        listedPrice=999_999_999.99,
        salePrice=999_999_999.99,
        daysToSell=36_500,
        vendorId="V" * 48,
        embeddingId="E" * 64,
        # int8's scale is longest for a largest magnitude whose repr has 17 digits
        embedding=[random.Random(1).uniform(-1, 1) for _ in range(1024)],
    )
    return validator(1024).validate(event)  # the schema's bounds accept it


@pytest.mark.parametrize("encoding", embedding_codec.ENCODINGS)
def test_worst_case_sale_item_and_gsi2_copy_stay_within_their_write_units(encoding: str) -> None:
    item = sales_item(_worst_case_sale(), NOW, encoding)
    item_units, gsi2_units = WORST_CASE_UNITS[encoding]

    # a 32-byte margin under the bound absorbs DynamoDB's "approximately" in its number sizing
    assert item_size_bytes(item) <= item_units * 1024 - 32
    assert write_units(item) == item_units
    assert item_size_bytes(_gsi2_copy(item)) <= gsi2_units * 1024 - 32
    assert write_units(_gsi2_copy(item)) == gsi2_units


def test_float16_fallback_item_costs_what_a_float32_item_does() -> None:
    # an embedding beyond float16's range is written as float32 (and says so): the worst case of float16
    item = sales_item(_sale(embedding=[70_000.0] * 1024), NOW, "float16")
    assert item["embeddingEncoding"] == {"S": "float32"}
    assert (write_units(item), write_units(_gsi2_copy(item))) == TYPICAL_UNITS["float32"]


def test_item_size_counts_names_and_values_like_dynamodb() -> None:
    # 2 (name) + 3 (value) ; 1 + (2 digits -> 1 byte + 1) ; 1 + 4 bytes
    assert item_size_bytes({"PK": {"S": "abc"}, "n": {"N": "12"}, "b": {"B": b"\x00\x01\x02\x03"}}) == 5 + 3 + 5
    # digits pair up on each side of the decimal point: "1.5" is 1 + 1 + 1, "120.25" is 2 + 1 + 1
    assert item_size_bytes({"n": {"N": "1.5"}}) == 1 + 3
    assert item_size_bytes({"n": {"N": "-120.25"}}) == 1 + 4
    assert item_size_bytes({"n": {"N": "0.10"}}) == 1 + 2


@pytest.mark.parametrize("encoding", embedding_codec.ENCODINGS)
def test_item_embedding_decodes_from_what_the_item_says(encoding: str) -> None:
    values = [0.5, -0.25, 1.0, 0.0]
    item = sales_item(_sale(embedding=values * 256), NOW, encoding)
    assert item["embeddingEncoding"] == {"S": encoding}
    # exact in float32 and float16; int8 within half a step of max|x| / 127
    assert embedding_codec.decode(item) == pytest.approx(values * 256, abs=0 if encoding != "int8" else 1 / 254)


def test_shard_count_is_pipeline_jsons() -> None:
    assert pipeline_config.dynamodb_embedding_shards() == EMBEDDING_SHARDS == 5


def test_firehose_record_is_compact_with_envelope_fields_and_float32_embedding() -> None:
    sale = _sale(embedding=[1] * 1024)
    record = firehose_record(sale)
    assert record.startswith(sale_record.MAGIC)
    decoded = sale_record.decode(record)
    assert decoded["eventId"] == "6a7e8feb-b491-4cf7-a9f1-bf3703467718"
    assert decoded["saleId"] == sale.sale_id
    assert decoded["embedding"] == [1.0] * 1024 and all(type(x) is float for x in decoded["embedding"])


def test_a_generated_sale_fits_one_5_kb_billing_step() -> None:
    # Firehose bills each record in 5 KB steps and its byte quota counts these bytes: 4 KB of float32
    # embedding plus the header; the sample event carries the generator's field sizes.
    assert len(firehose_record(_sale())) <= 5120


def test_firehose_record_forwards_only_the_schema_fields() -> None:
    record = sale_record.decode(firehose_record(_sale(internalNotes="x" * 1000)))
    assert "internalNotes" not in record
    assert record["description"] == "Louis Vuitton Speedy 30"
