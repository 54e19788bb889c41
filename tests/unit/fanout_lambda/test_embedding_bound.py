"""One bound for embedding values: float32's finite range, applied alike by the fan-out and the transform."""

from __future__ import annotations

import math
import struct
from typing import Any

import pyarrow as pa
import pytest

import glue_schemas
import pipeline_config
from fanout_lambda.errors import InvalidSaleEvent
from fanout_lambda.validation import SaleValidator
from tests.support import load_event
from transform_lambda.records import RecordRejected, SaleNormaliser

LIMIT = pipeline_config.EMBEDDING_VALUE_LIMIT
DIMENSION = 1024
FANOUT = SaleValidator(DIMENSION)
TRANSFORM = SaleNormaliser(glue_schemas.sales_history(), DIMENSION, pipeline_config.load()["tenant_id_pattern"])

#: The edges: the bound itself, the next double beyond it (Parquet would still store the bound), the first
#: value that rounds to float32 infinity, and 1e39 (stored as infinity); each in both signs, in any position.
VALUES = [
    (LIMIT, True),
    (-LIMIT, True),
    (math.nextafter(LIMIT, math.inf), False),
    (math.nextafter(-LIMIT, -math.inf), False),
    (3.4028235677973366e38, False),
    (1e39, False),
    (-1e39, False),
    (float(2**127), True),
]


def _embedding(value: float, position: int) -> list[float]:
    embedding = [0.25] * DIMENSION
    embedding[position] = value
    return embedding


def _fanout_accepts(embedding: list[Any]) -> bool:
    event = load_event("product_sold")
    event["detail"]["embedding"] = embedding
    try:
        FANOUT.validate(event)
    except InvalidSaleEvent as exc:
        assert exc.field.startswith("detail.embedding")
        return False
    return True


def _transform_accepts(embedding: list[Any]) -> bool:
    record = {**load_event("product_sold")["detail"], "eventId": "e-1", "eventTime": "2025-12-30T10:15:00Z"}
    record["saleId"] = "s-1"
    record["embedding"] = embedding
    try:
        row, _ = TRANSFORM.normalise(record)
    except RecordRejected as exc:
        assert exc.field == "embedding"
        assert "float32" in exc.reason
        return False
    assert row["embedding"] == embedding
    return True


def test_the_bound_is_float32s_largest_finite_value() -> None:
    assert struct.unpack("<f", struct.pack("<f", LIMIT))[0] == LIMIT
    assert math.isfinite(pa.scalar(LIMIT, pa.float32()).as_py())
    with pytest.raises(OverflowError):
        struct.pack("<f", 3.4028235677973366e38)


@pytest.mark.parametrize(("value", "accepted"), VALUES, ids=repr)
@pytest.mark.parametrize("position", [0, 517, DIMENSION - 1])
def test_fanout_and_transform_agree_on_the_bound(value: float, accepted: bool, position: int) -> None:
    embedding = _embedding(value, position)
    assert _fanout_accepts(embedding) is accepted
    assert _transform_accepts(embedding) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"), [(10**39, False), (10**400, False), (2**127, True)], ids=["1e39", "1e400", "2**127"]
)
def test_integer_items_are_bounded_too(value: int, accepted: bool) -> None:
    embedding: list[Any] = _embedding(0.5, 0)
    embedding[3] = value
    assert _transform_accepts(embedding) is accepted
    assert _fanout_accepts(embedding) is accepted
