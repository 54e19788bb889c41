"""The dead-letter message body, declared once: how it is written, how any message in the queue is read back.

One queue holds four kinds of message (``terraform/eventbridge.tf`` wires them all to it):

- ``rejected``: the fan-out's validation refused the event. Body ``{"errorType", "error": {field, reason,
  value}, "event"}``, or ``eventGzipBase64`` + ``eventId`` when the event was too large to keep as JSON.
- ``undeliverable``: EventBridge could not deliver the event to its target. Body = the event JSON, message
  attributes ``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``, ``RETRY_ATTEMPTS``...
- ``failed-after-retries``: direct trigger; the fan-out raised on every async attempt and Lambda's on-failure
  destination sent its invocation record (``requestContext``, ``requestPayload`` = the event,
  ``responsePayload`` with ``errorType`` / ``errorMessage``).
- ``failed-past-receive-limit``: queue trigger; the buffer queue's redrive policy moved the message after
  ``max_receive_count`` receives. Body = the event JSON, no message attributes.

Anything else is ``unknown``. The fan-out writes with :func:`encode`; the local runtime, the audit and the
``dlq`` command read with :func:`decode` (or :func:`unpack` for the body alone). Standard library only: this
module ships in the fan-out's zip.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import DeadLetterTooLarge

__all__ = [
    "KIND_TITLES",
    "REPLAYABLE_KINDS",
    "UNDELIVERABLE_ATTRIBUTES",
    "Decoded",
    "Kind",
    "decode",
    "decode_parsed",
    "encode",
    "unpack",
]

Kind = Literal["rejected", "undeliverable", "failed-after-retries", "failed-past-receive-limit", "unknown"]

KIND_TITLES: dict[str, str] = {
    "rejected": "rejected by the fan-out's validation",
    "undeliverable": "EventBridge could not deliver it",
    "failed-after-retries": "direct trigger: the fan-out failed after Lambda's async retries",
    "failed-past-receive-limit": "queue trigger: the fan-out failed past the buffer queue's receive limit",
    "unknown": "not a message this pipeline writes",
}
#: Kinds whose events can succeed now (the cause was transient); ``rejected`` only on request.
REPLAYABLE_KINDS = frozenset({"undeliverable", "failed-after-retries", "failed-past-receive-limit"})
#: The message attributes EventBridge puts on an event its target could not take.
UNDELIVERABLE_ATTRIBUTES = ("ERROR_CODE", "ERROR_MESSAGE", "RULE_ARN", "TARGET_ARN", "RETRY_ATTEMPTS")


def encode(event: Any, error: Mapping[str, Any], error_type: str, max_bytes: int) -> str:
    """The body of a rejected event, gzip+base64 under ``eventGzipBase64`` when the JSON would not fit
    ``max_bytes``; :class:`~fanout_lambda.errors.DeadLetterTooLarge` when even that does not fit."""
    body = _dumps({"errorType": error_type, "error": error, "event": event})
    if len(body.encode()) > max_bytes:
        packed = base64.b64encode(gzip.compress(_dumps(event).encode(), mtime=0)).decode()
        event_id = event.get("id") if isinstance(event, dict) else None
        body = _dumps({"errorType": error_type, "error": error, "eventId": event_id, "eventGzipBase64": packed})
        if len(body.encode()) > max_bytes:
            raise DeadLetterTooLarge(f"event {event_id!r} is {len(body)} bytes even compressed")
    return body


def unpack(body: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed body with its event restored under ``event`` (the gzip+base64 form unpacked)."""
    message = dict(body)
    packed = message.pop("eventGzipBase64", None)
    if packed is not None:
        message["event"] = json.loads(gzip.decompress(base64.b64decode(packed)))
    return message


@dataclass
class Decoded:
    """What a dead-letter message holds: its kind, the event, why it is there."""

    kind: Kind = "unknown"
    reason: str = ""
    event: Any = None
    event_id: str | None = None
    error: dict[str, Any] = field(default_factory=dict)


def decode(text: str | bytes, attributes: Mapping[str, str] | None = None) -> Decoded:
    """Classify one message by its body and message attributes; never raises on a malformed body."""
    try:
        body = json.loads(text)
    except ValueError:
        return Decoded(reason="body is not JSON")
    return decode_parsed(body, attributes)


def decode_parsed(body: Any, attributes: Mapping[str, str] | None = None) -> Decoded:
    """:func:`decode` for a body already parsed from its JSON."""
    decoded = _decode_body(body, attributes or {})
    if isinstance(decoded.event, Mapping) and decoded.event_id is None:
        event_id = decoded.event.get("id")
        decoded.event_id = event_id if isinstance(event_id, str) else None
    return decoded


def _decode_body(body: Any, attributes: Mapping[str, str]) -> Decoded:
    if not isinstance(body, Mapping):
        return Decoded(reason=f"body is JSON {type(body).__name__}, not an object")
    if "errorType" in body and ("event" in body or "eventGzipBase64" in body):
        return _rejected(body)
    if "requestPayload" in body and "responsePayload" in body:
        response = _mapping(body["responsePayload"])
        error = {key: response.get(key) for key in ("errorType", "errorMessage") if key in response}
        error["condition"] = _mapping(body.get("requestContext")).get("condition")
        reason = f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}".rstrip(": ")
        return Decoded("failed-after-retries", reason, body["requestPayload"], error=error)
    if _is_event(body):
        if "ERROR_CODE" in attributes:
            error = {key: attributes[key] for key in UNDELIVERABLE_ATTRIBUTES if key in attributes}
            reason = f"{attributes['ERROR_CODE']}: {attributes.get('ERROR_MESSAGE', '')}"
            return Decoded("undeliverable", reason, dict(body), error=error)
        reason = "moved by the buffer queue's redrive policy after max_receive_count receives"
        return Decoded("failed-past-receive-limit", reason, dict(body))
    return Decoded(reason="JSON object of no known shape (not an event, a rejection or a Lambda destination record)")


def _rejected(body: Mapping[str, Any]) -> Decoded:
    error = _mapping(body.get("error"))
    field_name, reason = error.get("field"), error.get("reason")
    # Grouped by field and rule; the offending value differs per event and is shown by `dlq show`.
    decoded = Decoded(
        "rejected", f"{field_name}: {reason}" if field_name else str(body.get("errorType")), body.get("event")
    )
    decoded.error = {"errorType": body.get("errorType"), **error}
    if "eventGzipBase64" in body:
        decoded.event_id = body.get("eventId") if isinstance(body.get("eventId"), str) else None
        try:
            decoded.event = json.loads(gzip.decompress(base64.b64decode(body["eventGzipBase64"], validate=True)))
        except (binascii.Error, OSError, EOFError, ValueError, TypeError) as exc:
            decoded.kind = "unknown"
            decoded.reason = f"eventGzipBase64 cannot be decoded ({exc})"
    return decoded


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_event(body: Mapping[str, Any]) -> bool:
    return isinstance(body.get("source"), str) and isinstance(body.get("detail-type"), str) and "detail" in body


def _dumps(value: Any) -> str:
    # stdlib json on this rare path: it copes with anything the Lambda runtime parsed (huge ints, NaN).
    # ensure_ascii=False keeps non-ASCII text at its UTF-8 size instead of 6-byte escapes.
    text = json.dumps(value, default=repr, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form: fall back to \u escapes
        return json.dumps(value, default=repr)
    return text
