"""The sale event JSON Schema and the errors it produces."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pipeline_config
from fanout_lambda.errors import ConfigurationError, InvalidSaleEvent
from fanout_lambda.settings import (
    DYNAMODB_EMBEDDING_ENCODING,
    SOLD_DATE_YEARS,
    TENANT_IDS,
    LakeScope,
    dynamodb_embedding_encoding,
)
from fanout_lambda.validation import SaleValidator, is_calendar_date, validator
from tests.support import load_event


def _with(**detail: object) -> dict[str, object]:
    event = load_event("product_sold")
    event["detail"].update(detail)
    return event


def test_sample_event_is_valid() -> None:
    sale = validator(1024).validate(load_event("product_sold"))
    assert (sale.tenant_id, sale.product_id, sale.sold_date) == ("carousel-labs", "PROD-LV-12345", "2025-12-30")


@pytest.mark.parametrize(
    ("detail", "field", "reason"),
    [
        ({"listedPrice": -0.01}, "detail.listedPrice", "must be bigger than or equal to 0"),
        ({"salePrice": "450"}, "detail.salePrice", "must be number"),
        ({"soldDate": "2025-02-30"}, "detail.soldDate", "must be calendar-date"),
        ({"soldDate": "30/12/2025"}, "detail.soldDate", "must be calendar-date"),
        ({"daysToSell": 1.5}, "detail.daysToSell", "must be integer"),
        ({"productId": "PROD#1"}, "detail.productId", "must match pattern"),
        ({"embedding": [0.1] * 1025}, "detail.embedding", "must contain less than or equal to 1024 items"),
        ({"embedding": ["x"] * 1024}, "detail.embedding[0]", "must be number"),
        ({"category": "   "}, "detail.category", "must match pattern"),
    ],
)
def test_invalid_detail_names_field_and_reason(detail: dict[str, object], field: str, reason: str) -> None:
    with pytest.raises(InvalidSaleEvent) as caught:
        validator(1024).validate(_with(**detail))
    assert caught.value.field == field
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "tenant", ["a/b", "../x", "a..b", "a#b", "a=b", "a b", "a\tb", "a\nb", "tenant\x00", "", ".hidden", "x" * 33]
)
def test_unsafe_tenant_ids_are_rejected(tenant: str) -> None:
    with pytest.raises(InvalidSaleEvent, match=r"detail\.tenantId"):
        validator(1024).validate(_with(tenantId=tenant))


@given(st.text(max_size=40))
def test_any_accepted_tenant_id_is_safe_as_a_prefix_and_a_key_part(tenant: str) -> None:
    try:
        validator(1024).validate(_with(tenantId=tenant))
    except InvalidSaleEvent:
        return
    assert tenant and len(tenant) <= 32
    assert not any(bad in tenant for bad in ("/", "#", "=", ".."))
    assert tenant.isascii() and tenant.isprintable() and not any(c.isspace() for c in tenant)


def test_event_of_another_type_is_rejected() -> None:
    event = load_event("product_sold")
    event["detail-type"] = "carousel.product.listed"
    with pytest.raises(InvalidSaleEvent, match="detail-type"):
        validator(1024).validate(event)


def test_configured_dimension_is_enforced() -> None:
    with pytest.raises(InvalidSaleEvent, match="at least 8 items"):
        SaleValidator(embedding_dimension=8).validate(_with(embedding=[0.1] * 4))
    assert SaleValidator(embedding_dimension=4).validate(_with(embedding=[0.1] * 4))


def test_calendar_date_format() -> None:
    assert is_calendar_date("2024-02-29")
    assert not is_calendar_date("2025-02-29")
    assert not is_calendar_date("2025-1-01")


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"salePrice": float("nan")}, "detail.salePrice"),
        ({"listedPrice": float("nan")}, "detail.listedPrice"),
        ({"embedding": [float("nan")] + [0.1] * 1023}, "detail.embedding"),
    ],
)
def test_nan_is_rejected_although_json_schema_bounds_let_it_through(detail: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSaleEvent) as caught:
        validator(1024).validate(_with(**detail))
    assert caught.value.field == field


@pytest.mark.parametrize("time", ["2025-12-30T23:59:60Z", "2025-12-30", "yesterday"])
def test_event_time_must_be_a_timestamp_the_transform_can_parse(time: str) -> None:
    event = load_event("product_sold")
    event["time"] = time
    with pytest.raises(InvalidSaleEvent, match=r"^time: "):
        validator(1024).validate(event)


@pytest.mark.parametrize("event_id", ["", "\U0001f45c" * 10, "a b", "x" * 65])
def test_event_id_is_a_short_ascii_token(event_id: str) -> None:
    event = load_event("product_sold")
    event["id"] = event_id
    with pytest.raises(InvalidSaleEvent, match=r"^id: "):
        validator(1024).validate(event)


# --- Accepted means visible: a sale Athena's partition projection would hide is refused with what to change.


def test_sold_date_years_are_declared_once_in_pipeline_json() -> None:
    first, last = pipeline_config.sold_date_years()
    assert (first, last) == (
        pipeline_config.load()["sold_date_years"]["first"],
        pipeline_config.load()["sold_date_years"]["last"],
    )
    assert SaleValidator(1024).scope == LakeScope(first_year=first, last_year=last, tenant_ids=None)


@pytest.mark.parametrize(("year", "accepted"), [(2019, False), (2020, True), (2040, True), (2041, False)])
def test_a_sale_outside_the_projected_years_is_refused_naming_the_range(year: int, accepted: bool) -> None:
    event = _with(soldDate=f"{year}-06-15")
    scope = LakeScope(first_year=2020, last_year=2040)
    if accepted:
        assert validator(1024, scope).validate(event).sold_date == f"{year}-06-15"
        return
    with pytest.raises(InvalidSaleEvent) as caught:
        validator(1024, scope).validate(event)
    assert caught.value.field == "detail.soldDate"
    assert f"year {year} is outside" in caught.value.reason
    assert "2020-2040" in caught.value.reason
    assert "sold_date_years" in caught.value.reason and "replay" in caught.value.reason


def test_a_tenant_missing_from_the_enum_projection_is_refused_with_the_onboarding_steps() -> None:
    scope = LakeScope(first_year=2020, last_year=2040, tenant_ids=frozenset({"resale-co"}))
    with pytest.raises(InvalidSaleEvent) as caught:
        validator(1024, scope).validate(load_event("product_sold"))
    assert caught.value.field == "detail.tenantId"
    assert caught.value.value == "carousel-labs"
    assert "'carousel-labs' is not in Terraform's tenant_ids" in caught.value.reason
    assert "terraform apply" in caught.value.reason
    assert "sales-pipeline dlq replay --rejected" in caught.value.reason
    listed = LakeScope(first_year=2020, last_year=2040, tenant_ids=frozenset({"resale-co", "carousel-labs"}))
    assert validator(1024, listed).validate(load_event("product_sold")).tenant_id == "carousel-labs"


def test_scope_is_read_from_the_environment_terraform_sets() -> None:
    scope = LakeScope.from_env({TENANT_IDS: " carousel-labs, resale-co ,", SOLD_DATE_YEARS: "2021,2030"})
    assert scope == LakeScope(first_year=2021, last_year=2030, tenant_ids=frozenset({"carousel-labs", "resale-co"}))
    # unset: every tenant (injected projection) and pipeline.json's years
    assert LakeScope.from_env({}) == LakeScope(*pipeline_config.sold_date_years(), tenant_ids=None)
    assert LakeScope.from_env({TENANT_IDS: ""}).tenant_ids is None


@pytest.mark.parametrize("raw", ["2020", "2040,2020", "a,b", "2020,2030,2040"])
def test_malformed_sold_date_years_name_the_variable(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{SOLD_DATE_YEARS} must be 'first,last' years, got "):
        LakeScope.from_env({SOLD_DATE_YEARS: raw})


def test_embedding_encoding_comes_from_the_environment_else_pipeline_json() -> None:
    assert dynamodb_embedding_encoding({}) == pipeline_config.dynamodb_embedding_encoding() == "float16"
    assert dynamodb_embedding_encoding({DYNAMODB_EMBEDDING_ENCODING: " int8 "}) == "int8"
    assert dynamodb_embedding_encoding({DYNAMODB_EMBEDDING_ENCODING: ""}) == "float16"


@pytest.mark.parametrize("raw", ["FLOAT16", "bfloat16", "int4"])
def test_bad_embedding_encoding_names_the_variable_and_the_value(raw: str) -> None:
    with pytest.raises(ConfigurationError, match=rf"^{DYNAMODB_EMBEDDING_ENCODING} must be one of .* got '{raw}'$"):
        dynamodb_embedding_encoding({DYNAMODB_EMBEDDING_ENCODING: raw})
