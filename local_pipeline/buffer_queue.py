"""The SQS buffer queue and Lambda's SQS event source mapping, on the simulated clock.

moto stores SQS messages but has no event source mapping that polls them into a function, so the local run
plays both (queue trigger: EventBridge rule → buffer queue → event source mapping → fan-out in batches):

- **Batching.** A batch opens when a concurrency slot is free and a message is visible. It closes when it
  holds ``batch_size`` messages, when ``maximum_batching_window_seconds`` have passed since it opened, or when
  one more message would take the invocation payload past Lambda's 6 MB (6,291,456 bytes) limit, measured
  on the JSON of the real SQS event (each record with its body, attributes and ARNs).
- **Concurrency.** At most ``maximum_concurrency`` invocations in flight. Each invocation starts when its
  batch closes and lasts :class:`~local_pipeline.lambda_service.InvocationTiming`'s duration.
- **Partial batch response.** The handler answers ``{"batchItemFailures": [{"itemIdentifier": messageId}]}``
  (``ReportBatchItemFailures``): the other messages are deleted. A listed message stays invisible until
  ``visibility_timeout_seconds`` after it was received, then is redelivered with the same ``messageId``, a new
  receipt handle and ``ApproximateReceiveCount`` + 1. A handler that raises, or a response Lambda cannot read
  (not a map, an unknown identifier), fails the whole batch.
- **Redrive.** A message received ``max_receive_count`` times that becomes visible again is moved to the
  dead-letter queue by the redrive policy: ``dead_letter(body)`` receives its body unchanged (the event JSON).
  A message older than ``message_retention_seconds`` is deleted by SQS (counted as expired).

The settings come from ``pipeline_config/pipeline.json`` (``buffer_queue``), the values Terraform deploys.
The messages live here, in memory, only while they are in the queue.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

import pipeline_config
from local_pipeline.aws.limits import BATCH_MAX_ENTRIES, VISIBILITY_TIMEOUT_MAX_SECONDS
from local_pipeline.client_errors import client_error
from local_pipeline.clock import SimulatedClock
from local_pipeline.context import ACCOUNT_ID
from local_pipeline.lambda_service import INVOCATION_PAYLOAD_LIMIT, InvocationTiming, LambdaFunction
from local_pipeline.metrics import MetricsRecorder
from local_pipeline.spill import BodyFile, BodyRef

__all__ = [
    "INVOCATION_PAYLOAD_LIMIT",
    "BufferQueue",
    "BufferQueueSettings",
    "Message",
    "QueueStats",
]

_ENVELOPE_BYTES = len(orjson.dumps({"Records": []}))
_SENDER_ID = "AIDAIENQZJOLO23YVJ4VO"  # an IAM-user style sender id, as SQS reports for the rule's service role


@dataclass(frozen=True)
class BufferQueueSettings:
    """The buffer queue and event source mapping settings, as declared in ``pipeline.json``."""

    batch_size: int
    maximum_batching_window_seconds: int
    maximum_concurrency: int
    max_receive_count: int
    visibility_timeout_seconds: int
    message_retention_seconds: int

    @classmethod
    def from_declarations(cls) -> BufferQueueSettings:
        """Read ``buffer_queue`` from ``pipeline_config/pipeline.json`` (nothing is restated here)."""
        declared = pipeline_config.load()["buffer_queue"]
        return cls(**{name: int(declared[name]) for name in cls.__dataclass_fields__})


@dataclass
class Message:
    """One message in the buffer queue."""

    message_id: str
    body: BodyRef  # in the queue's BodyFile: a backlog of 11 KB bodies stays on disk, not in memory
    md5_of_body: str
    sent_ms: int
    record_bytes: int
    visible_at_ms: int
    receive_count: int = 0
    first_receive_ms: int = 0
    receipt_handle: str = ""
    key: str | None = None  # the sender's own tag (the runner's: the event id)


@dataclass
class QueueStats:
    """What the queue and its event source mapping did."""

    sent: int = 0
    deleted: int = 0
    receives: int = 0
    redeliveries: int = 0
    retried_messages: int = 0
    moved_to_dlq: int = 0
    expired: int = 0
    invocations: int = 0
    failed_invocations: int = 0
    max_in_flight: int = 0
    max_batch: int = 0
    max_batch_bytes: int = 0
    max_age_ms: int = 0
    batches_closed_by: Counter[str] = field(default_factory=Counter)
    #: Deleted messages delivered again (injected sqs-redelivery).
    duplicate_deliveries: int = 0
    #: Messages whose visibility the function changed (a throttled sale's backoff).
    visibility_changes: int = 0


@dataclass(order=True)
class _InFlight:
    ends_ms: int
    sequence: int
    failed: list[Message] = field(compare=False)


class BufferQueue:
    """A standard SQS queue and the event source mapping that feeds ``function`` in batches.

    The runner sends with :meth:`send` at the simulated now, and calls :meth:`step` whenever the clock reaches
    :meth:`next_due`. ``on_deleted(message)`` hears of each message done with (deleted or moved to the DLQ).
    """

    def __init__(
        self,
        settings: BufferQueueSettings,
        *,
        function: LambdaFunction,
        clock: SimulatedClock,
        dead_letter: Callable[[str], None],
        queue_name: str = "sales-buffer-local",
        region: str = "us-east-1",
        timing: InvocationTiming | None = None,
        metrics: MetricsRecorder | None = None,
        dead_letter_queue_name: str | None = None,
        on_done: Callable[[Message], None] | None = None,
        redeliver: Callable[[Message], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.stats = QueueStats()
        self.queue_name = queue_name
        self.arn = f"arn:aws:sqs:{region}:{ACCOUNT_ID}:{queue_name}"
        self._function = function
        self._clock = clock
        self._dead_letter = dead_letter
        self._dead_letter_queue_name = dead_letter_queue_name
        self._region = region
        self._timing = timing or InvocationTiming()
        self._metrics = metrics
        self._on_done = on_done
        # Fault injection (sqs-redelivery): asked at each delete whether this delete is lost (at-least-once).
        self._redeliver = redeliver
        self._bodies = BodyFile()
        self._visible: deque[Message] = deque()
        self._visible_bytes = 0
        self._hidden: list[tuple[int, int, Message]] = []  # (visible again at, sequence, message): a heap
        self._in_flight: list[_InFlight] = []
        self._opened_ms: int | None = None
        self._sequence = itertools.count()
        #: The messages received and not yet done, by their current receipt handle.
        self._by_handle: dict[str, Message] = {}

    # -- the queue -------------------------------------------------------------------------------------------

    def send(self, body: str, *, key: str | None = None) -> str:
        """SendMessage at the simulated now (what the rule's SQS target does); return the message id."""
        now = self._clock.now_ms
        data = body.encode()
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        message = Message(str(uuid.uuid4()), self._bodies.put(data), md5, now, 0, now, key=key)
        message.record_bytes = _record_size(message, body, self.arn, self._region)
        self._visible.append(message)
        self._visible_bytes += message.record_bytes
        self.stats.sent += 1
        self._metric("NumberOfMessagesSent", 1, "Count", self.queue_name)
        self._maybe_open(now)
        return message.message_id

    def depth(self) -> tuple[int, int]:
        """``(visible, not visible)`` messages: ApproximateNumberOfMessagesVisible / NotVisible."""
        in_flight = sum(len(batch.failed) for batch in self._in_flight)
        return len(self._visible), len(self._hidden) + in_flight

    def idle(self) -> bool:
        """Nothing visible, hidden or in flight."""
        return not self._visible and not self._hidden and not self._in_flight

    # -- time ------------------------------------------------------------------------------------------------

    def next_due(self) -> int | None:
        """The simulated moment of the next thing to happen here, or None when idle."""
        candidates = []
        if self._in_flight:
            candidates.append(self._in_flight[0].ends_ms)
        if self._hidden:
            candidates.append(self._hidden[0][0])
        if self._opened_ms is not None:
            candidates.append(self._close_moment())
        return min(candidates) if candidates else None

    def step(self) -> None:
        """Do everything due at the simulated now: end invocations, make messages visible, invoke batches."""
        now = self._clock.now_ms
        while self._in_flight and self._in_flight[0].ends_ms <= now:
            ended = heapq.heappop(self._in_flight)
            for message in ended.failed:
                # Invisible until its visibility timeout (counted from the receive) runs out.
                heapq.heappush(self._hidden, (message.visible_at_ms, next(self._sequence), message))
            self._maybe_open(now)
        while self._hidden and self._hidden[0][0] <= now:
            _, _, message = heapq.heappop(self._hidden)
            self._reappear(message, now)
        while self._opened_ms is not None and self._close_moment() <= now:
            self._invoke_batch(now)
        self._record_depth(now)

    def _reappear(self, message: Message, now: int) -> None:
        if message.receive_count >= self.settings.max_receive_count:
            # The redrive policy moves it on the receive attempt after the limit: the body goes unchanged.
            self.stats.moved_to_dlq += 1
            self._dead_letter(self._body(message))
            if self._dead_letter_queue_name is not None:
                self._metric("NumberOfMessagesSent", 1, "Count", self._dead_letter_queue_name)
            self._done(message)
            return
        message.visible_at_ms = now
        self._visible.append(message)
        self._visible_bytes += message.record_bytes
        self._maybe_open(now)

    def _maybe_open(self, now: int) -> None:
        if self._opened_ms is None and self._visible and len(self._in_flight) < self.settings.maximum_concurrency:
            self._opened_ms = now

    def _close_moment(self) -> int:
        assert self._opened_ms is not None
        if len(self._visible) >= self.settings.batch_size or self._visible_bytes + _ENVELOPE_BYTES > (
            INVOCATION_PAYLOAD_LIMIT
        ):
            return self._opened_ms  # full already: it closes as soon as it opened (or now, if later)
        return self._opened_ms + self.settings.maximum_batching_window_seconds * 1000

    # -- the event source mapping ----------------------------------------------------------------------------

    def _invoke_batch(self, now: int) -> None:
        self._opened_ms = None
        batch, reason = self._take_batch(now)
        if not batch:
            self._maybe_open(now)
            return
        self.stats.batches_closed_by[reason] += 1
        records = [self._receive(message, now) for message in batch]
        event = {"Records": records}
        payload = len(orjson.dumps(event))
        self.stats.max_batch = max(self.stats.max_batch, len(batch))
        self.stats.max_batch_bytes = max(self.stats.max_batch_bytes, payload)
        duration = self._timing.duration_ms(len(batch))
        self.stats.invocations += 1
        failed_ids = self._call(event, {m.message_id for m in batch}, duration)
        duration = max(duration, self._function.last_duration_ms)  # waits for throughput included
        failed = [m for m in batch if m.message_id in failed_ids]
        for message in batch:
            if message.message_id not in failed_ids:
                self.stats.deleted += 1
                self._metric("NumberOfMessagesDeleted", 1, "Count", self.queue_name)
                if self._redeliver is not None and self._redeliver(message):
                    # A standard queue is at-least-once: the deleted message comes back when its visibility
                    # timeout runs out, same messageId, next receive count (and past the limit, the redrive).
                    self.stats.duplicate_deliveries += 1
                    failed.append(message)
                    continue
                self._done(message)
        heapq.heappush(self._in_flight, _InFlight(now + duration, next(self._sequence), failed))
        self.stats.max_in_flight = max(self.stats.max_in_flight, len(self._in_flight))
        self._maybe_open(now)

    def _take_batch(self, now: int) -> tuple[list[Message], str]:
        batch: list[Message] = []
        size = _ENVELOPE_BYTES
        reason = "window"
        retention_ms = self.settings.message_retention_seconds * 1000
        while self._visible:
            message = self._visible[0]
            if len(batch) == self.settings.batch_size:
                reason = "batch_size"
                break
            if batch and size + 1 + message.record_bytes > INVOCATION_PAYLOAD_LIMIT:
                reason = "payload"
                break
            self._visible.popleft()
            self._visible_bytes -= message.record_bytes
            if now - message.sent_ms > retention_ms:
                self.stats.expired += 1
                self._done(message)
                continue
            size += message.record_bytes + (1 if batch else 0)
            batch.append(message)
        return batch, reason

    def _receive(self, message: Message, now: int) -> dict[str, Any]:
        message.receive_count += 1
        self.stats.receives += 1
        if message.receive_count == 1:
            message.first_receive_ms = now
        else:
            self.stats.redeliveries += 1
            if message.receive_count == 2:
                self.stats.retried_messages += 1
        self._by_handle.pop(message.receipt_handle, None)
        message.receipt_handle = uuid.uuid4().hex + uuid.uuid4().hex
        self._by_handle[message.receipt_handle] = message
        message.visible_at_ms = now + self.settings.visibility_timeout_seconds * 1000
        self.stats.max_age_ms = max(self.stats.max_age_ms, now - message.sent_ms)
        return sqs_record(message, self._body(message), self.arn, self._region)

    def _body(self, message: Message) -> str:
        return self._bodies.get(message.body).decode()

    def _call(self, event: dict[str, Any], ids: set[str], duration_ms: int) -> set[str]:
        """Invoke; return the message ids that failed (all of them when the invocation failed as a whole)."""
        try:
            response = self._function.invoke(event, duration_ms=duration_ms)
        except Exception:  # the handler raising fails the whole batch, as Lambda sees it
            self.stats.failed_invocations += 1
            return ids
        failures = _batch_item_failures(response, ids)
        if failures is None:
            self.stats.failed_invocations += 1
            return ids
        return failures

    def change_visibility(self, entries: Sequence[Mapping[str, Any]], now_ms: int) -> dict[str, Any]:
        """ChangeMessageVisibilityBatch (at most 10 entries) from a function that received these messages: each
        becomes visible again ``VisibilityTimeout`` seconds after ``now_ms`` (Amazon SQS API Reference,
        "ChangeMessageVisibilityBatch"; the timeout is 0 to 43,200 s)."""
        if not 1 <= len(entries) <= BATCH_MAX_ENTRIES:
            raise client_error(
                "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are {BATCH_MAX_ENTRIES}. You have sent {len(entries)}.",
                "ChangeMessageVisibilityBatch",
            )
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for entry in entries:
            message = self._by_handle.get(str(entry["ReceiptHandle"]))
            timeout = int(entry["VisibilityTimeout"])
            if message is None:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"})
            elif not 0 <= timeout <= VISIBILITY_TIMEOUT_MAX_SECONDS:
                failed.append({"Id": entry["Id"], "SenderFault": True, "Code": "InvalidParameterValue"})
            else:
                message.visible_at_ms = now_ms + timeout * 1000
                self.stats.visibility_changes += 1
                successful.append({"Id": entry["Id"]})
        return {"Successful": successful, "Failed": failed}

    def _done(self, message: Message) -> None:
        self._by_handle.pop(message.receipt_handle, None)
        if self._on_done is not None:
            self._on_done(message)

    # -- metrics ---------------------------------------------------------------------------------------------

    def _metric(self, name: str, value: float, unit: str, queue: str) -> None:
        if self._metrics is not None:
            self._metrics.add("AWS/SQS", name, value, unit, self._clock.now_ms, {"QueueName": queue})

    def _record_depth(self, now: int) -> None:
        if self._metrics is None:
            return
        visible, hidden = self.depth()
        oldest = min((m.sent_ms for m in self._visible), default=None) if self._visible else None
        dims = {"QueueName": self.queue_name}
        self._metrics.add("AWS/SQS", "ApproximateNumberOfMessagesVisible", visible, "Count", now, dims)
        self._metrics.add("AWS/SQS", "ApproximateNumberOfMessagesNotVisible", hidden, "Count", now, dims)
        age = (now - oldest) / 1000 if oldest is not None else 0
        self._metrics.add("AWS/SQS", "ApproximateAgeOfOldestMessage", age, "Seconds", now, dims)


def sqs_record(message: Message, body: str, queue_arn: str, region: str) -> dict[str, Any]:
    """One record of the SQS event Lambda's event source mapping sends (AWS Lambda DG, "Using Lambda with
    Amazon SQS": example standard queue message event)."""
    return {
        "messageId": message.message_id,
        "receiptHandle": message.receipt_handle,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(message.receive_count),
            "SentTimestamp": str(message.sent_ms),
            "SenderId": _SENDER_ID,
            "ApproximateFirstReceiveTimestamp": str(message.first_receive_ms or message.sent_ms),
        },
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _record_size(message: Message, body: str, queue_arn: str, region: str) -> int:
    """The record's JSON size in the event, with the widest attribute values it can carry (a 64-character
    receipt handle, a two-digit receive count), so a batch sized with it never exceeds the payload limit."""
    sizing = Message(
        message.message_id, message.body, message.md5_of_body, message.sent_ms, 0, 0, 99, message.sent_ms, "r" * 64
    )
    return len(orjson.dumps(sqs_record(sizing, body, queue_arn, region)))


def _batch_item_failures(response: Any, ids: set[str]) -> set[str] | None:
    """The failed message ids of a partial batch response; None when Lambda would fail the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, Mapping) else None
        if not isinstance(identifier, str) or not identifier or identifier not in ids:
            return None
        failed.add(identifier)
    return failed
