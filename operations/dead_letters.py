"""The dead-letter queue's messages: what each kind looks like, how to read them all without consuming them.

One queue holds four kinds (see COMMON.md and ``terraform/eventbridge.tf``):

- ``rejected``: the fan-out's validation refused the event. Body ``{"errorType", "error": {field, reason,
  value}, "event"}``, or ``eventGzipBase64`` + ``eventId`` when the event was too large to keep as JSON.
- ``undeliverable``: EventBridge could not deliver the event to its target. Body = the event JSON, message
  attributes ``ERROR_CODE``, ``ERROR_MESSAGE``, ``RULE_ARN``, ``TARGET_ARN``, ``RETRY_ATTEMPTS``...
- ``failed-after-retries``: direct trigger; the fan-out raised on every async attempt and Lambda's on-failure
  destination sent its invocation record (``requestContext``, ``requestPayload`` = the event,
  ``responsePayload`` with ``errorType`` / ``errorMessage``).
- ``failed-past-receive-limit``: queue trigger; the buffer queue's redrive policy moved the message after
  ``max_receive_count`` receives. Body = the event JSON, no message attributes.

Anything else is ``unknown``: listed, never replayed, never deleted.

Reading is non-destructive: messages are received with a visibility timeout and made visible again
(``ChangeMessageVisibility`` 0) when the reader is done; while they are hidden, another reader of the queue
(a second operator, a redrive task) does not see them.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "KIND_TITLES",
    "REPLAYABLE_KINDS",
    "DeadLetter",
    "DeadLetterGroup",
    "QueueReader",
    "classify",
    "group",
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

#: SQS limits: messages per ReceiveMessage / DeleteMessageBatch / ChangeMessageVisibilityBatch.
SQS_BATCH = 10


@dataclass
class DeadLetter:
    """One DLQ message, classified, with its event decoded."""

    message_id: str
    receipt_handle: str
    body: str
    kind: Kind
    reason: str
    event: Any = None
    event_id: str | None = None
    sent_ms: int | None = None
    receive_count: int | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] = field(default_factory=dict)

    def age_seconds(self, now: float) -> float | None:
        """Seconds since SQS first received the message (its ``SentTimestamp``)."""
        return None if self.sent_ms is None else max(0.0, now - self.sent_ms / 1000)

    def as_json(self, now: float, *, with_event: bool = True) -> dict[str, Any]:
        """The message as ``dlq show --json`` prints it."""
        value: dict[str, Any] = {
            "messageId": self.message_id,
            "kind": self.kind,
            "reason": self.reason,
            "eventId": self.event_id,
            "sentTimestamp": self.sent_ms,
            "ageSeconds": self.age_seconds(now),
            "receiveCount": self.receive_count,
            "messageAttributes": self.attributes,
            "error": self.error,
        }
        if with_event:
            value["event"] = self.event
            if self.event is None:
                value["body"] = self.body
        return value


def classify(message: Mapping[str, Any]) -> DeadLetter:
    """Classify one ``ReceiveMessage`` entry (``AttributeNames=All``, ``MessageAttributeNames=All``)."""
    system = message.get("Attributes", {})
    attributes = {
        name: str(value.get("StringValue", value.get("BinaryValue", "")))
        for name, value in message.get("MessageAttributes", {}).items()
    }
    letter = DeadLetter(
        message_id=str(message["MessageId"]),
        receipt_handle=str(message.get("ReceiptHandle", "")),
        body=str(message.get("Body", "")),
        kind="unknown",
        reason="",
        sent_ms=_int(system.get("SentTimestamp")),
        receive_count=_int(system.get("ApproximateReceiveCount")),
        attributes=attributes,
    )
    try:
        body = json.loads(letter.body)
    except ValueError:
        letter.reason = "body is not JSON"
        return letter
    _classify_body(letter, body)
    if isinstance(letter.event, Mapping) and letter.event_id is None:
        event_id = letter.event.get("id")
        letter.event_id = event_id if isinstance(event_id, str) else None
    return letter


def _classify_body(letter: DeadLetter, body: Any) -> None:
    if not isinstance(body, Mapping):
        letter.reason = f"body is JSON {type(body).__name__}, not an object"
    elif "errorType" in body and ("event" in body or "eventGzipBase64" in body):
        _rejected(letter, body)
    elif "requestPayload" in body and "responsePayload" in body:
        letter.kind = "failed-after-retries"
        response = _mapping(body["responsePayload"])
        letter.error = {key: response.get(key) for key in ("errorType", "errorMessage") if key in response}
        context = _mapping(body.get("requestContext"))
        letter.error["condition"] = context.get("condition")
        letter.reason = f"{response.get('errorType', 'Error')}: {response.get('errorMessage', '')}".rstrip(": ")
        letter.event = body["requestPayload"]
    elif _is_event(body):
        letter.event = dict(body)
        if "ERROR_CODE" in letter.attributes:
            letter.kind = "undeliverable"
            letter.error = {
                key: letter.attributes[key]
                for key in ("ERROR_CODE", "ERROR_MESSAGE", "RULE_ARN", "TARGET_ARN", "RETRY_ATTEMPTS")
                if key in letter.attributes
            }
            letter.reason = f"{letter.attributes['ERROR_CODE']}: {letter.attributes.get('ERROR_MESSAGE', '')}"
        else:
            letter.kind = "failed-past-receive-limit"
            letter.reason = "moved by the buffer queue's redrive policy after max_receive_count receives"
    else:
        letter.reason = "JSON object of no known shape (not an event, a rejection or a Lambda destination record)"


def _rejected(letter: DeadLetter, body: Mapping[str, Any]) -> None:
    letter.kind = "rejected"
    error = _mapping(body.get("error"))
    letter.error = {"errorType": body.get("errorType"), **error}
    field_name, reason = error.get("field"), error.get("reason")
    # Grouped by field and rule; the offending value differs per event and is shown by `dlq show`.
    letter.reason = f"{field_name}: {reason}" if field_name else str(body.get("errorType"))
    if "eventGzipBase64" in body:
        letter.event_id = body.get("eventId") if isinstance(body.get("eventId"), str) else None
        try:
            letter.event = json.loads(gzip.decompress(base64.b64decode(body["eventGzipBase64"], validate=True)))
        except (binascii.Error, OSError, EOFError, ValueError, TypeError) as exc:
            letter.kind = "unknown"
            letter.reason = f"eventGzipBase64 cannot be decoded ({exc})"
    else:
        letter.event = body.get("event")


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_event(body: Mapping[str, Any]) -> bool:
    return isinstance(body.get("source"), str) and isinstance(body.get("detail-type"), str) and "detail" in body


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


@dataclass
class DeadLetterGroup:
    """Messages of one kind and one reason."""

    kind: str
    reason: str
    letters: list[DeadLetter] = field(default_factory=list)

    def oldest_ms(self) -> int | None:
        """``SentTimestamp`` of the oldest message in the group."""
        times = [letter.sent_ms for letter in self.letters if letter.sent_ms is not None]
        return min(times) if times else None

    def as_json(self, now: float) -> dict[str, Any]:
        """The group as ``dlq list --json`` prints it."""
        oldest = self.oldest_ms()
        return {
            "kind": self.kind,
            "reason": self.reason,
            "count": len(self.letters),
            "replayable": self.kind in REPLAYABLE_KINDS,
            "oldestSentTimestamp": oldest,
            "oldestAgeSeconds": None if oldest is None else max(0.0, now - oldest / 1000),
            "eventIds": [letter.event_id for letter in self.letters if letter.event_id],
            "messageIds": [letter.message_id for letter in self.letters],
        }


_KIND_ORDER = {kind: index for index, kind in enumerate(KIND_TITLES)}


def group(letters: Iterable[DeadLetter]) -> list[DeadLetterGroup]:
    """Group by kind and reason: kinds in :data:`KIND_TITLES` order, then the largest groups first."""
    groups: dict[tuple[str, str], DeadLetterGroup] = {}
    for letter in letters:
        key = (letter.kind, letter.reason)
        groups.setdefault(key, DeadLetterGroup(letter.kind, letter.reason)).letters.append(letter)
    return sorted(groups.values(), key=lambda g: (_KIND_ORDER.get(g.kind, 99), -len(g.letters), g.reason))


@dataclass
class ReadReport:
    """How a :class:`QueueReader` pass ended."""

    received: int = 0
    reappeared: int = 0
    stopped_at_limit: bool = False
    released: int = 0
    release_failed: int = 0


class QueueReader:
    """Receives every message of a queue once, keeps them hidden while the caller works, then shows them again.

    Each message is received once per pass (duplicates of a standard queue are dropped by ``MessageId``).
    The pass ends on an empty receive, on a receive that brings back only messages already seen (they
    reappeared because the pass outlived ``visibility_timeout``: raise it), or at ``limit`` messages.
    :meth:`release` makes every message not deleted visible again; call it in a ``finally``.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        *,
        visibility_timeout: int,
        wait_seconds: int = 1,
        limit: int | None = None,
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self.visibility_timeout = visibility_timeout
        self.wait_seconds = wait_seconds
        self.limit = limit
        self.report = ReadReport()
        self._held: dict[str, str] = {}  # message id -> receipt handle, while hidden by this pass

    def approximate_count(self) -> int:
        """``ApproximateNumberOfMessages`` (visible messages) of the queue: the progress bar's total."""
        response = self._client.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(response.get("Attributes", {}).get("ApproximateNumberOfMessages", 0))

    def batches(self) -> Iterator[list[DeadLetter]]:
        """Yield the queue's messages, classified, in receive batches of at most 10."""
        seen: set[str] = set()
        while self.limit is None or len(seen) < self.limit:
            wanted = SQS_BATCH if self.limit is None else min(SQS_BATCH, self.limit - len(seen))
            response = self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=wanted,
                VisibilityTimeout=self.visibility_timeout,
                WaitTimeSeconds=self.wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if not messages:
                return
            fresh = []
            for message in messages:
                self._held[message["MessageId"]] = message["ReceiptHandle"]
                if message["MessageId"] in seen:
                    self.report.reappeared += 1
                    continue
                seen.add(message["MessageId"])
                fresh.append(classify(message))
            if not fresh:
                return
            self.report.received += len(fresh)
            yield fresh
        self.report.stopped_at_limit = True

    def delete(self, letters: Sequence[DeadLetter]) -> dict[str, str]:
        """Delete ``letters``; return ``{message id: error code}`` for those SQS did not delete."""
        failed: dict[str, str] = {}
        for start in range(0, len(letters), SQS_BATCH):
            chunk = letters[start : start + SQS_BATCH]
            response = self._client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": self._held.get(letter.message_id, letter.receipt_handle)}
                    for index, letter in enumerate(chunk)
                ],
            )
            for entry in response.get("Failed", []):
                failed[chunk[int(entry["Id"])].message_id] = str(entry.get("Code", "Unknown"))
            for letter in chunk:
                if letter.message_id not in failed:
                    self._held.pop(letter.message_id, None)
        return failed

    def release(self) -> None:
        """Make every message this pass still hides visible again (``ChangeMessageVisibility`` 0)."""
        held = list(self._held.items())
        self._held.clear()
        for start in range(0, len(held), SQS_BATCH):
            chunk = held[start : start + SQS_BATCH]
            response = self._client.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": handle, "VisibilityTimeout": 0}
                    for index, (_, handle) in enumerate(chunk)
                ],
            )
            failed = len(response.get("Failed", []))
            self.report.release_failed += failed
            self.report.released += len(chunk) - failed


def now() -> float:
    """Epoch seconds (a seam for tests)."""
    return time.time()


def find(letters: Iterable[DeadLetter], wanted: str) -> DeadLetter | None:
    """The message whose SQS message id or event id is ``wanted``."""
    for letter in letters:
        if wanted in (letter.message_id, letter.event_id):
            return letter
    return None


def abbreviate(value: Any, limit: int = 8) -> Any:
    """``value`` with lists longer than ``limit`` cut to their first items and a count (for text output)."""
    if isinstance(value, list):
        if len(value) > limit:
            return [*(abbreviate(item, limit) for item in value[:limit]), f"... ({len(value)} items)"]
        return [abbreviate(item, limit) for item in value]
    if isinstance(value, Mapping):
        return {key: abbreviate(item, limit) for key, item in value.items()}
    return value
