from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

import pipeline_config
from local_pipeline.prefixes import (
    PrefixEvaluationError,
    evaluate,
    format_java_datetime,
    object_key,
    partition_key_names,
)

HOSE = pipeline_config.load()["firehose"]
MOMENT = datetime(2026, 1, 5, 7, 8, 9, 123000, tzinfo=UTC)


def test_the_deployed_prefix_evaluates_partition_keys_from_the_lambda() -> None:
    keys = {"tenant_id": "carousel-labs", "year": "2025", "month": "03"}
    prefix = evaluate(HOSE["prefix"], timestamp=MOMENT, partition_keys=keys)
    assert prefix == "sales_history/tenant_id=carousel-labs/year=2025/month=03/"


def test_the_deployed_error_prefix_evaluates_type_and_arrival_date() -> None:
    prefix = evaluate(HOSE["error_output_prefix"], timestamp=MOMENT, error_output_type="processing-failed")
    assert prefix == "errors/processing-failed/year=2026/month=01/day=05/"


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("yyyy", "2026"),
        ("yy", "26"),
        ("MM", "01"),
        ("M", "1"),
        ("dd", "05"),
        ("HH", "07"),
        ("mm", "08"),
        ("ss", "09"),
        ("SSS", "123"),
        ("yyyy-MM-dd'T'HH", "2026-01-05T07"),
        ("'literal'", "literal"),
        ("''", "'"),
        ("DDD", "005"),
    ],
)
def test_timestamp_patterns_follow_java_date_time_formatter(pattern: str, expected: str) -> None:
    assert format_java_datetime(MOMENT, pattern) == expected


def test_every_timestamp_expression_evaluates_the_same_instant() -> None:
    assert evaluate("!{timestamp:yyyy}/!{timestamp:MM}/", timestamp=MOMENT) == "2026/01/"


def test_a_missing_partition_key_cannot_be_evaluated() -> None:
    with pytest.raises(PrefixEvaluationError, match="tenant_id"):
        evaluate(HOSE["prefix"], timestamp=MOMENT, partition_keys={"year": "2025", "month": "03"})


def test_error_output_type_is_only_for_the_error_prefix() -> None:
    with pytest.raises(PrefixEvaluationError):
        evaluate("x/!{firehose:error-output-type}/", timestamp=MOMENT)


@pytest.mark.parametrize("prefix", ["!{nope:x}/", "!{firehose:nope}/", "!{timestamp:QQQ}/", "!{timestamp:'open}/"])
def test_unknown_expressions_are_errors(prefix: str) -> None:
    with pytest.raises(PrefixEvaluationError):
        evaluate(prefix, timestamp=MOMENT, error_output_type="x")


@pytest.mark.parametrize("pattern", ["MMM", "MMMM", "MMMMM", "yyyy/MMM/dd"])
def test_month_names_are_refused_not_rendered_as_digits(pattern: str) -> None:
    with pytest.raises(PrefixEvaluationError, match="month as text"):
        format_java_datetime(MOMENT, pattern)
    assert format_java_datetime(MOMENT, "M/MM") == "1/01"


def test_random_string_namespace() -> None:
    assert evaluate("!{firehose:random-string}/", timestamp=MOMENT, random_string=lambda: "abc") == "abc/"


def test_partition_key_names_in_prefix_order() -> None:
    assert partition_key_names(HOSE["prefix"]) == ["tenant_id", "year", "month"]


def test_object_keys_are_named_as_firehose_names_them() -> None:
    key = object_key("p/", stream_name="sales", stream_version=1, delivered_at=MOMENT)
    assert re.fullmatch(r"p/sales-1-2026-01-05-07-08-09-[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", key)
    assert object_key("p/", stream_name="s", stream_version=2, delivered_at=MOMENT, file_extension=".parquet").endswith(
        ".parquet"
    )
