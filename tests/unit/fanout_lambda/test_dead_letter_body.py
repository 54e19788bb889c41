"""The dead-letter body contract: what the fan-out writes, every reader decodes the same way."""

from __future__ import annotations

import json

import pytest

from fanout_lambda.dead_letter_body import KIND_TITLES, REPLAYABLE_KINDS, decode, encode, unpack
from fanout_lambda.errors import DeadLetterTooLarge

EVENT = {"id": "e1", "source": "carousel.products", "detail-type": "carousel.product.sold", "detail": {"x": 1}}
ERROR = {"field": "detail.price", "reason": "must be positive", "value": -1}


def test_a_rejected_event_round_trips_with_its_reason() -> None:
    decoded = decode(encode(EVENT, ERROR, "InvalidSaleEvent", 256 * 1024))
    assert decoded.kind == "rejected"
    assert decoded.event == EVENT and decoded.event_id == "e1"
    assert decoded.reason == "detail.price: must be positive"
    assert decoded.error == {"errorType": "InvalidSaleEvent", **ERROR}


def test_an_event_too_large_for_one_message_is_packed_and_comes_back_whole() -> None:
    big = {**EVENT, "detail": {"blob": "x" * 5000}}
    body = encode(big, ERROR, "InvalidSaleEvent", 2000)
    assert len(body.encode()) <= 2000 and "eventGzipBase64" in json.loads(body)
    decoded = decode(body)
    assert decoded.kind == "rejected" and decoded.event == big and decoded.event_id == "e1"
    assert unpack(json.loads(body))["event"] == big


def test_an_event_that_never_fits_is_refused_not_truncated() -> None:
    noise = {**EVENT, "detail": {"blob": "".join(chr(0x4E00 + (i * 7919) % 20000) for i in range(4000))}}
    with pytest.raises(DeadLetterTooLarge):
        encode(noise, ERROR, "InvalidSaleEvent", 1000)


@pytest.mark.parametrize(
    ("body", "attributes", "kind"),
    [
        (EVENT, {"ERROR_CODE": "SDK_CLIENT_ERROR", "ERROR_MESSAGE": "denied"}, "undeliverable"),
        (EVENT, {}, "failed-past-receive-limit"),
        (
            {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": EVENT, "responsePayload": {}},
            {},
            "failed-after-retries",
        ),
        ({"something": "else"}, {}, "unknown"),
        ([1, 2], {}, "unknown"),
    ],
)
def test_each_kind_of_message_is_recognised(body: object, attributes: dict[str, str], kind: str) -> None:
    decoded = decode(json.dumps(body), attributes)
    assert decoded.kind == kind
    assert kind in KIND_TITLES
    assert (kind in REPLAYABLE_KINDS) == (kind not in ("rejected", "unknown"))


def test_a_body_that_is_not_json_is_unknown_with_a_reason() -> None:
    decoded = decode("not json")
    assert decoded.kind == "unknown" and decoded.reason == "body is not JSON"


def test_a_packed_event_that_cannot_be_unpacked_says_so() -> None:
    decoded = decode(json.dumps({"errorType": "InvalidSaleEvent", "error": {}, "eventGzipBase64": "!!"}))
    assert decoded.kind == "unknown" and decoded.reason.startswith("eventGzipBase64 cannot be decoded")
