"""Classifying, decoding and grouping dead letters (no network)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from operations.dead_letters import DeadLetter, QueueReader, abbreviate, classify, find, group
from tests.support import load_event


def message(
    body: Any, attributes: dict[str, str] | None = None, message_id: str = "m-1", sent_ms: int = 1_000
) -> dict[str, Any]:
    """A ReceiveMessage entry as SQS returns it with AttributeNames/MessageAttributeNames=All."""
    entry: dict[str, Any] = {
        "MessageId": message_id,
        "ReceiptHandle": f"rh-{message_id}",
        "Body": body if isinstance(body, str) else json.dumps(body),
        "Attributes": {"SentTimestamp": str(sent_ms), "ApproximateReceiveCount": "1"},
    }
    if attributes:
        entry["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    return entry


def test_a_rejection_is_grouped_by_field_and_reason_not_by_value() -> None:
    event = load_event("product_sold")
    error = {"field": "detail.listedPrice", "reason": "must be >= 0", "value": "-5"}

    letter = classify(message({"errorType": "InvalidSaleEvent", "error": error, "event": event}))

    assert letter.kind == "rejected"
    assert letter.reason == "detail.listedPrice: must be >= 0"
    assert letter.event == event and letter.event_id == event["id"]
    assert letter.error["value"] == "-5" and letter.error["errorType"] == "InvalidSaleEvent"


def test_a_compressed_rejection_is_decoded() -> None:
    event = load_event("product_sold")
    packed = base64.b64encode(gzip.compress(json.dumps(event).encode())).decode()
    body = {
        "errorType": "InvalidSaleEvent",
        "error": {"field": "f", "reason": "r"},
        "eventId": "e-9",
        "eventGzipBase64": packed,
    }

    letter = classify(message(body))

    assert letter.kind == "rejected" and letter.event == event
    assert letter.event_id == "e-9"  # the id the fan-out stored beside the packed event


def test_a_corrupt_compressed_event_is_unknown_and_says_why() -> None:
    body = {"errorType": "InvalidSaleEvent", "error": {}, "eventId": "e", "eventGzipBase64": "bm90IGd6aXA="}

    letter = classify(message(body))

    assert letter.kind == "unknown" and "eventGzipBase64 cannot be decoded" in letter.reason


def test_an_eventbridge_delivery_failure_reads_its_message_attributes() -> None:
    event = load_event("product_sold")
    attributes = {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": "Unable to invoke", "RETRY_ATTEMPTS": "185"}

    letter = classify(message(event, attributes))

    assert letter.kind == "undeliverable"
    assert letter.reason == "SDK_CLIENT_ERROR: Unable to invoke"
    assert letter.error["RETRY_ATTEMPTS"] == "185"
    assert letter.event == event


def test_a_lambda_destination_record_yields_its_request_payload() -> None:
    event = load_event("product_sold")
    record = {
        "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responsePayload": {"errorType": "DeliveryIncomplete", "errorMessage": "1 record(s) not accepted"},
    }

    letter = classify(message(record))

    assert letter.kind == "failed-after-retries"
    assert letter.reason == "DeliveryIncomplete: 1 record(s) not accepted"
    assert letter.error["condition"] == "RetriesExhausted"
    assert letter.event == event and letter.event_id == event["id"]


def test_a_raw_event_without_attributes_came_from_the_buffer_queue_redrive() -> None:
    letter = classify(message(load_event("product_sold")))

    assert letter.kind == "failed-past-receive-limit"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "body is not JSON"),
        ([1, 2], "body is JSON list, not an object"),
        ({"a": 1}, "JSON object of no known shape"),
    ],
)
def test_anything_else_is_unknown(body: Any, reason: str) -> None:
    letter = classify(message(body))

    assert letter.kind == "unknown" and letter.reason.startswith(reason) and letter.event is None


def test_groups_are_ordered_by_kind_then_size_with_oldest_age() -> None:
    event = load_event("product_sold")
    letters = [
        classify(message("x", message_id="u")),
        classify(message(event, {"ERROR_CODE": "A", "ERROR_MESSAGE": "m"}, "b1", sent_ms=5_000)),
        classify(message(event, {"ERROR_CODE": "A", "ERROR_MESSAGE": "m"}, "b2", sent_ms=2_000)),
        classify(message({"errorType": "E", "error": {"field": "f", "reason": "r"}, "event": event}, message_id="r")),
    ]

    groups = group(letters)

    assert [(g.kind, len(g.letters)) for g in groups] == [("rejected", 1), ("undeliverable", 2), ("unknown", 1)]
    assert groups[1].oldest_ms() == 2_000
    listed = groups[1].as_json(now=10.0)
    assert listed["oldestAgeSeconds"] == 8.0 and listed["replayable"] is True
    assert listed["messageIds"] == ["b1", "b2"]


def test_find_by_message_id_or_event_id() -> None:
    event = load_event("product_sold")
    letters = [classify(message(event, message_id="m-7"))]

    assert find(letters, "m-7") is letters[0]
    assert find(letters, event["id"]) is letters[0]
    assert find(letters, "nope") is None


def test_abbreviate_cuts_long_arrays_only() -> None:
    assert abbreviate({"a": list(range(10)), "b": [1, 2]}, limit=3) == {"a": [0, 1, 2, "... (10 items)"], "b": [1, 2]}


class FakeSqs:
    """Hands out queued messages; records deletes and visibility changes."""

    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []
        self.made_visible: list[str] = []
        self.asked: list[int] = []

    def receive_message(self, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        self.asked.append(MaxNumberOfMessages)
        if not self.batches:
            return {}
        batch = self.batches.pop(0)
        if len(batch) > MaxNumberOfMessages:
            self.batches.insert(0, batch[MaxNumberOfMessages:])
        return {"Messages": batch[:MaxNumberOfMessages]}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        self.deleted += [entry["ReceiptHandle"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        assert all(entry["VisibilityTimeout"] == 0 for entry in Entries)
        self.made_visible += [entry["ReceiptHandle"] for entry in Entries]
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries]}


def test_the_reader_stops_when_only_reappearing_messages_come_back_and_releases_the_rest() -> None:
    first = [message("a", message_id="1"), message("b", message_id="2")]
    again = [dict(message("a", message_id="1"), ReceiptHandle="rh-1-new")]
    sqs = FakeSqs([first, again, [message("c", message_id="3")]])
    reader = QueueReader(sqs, "url", visibility_timeout=30)

    read = [letter.message_id for batch in reader.batches() for letter in batch]
    reader.delete([DeadLetter("2", "rh-2", "b", "unknown", "")])
    reader.release()

    assert read == ["1", "2"]  # stopped at the batch of reappeared messages
    assert reader.report.reappeared == 1
    assert sqs.deleted == ["rh-2"]
    assert sqs.made_visible == ["rh-1-new"]  # the newest receipt handle, and never the deleted message


def test_the_reader_honours_its_limit() -> None:
    sqs = FakeSqs([[message("a", message_id=str(n)) for n in range(10)], [message("b", message_id="x")]])
    reader = QueueReader(sqs, "url", visibility_timeout=30, limit=4)

    read = [letter for batch in reader.batches() for letter in batch]

    assert len(read) == 4
    assert sqs.asked == [4]
    assert reader.report.stopped_at_limit
