from __future__ import annotations

import array
import random
from collections import Counter
from pathlib import Path

import pytest

import pipeline_config
from fanout_lambda.errors import InvalidSaleEvent
from fanout_lambda.schemas import sale_event_schema
from fanout_lambda.validation import validator
from local_pipeline.eventbridge import matches
from local_pipeline.generator import (
    RESERVOIR_SIZE,
    BadEventsFile,
    BurstSpec,
    GeneratedEvent,
    _embedding,
    count_events,
    events_from_file,
    generate,
    write_jsonl,
)

SPEC = BurstSpec(events=300, seed=3)
VALIDATOR = validator(pipeline_config.embedding_dimension())
PATTERN = pipeline_config.load()["event_pattern"]


@pytest.fixture(scope="module")
def burst() -> list[GeneratedEvent]:
    return list(generate(SPEC))


def test_the_same_seed_gives_the_same_burst(burst: list[GeneratedEvent]) -> None:
    again = list(generate(SPEC))
    assert [g.event["id"] for g in again] == [g.event["id"] for g in burst]


def test_the_burst_has_every_kind_in_its_share(burst: list[GeneratedEvent]) -> None:
    kinds = Counter(g.kind for g in burst)
    assert kinds["retry"] == round(300 * SPEC.retry_share)
    assert kinds["republish"] == round(300 * SPEC.republish_share)
    assert kinds["invalid"] == round(300 * SPEC.invalid_share)
    assert kinds["unmatched"] == round(300 * SPEC.unmatched_share)
    assert sum(kinds.values()) == 300


def test_valid_events_pass_the_fanout_validator_and_the_rule(burst: list[GeneratedEvent]) -> None:
    for generated in burst:
        if generated.kind in {"valid", "retry", "republish"}:
            VALIDATOR.validate(generated.event)
            assert matches(PATTERN, generated.event)


def test_valid_events_carry_every_field_of_the_sale_schema(burst: list[GeneratedEvent]) -> None:
    fields = set(sale_event_schema()["properties"]["detail"]["properties"])
    assert set(burst[0].event["detail"]) == fields
    assert len(burst[0].event["detail"]["embedding"]) == pipeline_config.embedding_dimension()


@pytest.mark.parametrize("seed", [0, 7, 2026])
def test_an_embedding_is_each_random_word_scaled_to_six_decimals_in_minus_one_to_one(seed: int) -> None:
    words = array.array("I", random.Random(seed).randbytes(4 * 1024))  # the generator's one draw, native order
    expected = [(word % 2_000_001 - 1_000_000) / 1_000_000 for word in words]
    values = _embedding(random.Random(seed), 1024)
    assert values == expected
    assert all(type(value) is float and -1 <= value <= 1 for value in values)


def test_invalid_events_fail_on_the_field_they_name(burst: list[GeneratedEvent]) -> None:
    invalid = [g for g in burst if g.kind == "invalid"]
    assert invalid
    for generated in invalid:
        with pytest.raises(InvalidSaleEvent) as raised:
            VALIDATOR.validate(generated.event)
        assert raised.value.field == generated.invalid_field


def test_unmatched_events_do_not_match_the_rule(burst: list[GeneratedEvent]) -> None:
    assert all(not matches(PATTERN, g.event) for g in burst if g.kind == "unmatched")


def test_retries_keep_the_id_and_republishes_get_a_new_one(burst: list[GeneratedEvent]) -> None:
    for generated in burst:
        if generated.kind == "retry":
            assert generated.event["id"] == generated.of_event_id
        if generated.kind == "republish":
            assert generated.event["id"] != generated.of_event_id


def test_sale_dates_span_a_year_boundary_and_every_season(burst: list[GeneratedEvent]) -> None:
    dates = {g.event["detail"]["soldDate"] for g in burst if g.kind == "valid"}
    assert {d[:4] for d in dates} >= {"2025", "2026"}
    assert {(int(d[5:7]) - 1) // 3 for d in dates} == {0, 1, 2, 3}
    assert len({g.event["detail"]["tenantId"] for g in burst if g.kind == "valid"}) >= 3


def test_arrivals_are_spread_over_the_burst_window_in_order(burst: list[GeneratedEvent]) -> None:
    arrivals = [g.arrival_ms for g in burst]
    assert arrivals == sorted(arrivals)
    assert arrivals[-1] - arrivals[0] < SPEC.burst_seconds * 1000
    assert arrivals[-1] - arrivals[0] > SPEC.burst_seconds * 900


def test_events_from_a_jsonl_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": "b"}\n')
    events = list(events_from_file(path, start=SPEC.start, burst_seconds=10))
    assert [g.event["id"] for g in events] == ["a", "b"]
    path.write_text("{broken\n")
    with pytest.raises(BadEventsFile, match=r"events\.jsonl:1: not a JSON event"):
        list(events_from_file(path, start=SPEC.start, burst_seconds=10))


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', "42", "null", "true"])
def test_a_line_that_is_json_but_not_an_object_is_bad_input_with_its_line_number(tmp_path: Path, line: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"id": "a"}\n' + line + "\n")
    with pytest.raises(BadEventsFile, match=r"events\.jsonl:2: not an event: a JSON \w+ where an EventBridge event"):
        count_events(path)


def test_duplicates_need_only_a_bounded_reservoir_of_originals() -> None:
    # GIVEN a long burst WHEN it is generated THEN every duplicate copies an original sent before it, and the
    # generator is a stream (nothing is generated before it is asked for)
    stream = generate(BurstSpec(events=RESERVOIR_SIZE * 8, seed=9))
    seen: set[str] = set()
    for generated in stream:
        if generated.kind in {"retry", "republish"}:
            assert generated.of_event_id in seen
        if generated.kind == "valid":
            seen.add(generated.event["id"])
    assert len(seen) > RESERVOIR_SIZE


def test_write_jsonl_writes_the_burst_run_generates(tmp_path: Path) -> None:
    path = tmp_path / "burst.jsonl"
    with path.open("wb") as out:
        assert write_jsonl(generate(SPEC), out) == SPEC.events
    again = list(events_from_file(path, start=SPEC.start, burst_seconds=SPEC.burst_seconds))
    assert [g.event for g in again] == [g.event for g in generate(SPEC)]
