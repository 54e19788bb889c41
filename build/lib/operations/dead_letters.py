"""The dead-letter queue's messages: what each kind looks like, how to read them all without consuming them.

One queue holds four kinds of message (``rejected``, ``undeliverable``, ``failed-after-retries``,
``failed-past-receive-limit``); their bodies are declared once, in :mod:`fanout_lambda.dead_letter_body`, which
decodes them here as it does for the local runtime and the audit. Anything else is ``unknown``: listed, never
replayed, never deleted.

Reading is non-destructive: messages are received with a visibility timeout and made visible again
(``ChangeMessageVisibility`` 0) when the reader is done; while they are hidden, another reader of the queue
(a second operator, a redrive task) does not see them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fanout_lambda import dead_letter_body
from fanout_lambda.dead_letter_body import KIND_TITLES, REPLAYABLE_KINDS, Kind

__all__ = [
    "KIND_TITLES",
    "REPLAYABLE_KINDS",
    "DeadLetter",
    "DeadLetterGroup",
    "QueueReader",
    "classify",
    "group",
]

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
    decoded = dead_letter_body.decode(letter.body, attributes)
    letter.kind, letter.reason, letter.event = decoded.kind, decoded.reason, decoded.event
    letter.event_id, letter.error = decoded.event_id, decoded.error
    return letter


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
