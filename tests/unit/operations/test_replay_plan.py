"""What ``dlq replay`` does with each kind of message (no network)."""

from __future__ import annotations

import json
from typing import Any

import pipeline_config
from fanout_lambda.validation import validator
from operations.dead_letters import classify
from operations.dlq import plan_replay
from tests.support import load_event

VALIDATE = validator(pipeline_config.embedding_dimension()).validate


def message(body: Any, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"MessageId": "m", "ReceiptHandle": "r", "Body": json.dumps(body), "Attributes": {}}
    if attributes:
        entry["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in attributes.items()}
    return entry


def rejection(event: Any) -> dict[str, Any]:
    return message({"errorType": "InvalidSaleEvent", "error": {"field": "f", "reason": "r"}, "event": event})


def test_failed_kinds_are_replayed_with_their_original_event() -> None:
    event = load_event("product_sold")
    for letter in (
        classify(message(event, {"ERROR_CODE": "SDK_CLIENT_ERROR"})),
        classify(message(event)),
        classify(message({"requestPayload": event, "responsePayload": {"errorType": "E"}})),
    ):
        plan = plan_replay(letter, bus_name="bus", include_rejected=False, validate=VALIDATE)

        assert plan.skip is None and plan.entry is not None
        assert json.loads(plan.entry["Detail"]) == event["detail"] and plan.entry["EventBusName"] == "bus"


def test_rejected_events_wait_for_the_explicit_option() -> None:
    letter = classify(rejection(load_event("product_sold")))

    plan = plan_replay(letter, bus_name="bus", include_rejected=False, validate=VALIDATE)

    assert plan.entry is None and plan.skip == "rejected by validation: replayed only with --rejected"


def test_a_rejected_event_is_revalidated_and_kept_if_it_would_be_rejected_again() -> None:
    valid = classify(rejection(load_event("product_sold")))
    still_invalid = classify(rejection(load_event("negative_price")))

    assert plan_replay(valid, bus_name="bus", include_rejected=True, validate=VALIDATE).entry is not None
    plan = plan_replay(still_invalid, bus_name="bus", include_rejected=True, validate=VALIDATE)
    assert plan.entry is None and str(plan.skip).startswith("would be rejected again: detail.")


def test_unknown_messages_and_events_that_cannot_be_entries_are_skipped_with_the_reason() -> None:
    unknown = classify({"MessageId": "m", "ReceiptHandle": "r", "Body": "garbage"})
    not_an_event = classify(rejection("a raw string the fan-out could not parse"))

    assert plan_replay(unknown, bus_name="b", include_rejected=True, validate=VALIDATE).skip == (
        "not a message this pipeline writes (body is not JSON)"
    )
    assert plan_replay(not_an_event, bus_name="b", include_rejected=True, validate=VALIDATE).skip == (
        "cannot be re-published: event: must be a JSON object, got str"
    )
