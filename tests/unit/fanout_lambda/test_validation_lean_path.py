"""The lean validation path (embedding items checked with whole-list builtins) says what the full schema says."""

from __future__ import annotations

import fastjsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fanout_lambda.errors import InvalidSaleEvent
from fanout_lambda.validation import SaleValidator, validator
from tests.support import load_event

FLOAT32_MAX = 3.4028234663852886e38


def _with_item(index: int, value: object) -> dict[str, object]:
    event = load_event("product_sold")
    event["detail"]["embedding"][index] = value
    return event


def _full_schema_error(sale_validator: SaleValidator, event: dict[str, object]) -> str | None:
    try:
        sale_validator._validate(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        return str(sale_validator._explain(event, exc))
    return None


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        (True, "detail.embedding[7]", "must be number"),
        ("0.5", "detail.embedding[7]", "must be number"),
        (None, "detail.embedding[7]", "must be number"),
        (1e39, "detail.embedding[7]", "must be smaller than or equal to"),
        (-1e39, "detail.embedding[7]", "must be bigger than or equal to"),
        (float("inf"), "detail.embedding[7]", "must be smaller than or equal to"),
        (float("nan"), "detail.embedding", "items must be finite numbers"),
    ],
)
def test_an_item_outside_the_rules_gets_the_full_schemas_message(value: object, field: str, reason: str) -> None:
    with pytest.raises(InvalidSaleEvent) as caught:
        validator(1024).validate(_with_item(7, value))
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_integers_and_the_float32_bounds_are_plain_numbers() -> None:
    event = load_event("product_sold")
    event["detail"]["embedding"][:3] = [0, -FLOAT32_MAX, FLOAT32_MAX]
    assert validator(1024).validate(event).product_id == "PROD-LV-12345"


@settings(max_examples=60, deadline=None)
@given(
    index=st.integers(0, 1023),
    value=st.one_of(
        st.floats(allow_nan=False),
        st.integers(-(10**40), 10**40),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
    ),
)
def test_the_lean_path_accepts_and_rejects_exactly_what_the_full_schema_does(index: int, value: object) -> None:
    sale_validator = validator(1024)
    event = _with_item(index, value)
    expected = _full_schema_error(sale_validator, event)
    try:
        sale_validator.validate(event)
    except InvalidSaleEvent as exc:
        assert str(exc) == expected
    else:
        assert expected is None
