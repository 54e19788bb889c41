"""PutEvents batching, entry sizes and resends of entries rejected in FailedEntryCount (no network)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from operations.publisher import (
    MAX_REQUEST_BYTES,
    EventPublisher,
    InvalidEvent,
    batches,
    entry_from_event,
    entry_size,
)
from tests.support import load_event


def test_entry_keeps_the_original_source_detail_type_detail_resources_and_time() -> None:
    event = load_event("product_sold")
    event["resources"] = ["arn:aws:s3:::x"]

    entry = entry_from_event(event, "bus")

    assert entry["Source"] == event["source"] and entry["DetailType"] == event["detail-type"]
    assert json.loads(entry["Detail"]) == event["detail"]
    assert entry["Resources"] == ["arn:aws:s3:::x"] and entry["EventBusName"] == "bus"
    assert entry["Time"] == dt.datetime.fromisoformat(event["time"])


def test_a_put_events_entry_is_accepted_as_is_on_the_given_bus() -> None:
    entry = entry_from_event({"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "other"}, "bus")

    assert entry == {"Source": "s", "DetailType": "d", "Detail": "{}", "EventBusName": "bus"}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "event: must be a JSON object, got list"),
        ({"detail-type": "d", "detail": {}}, "source: must be a non-empty string, got None"),
        ({"source": "s", "detail": {}}, "detail-type: must be a non-empty string, got None"),
        ({"source": "s", "detail-type": "d", "detail": "x"}, "detail: must be a JSON object, got str"),
        ({"source": "s", "detail-type": "d", "detail": {}, "time": "yesterday"}, "time: must be an RFC 3339"),
    ],
)
def test_an_event_that_cannot_be_an_entry_names_the_field(event: Any, message: str) -> None:
    with pytest.raises(InvalidEvent, match=message.replace("(", r"\(")):
        entry_from_event(event, "bus")


def test_entry_size_counts_as_eventbridge_documents() -> None:
    entry = {"Source": "ab", "DetailType": "cd", "Detail": '{"é":1}', "Resources": ["r1", "r2"], "Time": object()}

    assert entry_size(entry) == 14 + 2 + 2 + len('{"é":1}'.encode()) + 4


def entry(size: int) -> dict[str, Any]:
    return {"Source": "s", "DetailType": "d", "Detail": "x" * (size - 2)}


def test_calls_hold_at_most_ten_entries_and_stay_below_256_kb() -> None:
    small = [(n, entry(100)) for n in range(25)]
    assert [len(call) for call in batches(small)] == [10, 10, 5]

    large = [(n, entry(100 * 1024)) for n in range(5)]
    calls = list(batches(large))
    assert [len(call) for call in calls] == [2, 2, 1]
    assert all(sum(entry_size(e) for _, e in call) < MAX_REQUEST_BYTES for call in calls)
    assert [key for call in calls for key, _ in call] == [0, 1, 2, 3, 4]  # order kept


class FakeEvents:
    """put_events that fails entries by (call number, index) -> ErrorCode."""

    def __init__(self, failures: dict[int, dict[int, str]]) -> None:
        self.failures = failures
        self.calls: list[list[str]] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        self.calls.append([e["Detail"] for e in Entries])
        failing = self.failures.get(len(self.calls), {})
        results = [{"ErrorCode": failing[i]} if i in failing else {"EventId": f"id-{i}"} for i in range(len(Entries))]
        return {"FailedEntryCount": len(failing), "Entries": results}


def test_only_rejected_entries_are_resent_with_capped_backoff() -> None:
    client = FakeEvents({1: {1: "ThrottlingException", 2: "InternalFailure"}, 2: {1: "InternalFailure"}})
    sleeps: list[float] = []
    publisher = EventPublisher(client, sleep=sleeps.append, jitter=lambda _lo, hi: hi)

    result = publisher.publish([(k, {"Source": "s", "DetailType": "d", "Detail": k}) for k in "abc"])

    assert client.calls == [["a", "b", "c"], ["b", "c"], ["c"]]
    assert sorted(result.accepted) == ["a", "b", "c"] and result.failed == {}
    assert result.resent == 3 and sleeps == [0.1, 0.2]


def test_an_entry_still_rejected_after_every_attempt_is_reported_with_its_code() -> None:
    client = FakeEvents({n: {0: "InternalFailure"} for n in range(1, 10)})
    publisher = EventPublisher(client, max_attempts=3, sleep=lambda _s: None)

    result = publisher.publish([("a", {"Source": "s", "DetailType": "d", "Detail": "a"})])

    assert len(client.calls) == 3
    assert result.failed == {"a": "InternalFailure"} and result.accepted == []


def test_a_permanent_error_is_not_resent() -> None:
    client = FakeEvents({1: {0: "MalformedDetail"}})

    result = EventPublisher(client, sleep=lambda _s: None).publish(
        [("a", {"Source": "s", "DetailType": "d", "Detail": "a"})]
    )

    assert len(client.calls) == 1 and result.failed == {"a": "MalformedDetail"}


def test_an_entry_too_large_for_any_call_fails_without_a_call() -> None:
    client = FakeEvents({})

    result = EventPublisher(client).publish([("big", entry(MAX_REQUEST_BYTES))])

    assert client.calls == [] and result.failed == {"big": "EntryTooLarge"}
