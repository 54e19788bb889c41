from __future__ import annotations

import pytest

import pipeline_config
from local_pipeline.eventbridge import UnsupportedPatternError, matches
from tests.support import load_event

PATTERN = pipeline_config.load()["event_pattern"]


def test_the_deployed_pattern_matches_a_sale_event() -> None:
    assert matches(PATTERN, load_event("product_sold"))


def test_an_event_from_another_source_is_not_delivered() -> None:
    assert not matches(PATTERN, load_event("other_source"))


def test_another_detail_type_is_not_delivered() -> None:
    event = load_event("product_sold")
    event["detail-type"] = "carousel.product.listed"
    assert not matches(PATTERN, event)


def test_a_missing_field_does_not_match() -> None:
    event = load_event("product_sold")
    del event["source"]
    assert not matches(PATTERN, event)


def test_values_match_by_json_type_not_by_text() -> None:
    assert matches({"detail": {"n": [1]}}, {"detail": {"n": 1.0}})
    assert not matches({"detail": {"n": ["1"]}}, {"detail": {"n": 1}})
    assert not matches({"detail": {"flag": [1]}}, {"detail": {"flag": True}})


def test_nested_objects_and_array_fields() -> None:
    pattern = {"detail": {"tags": ["sale"]}}
    assert matches(pattern, {"detail": {"tags": ["new", "sale"]}})
    assert not matches(pattern, {"detail": {"tags": ["new"]}})


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ({"prefix": "carousel."}, "carousel.products", True),
        ({"prefix": "carousel."}, "other", False),
        ({"suffix": ".sold"}, "carousel.product.sold", True),
        ({"anything-but": ["a", "b"]}, "c", True),
        ({"anything-but": "a"}, "a", False),
        ({"exists": True}, "x", True),
    ],
)
def test_content_filters(rule: dict[str, object], value: str, expected: bool) -> None:
    assert matches({"source": [rule]}, {"source": value}) is expected


def test_exists_false_matches_only_an_absent_field() -> None:
    assert matches({"detail": {"vendorId": [{"exists": False}]}}, {"detail": {}})
    assert not matches({"detail": {"vendorId": [{"exists": False}]}}, {"detail": {"vendorId": "V"}})


def test_an_unsupported_filter_raises_rather_than_matching() -> None:
    with pytest.raises(UnsupportedPatternError):
        matches({"source": [{"wildcard": "car*"}]}, {"source": "carousel"})
