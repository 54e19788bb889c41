"""PutEvents to the stack's bus with the limits and the partial failures boto3 leaves to the caller.

- At most 10 entries and less than 256 KB per call, entry sizes computed as the EventBridge user guide's
  "Calculating Amazon EventBridge PutEvents event entry size" does (Time 14 bytes; Source, DetailType, Detail
  and each Resources item as UTF-8 bytes).
- A successful call can still reject entries (``FailedEntryCount > 0``, an ``ErrorCode`` on each rejected
  entry, ``Entries`` aligned with the request). Only those entries are resent, with capped exponential
  backoff and full jitter, as the fan-out's :class:`~fanout_lambda.adapters.FirehoseSender` resends Firehose
  records. Codes that no resend can fix (a malformed or oversized entry, a denied source) are not resent.
- Each item carries a caller's key, so the caller learns exactly which items the bus accepted (``dlq replay``
  deletes a dead letter only after its event was accepted).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fanout_lambda.adapters import Backoff

__all__ = [
    "MAX_ENTRIES",
    "MAX_REQUEST_BYTES",
    "EventPublisher",
    "InvalidEvent",
    "PublishResult",
    "entry_from_event",
    "entry_size",
]

#: PutEvents limits: entries per call, and the request's total entry size (which must stay below 256 KB).
MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
#: Entry errors a resend cannot fix: reported at once, never resent.
PERMANENT_ERROR_CODES = frozenset(
    {"InvalidArgument", "MalformedDetail", "NotAuthorizedForSourceException", "AccessDeniedException"}
)


class InvalidEvent(ValueError):
    """The event cannot become a PutEvents entry; the message names the field."""


def entry_from_event(event: Any, bus_name: str) -> dict[str, Any]:
    """The PutEvents entry that re-publishes ``event`` (as a rule target receives it) on ``bus_name``.

    Keeps the original ``source``, ``detail-type``, ``detail``, ``resources`` and ``time``; EventBridge gives the
    entry a new ``id`` (the fan-out's idempotency is keyed on the sale, not the event id, so a sale already
    processed comes out as a duplicate). An entry already in PutEvents form (``Source``, ``DetailType``,
    ``Detail``) is accepted as it is, with its bus set to ``bus_name``.
    """
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"event: must be a JSON object, got {type(event).__name__}")
    if "Source" in event and "DetailType" in event:
        entry = {key: event[key] for key in ("Source", "DetailType", "Detail", "Resources", "Time") if key in event}
        entry["EventBusName"] = bus_name
        _check_text(entry, "Source")
        _check_text(entry, "DetailType")
        if not isinstance(entry.get("Detail"), str):
            raise InvalidEvent("Detail: must be a JSON object encoded as a string")
        return entry
    source, detail_type, detail = event.get("source"), event.get("detail-type"), event.get("detail")
    if not isinstance(source, str) or not source:
        raise InvalidEvent(f"source: must be a non-empty string, got {source!r}")
    if not isinstance(detail_type, str) or not detail_type:
        raise InvalidEvent(f"detail-type: must be a non-empty string, got {detail_type!r}")
    if not isinstance(detail, Mapping):
        raise InvalidEvent(f"detail: must be a JSON object, got {type(detail).__name__}")
    entry = {
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":"), ensure_ascii=False),
        "EventBusName": bus_name,
    }
    resources = event.get("resources")
    if isinstance(resources, list) and resources:
        entry["Resources"] = [str(item) for item in resources]
    if "time" in event:
        entry["Time"] = _time(event["time"])
    return entry


def _check_text(entry: Mapping[str, Any], name: str) -> None:
    if not isinstance(entry.get(name), str) or not entry[name]:
        raise InvalidEvent(f"{name}: must be a non-empty string, got {entry.get(name)!r}")


def _time(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise InvalidEvent(f"time: must be an RFC 3339 timestamp, got {value!r}")
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(f"time: must be an RFC 3339 timestamp, got {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def entry_size(entry: Mapping[str, Any]) -> int:
    """The entry's size as EventBridge counts it against the 256 KB request limit."""
    size = 14 if entry.get("Time") is not None else 0
    size += len(str(entry.get("Source", "")).encode()) + len(str(entry.get("DetailType", "")).encode())
    if entry.get("Detail") is not None:
        size += len(str(entry["Detail"]).encode())
    for resource in entry.get("Resources") or ():
        size += len(str(resource).encode())
    return size


@dataclass
class PublishResult:
    """What :meth:`EventPublisher.publish` did, per caller key."""

    accepted: list[Hashable] = field(default_factory=list)
    failed: dict[Hashable, str] = field(default_factory=dict)  # key -> last ErrorCode
    calls: int = 0
    resent: int = 0

    def merge(self, other: PublishResult) -> None:
        """Add ``other``'s counts and outcomes to this result."""
        self.accepted.extend(other.accepted)
        self.failed.update(other.failed)
        self.calls += other.calls
        self.resent += other.resent


class EventPublisher:
    """Publishes PutEvents entries in calls within the limits, resending rejected entries with backoff."""

    def __init__(
        self,
        client: Any,
        *,
        max_attempts: int = 5,
        base_delay: float = 0.1,
        max_delay: float = 2.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._client = client
        self.backoff = Backoff(max_attempts, base_delay, max_delay, sleep, jitter)

    def publish(self, items: Sequence[tuple[Hashable, Mapping[str, Any]]]) -> PublishResult:
        """Publish every ``(key, entry)``; an entry too large for any call is failed as ``EntryTooLarge``."""
        result = PublishResult()
        sendable: list[tuple[Hashable, Mapping[str, Any]]] = []
        for key, entry in items:
            if entry_size(entry) >= MAX_REQUEST_BYTES:
                result.failed[key] = "EntryTooLarge"
            else:
                sendable.append((key, entry))
        for call in batches(sendable):
            self._publish_call(call, result)
        return result

    def _publish_call(self, call: list[tuple[Hashable, Mapping[str, Any]]], result: PublishResult) -> None:
        pending = call
        for attempt in range(1, self.backoff.max_attempts + 1):
            if attempt > 1:
                result.resent += len(pending)
                self.backoff.pause(attempt)
            response = self._client.put_events(Entries=[dict(entry) for _, entry in pending])
            result.calls += 1
            retry: list[tuple[Hashable, Mapping[str, Any]]] = []
            for (key, entry), outcome in zip(pending, response.get("Entries", []), strict=True):
                code = outcome.get("ErrorCode")
                if not code:
                    result.accepted.append(key)
                    result.failed.pop(key, None)
                    continue
                result.failed[key] = str(code)
                if code not in PERMANENT_ERROR_CODES:
                    retry.append((key, entry))
            pending = retry
            if not pending:
                return


def batches(items: Sequence[tuple[Hashable, Mapping[str, Any]]]) -> Iterator[list[tuple[Hashable, Mapping[str, Any]]]]:
    """Group entries into calls of at most 10 entries whose sizes sum below 256 KB, in order."""
    call: list[tuple[Hashable, Mapping[str, Any]]] = []
    size = 0
    for item in items:
        item_size = entry_size(item[1])
        if call and (len(call) == MAX_ENTRIES or size + item_size >= MAX_REQUEST_BYTES):
            yield call
            call, size = [], 0
        call.append(item)
        size += item_size
    if call:
        yield call
