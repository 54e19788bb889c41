"""A batch of sale events through validation, idempotency claims and batched writes: the fan-out's one code path.

Direct mode hands over a batch of one EventBridge event; queue mode the bodies of an SQS batch. Each message gets
its own :class:`Outcome`; a failure never spills over to a neighbour. The AWS calls of a batch run in four
stages, each stage's calls concurrently on the container's thread pool:

1. the idempotency claims (one conditional PutItem per distinct sale) and the dead letters (SendMessageBatch);
   while they are in flight, each sale's item and Firehose record are built (CPU work that would otherwise
   wait for the claims to come back; a duplicate's are thrown away);
2. the sales items of the sales claimed (BatchWriteItem, 25 a call; a lone item with PutItem);
3. the Firehose records of the items written (PutRecordBatch, 500 records / 4 MiB a call);
4. the completions of the sales whose item and record were both written, and the releases of the others
   (BatchWriteItem to the idempotency table).

A sale is done only when its item and its record are written. Copies of one sale inside a batch (a redelivered
event, or a re-published one under a new id) are grouped before claiming: the first copy is claimed and written,
the others follow it. When it is done (or was done before), they are duplicates. When it fails or is held by
another invocation, they are failed too, so every copy's message is retried and the sale can never be lost
(the retry finds the sale done, or does it).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import orjson

from .adapters import DeadLetter, DeadLetterQueue, FirehoseSender, Pending, SalesStore
from .claims import Claim, IdempotencyRecords
from .errors import InvalidSaleEvent
from .flow_control import is_throughput
from .sale import Sale, firehose_record, idempotency_key, sales_item
from .validation import SaleValidator

OutcomeKind = Literal["processed", "duplicate", "rejected", "in_progress", "failed"]
_E = TypeVar("_E", bound=BaseException)


@dataclass
class Message:
    """One event to fan out: the parsed event (or the raw body that would not parse) and its SQS message id."""

    message_id: str | None
    event: Any
    unreadable: InvalidSaleEvent | None = None
    #: The SQS receipt handle and receive count (queue mode), for backing a throttled message's visibility off.
    receipt_handle: str | None = None
    receive_count: int = 1

    @classmethod
    def from_sqs_record(cls, record: dict[str, Any]) -> Message:
        """The EventBridge event an SQS target of a rule received, as the message ``body`` (JSON)."""
        message_id = record.get("messageId")
        handle = record.get("receiptHandle")
        try:
            count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError, AttributeError):
            count = 1
        body = record.get("body")
        if not isinstance(body, str):
            problem = InvalidSaleEvent("body", "must be a string holding the event JSON", body)
            return cls(message_id, body, problem, handle, count)
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            try:  # what orjson refuses but JSON parsers accept (NaN, integers past 64 bits): the validator decides
                event = json.loads(body)
            except ValueError as exc:
                return cls(message_id, body, InvalidSaleEvent("body", f"is not JSON ({exc})", body), handle, count)
        return cls(message_id, event, None, handle, count)


@dataclass
class Outcome:
    """What became of one message."""

    message: Message
    kind: OutcomeKind = "failed"
    sale: Sale | None = None
    #: The idempotency record id of the sale.
    record_id: str | None = None
    #: Why the message was rejected (InvalidSaleEvent) or failed (the SDK error or the domain error).
    error: BaseException | None = None
    #: For a duplicate: the event id of the copy that was processed.
    first_event_id: str | None = None
    dead_letter_id: str | None = None
    #: True for a later copy of a sale that appeared earlier in the same batch.
    in_batch_copy: bool = False
    #: The sale's item and Firehose record, built while its claim is in flight (the record, or why none could
    #: be built: that fails this sale alone, at the delivery stage, as it always did).
    item: dict[str, dict[str, Any]] | None = None
    record: bytes | Exception | None = None

    @property
    def retry(self) -> bool:
        """Whether the message must come again (listed in ``batchItemFailures`` / raised in direct mode)."""
        return self.kind in ("failed", "in_progress")

    @property
    def throttled(self) -> bool:
        """Whether it failed only because DynamoDB or Firehose had no capacity for it in this invocation."""
        return self.kind == "failed" and is_throughput(self.error)


@dataclass
class BatchResult:
    """The outcomes in message order, plus what the batch cost."""

    outcomes: list[Outcome]
    calls: int = 0
    firehose_resends: int = 0
    #: DynamoDB calls resent in place (throttled claims, puts and BatchWriteItem calls).
    dynamodb_resends: int = 0
    #: Sales done whose completion record could not be written (their claim lapses at its in-progress expiry).
    unsettled: list[tuple[Outcome, BaseException]] = field(default_factory=list)
    #: Failed sales whose claim could not be released (it lapses at its in-progress expiry).
    unreleased: list[tuple[Outcome, BaseException]] = field(default_factory=list)


class SaleBatch:
    """The collaborators one container builds once; :meth:`process` runs a batch through them."""

    def __init__(
        self,
        validator: SaleValidator,
        store: SalesStore,
        sender: FirehoseSender,
        dead_letters: DeadLetterQueue,
        records: IdempotencyRecords,
        *,
        executor: Executor,
        margin_seconds: float = 0.0,
        embedding_encoding: str | None = None,
    ) -> None:
        self.margin_seconds = margin_seconds
        #: How sales items store their embedding (None: pipeline.json's ``dynamodb.embedding_encoding``).
        self.embedding_encoding = embedding_encoding
        self.validator = validator
        self.store = store
        self.sender = sender
        self.dead_letters = dead_letters
        self.records = records
        self.executor = executor

    def process(self, messages: Sequence[Message], remaining_time_in_millis: int | None) -> BatchResult:
        """Fan out ``messages``; ``remaining_time_in_millis`` bounds how long this invocation's claims hold and
        how long throughput refusals are resent (up to ``margin_seconds`` before it)."""
        budget = None if remaining_time_in_millis is None else remaining_time_in_millis / 1000 - self.margin_seconds
        for backoff in (self.sender.backoff, self.store.writer.backoff, self.records.writer.backoff):
            backoff.start(budget)
        result = BatchResult([Outcome(message) for message in messages])
        outcomes = result.outcomes
        letters: list[tuple[Outcome, InvalidSaleEvent]] = []
        first_copy: dict[str, Outcome] = {}
        copies: list[tuple[Outcome, Outcome]] = []
        for outcome in outcomes:
            problem = outcome.message.unreadable
            if problem is None:
                try:
                    outcome.sale = self.validator.validate(outcome.message.event)
                except InvalidSaleEvent as exc:
                    problem = _without_traceback(exc)
            if problem is not None or outcome.sale is None:
                letters.append((outcome, problem or InvalidSaleEvent("event", "is not a sale")))
                continue
            outcome.record_id = self.records.record_id(idempotency_key(outcome.sale))
            if outcome.record_id in first_copy:
                copies.append((outcome, first_copy[outcome.record_id]))
            else:
                first_copy[outcome.record_id] = outcome

        pending = self._start_claims(list(first_copy.values()), letters, remaining_time_in_millis)
        _prepare(first_copy.values(), self.embedding_encoding)
        claimed = self._finish_claims(pending, letters, result)
        written = self._write_items(claimed, result)
        delivered = self._deliver(written, result)
        self._settle(claimed, delivered, result)
        result.dynamodb_resends = self.store.writer.backoff.resends + self.records.writer.backoff.resends
        for copy, first in copies:
            _follow(copy, first)
        return result

    def _start_claims(
        self,
        sales: list[Outcome],
        letters: list[tuple[Outcome, InvalidSaleEvent]],
        remaining_time_in_millis: int | None,
    ) -> _PendingClaims:
        pending_letters = self.dead_letters.submit(
            [DeadLetter(o.message.event, exc.as_dict(), type(exc).__name__) for o, exc in letters], self.executor
        )
        futures = [
            (outcome, self.executor.submit(self.records.claim, str(outcome.record_id), remaining_time_in_millis))
            for outcome in sales
        ]
        return _PendingClaims(futures, pending_letters)

    def _finish_claims(
        self, pending: _PendingClaims, letters: list[tuple[Outcome, InvalidSaleEvent]], result: BatchResult
    ) -> list[tuple[Outcome, Claim]]:
        claimed: list[tuple[Outcome, Claim]] = []
        for outcome, future in pending.claims:
            result.calls += 1
            try:
                claim = future.result()
            except Exception as exc:  # the claim's call failed (table missing, throttled): this sale only
                outcome.error = _without_traceback(exc)
                continue
            if claim.status == "completed":
                outcome.kind = "duplicate"
                outcome.first_event_id = (claim.response or {}).get("eventId")
            elif claim.status == "in_progress":
                outcome.kind = "in_progress"
            else:
                claimed.append((outcome, claim))
        report = pending.letters.result()
        result.calls += report.calls
        for position, (outcome, problem) in enumerate(letters):
            if position in report.failed:  # not kept anywhere yet: the message must come again
                outcome.error = report.failed[position]
            else:
                outcome.kind, outcome.error = "rejected", problem
                outcome.dead_letter_id = report.ids.get(position)
        return claimed

    def _write_items(self, claimed: list[tuple[Outcome, Claim]], result: BatchResult) -> list[tuple[Outcome, Claim]]:
        items = [_item(outcome) for outcome, _ in claimed]
        report = self.store.submit(items, self.executor).result() if items else None
        if report is None:
            return []
        result.calls += report.calls
        for position, (outcome, _) in enumerate(claimed):
            outcome.error = report.failed.get(position)
        return [(outcome, claim) for outcome, claim in claimed if outcome.error is None]

    def _deliver(self, written: list[tuple[Outcome, Claim]], result: BatchResult) -> list[tuple[Outcome, Claim]]:
        records: list[bytes] = []
        sendable: list[tuple[Outcome, Claim]] = []
        for outcome, claim in written:
            if not isinstance(outcome.record, bytes):  # a value no encoder takes fails its own sale, not the batch
                outcome.error = outcome.record or ValueError("no Firehose record built")
                continue
            records.append(outcome.record)
            sendable.append((outcome, claim))
        if not sendable:
            return []
        keys = [_sale(outcome).sale_id for outcome, _ in sendable]
        report = self.sender.submit(records, self.executor, keys).result()
        result.calls += report.calls
        result.firehose_resends += report.resent
        for position, (outcome, _) in enumerate(sendable):
            outcome.error = report.failed.get(position)
            if outcome.error is None:
                outcome.kind = "processed"
        return [(outcome, claim) for outcome, claim in written if outcome.kind == "processed"]

    def _settle(
        self, claimed: list[tuple[Outcome, Claim]], delivered: list[tuple[Outcome, Claim]], result: BatchResult
    ) -> None:
        done = {id(outcome) for outcome, _ in delivered}
        requests: list[dict[str, Any]] = []
        owners: list[tuple[Outcome, bool]] = []
        for outcome, claim in claimed:
            if id(outcome) in done:
                sale = _sale(outcome)
                response = {"outcome": "processed", "eventId": sale.event_id, "saleId": sale.sale_id}
                requests.append(self.records.completion(claim, response))
            else:
                requests.append(self.records.release(claim))
            owners.append((outcome, id(outcome) in done))
        if not requests:
            return
        report = self.records.submit(requests, self.executor).result()
        result.calls += report.calls
        for position, error in report.failed.items():
            outcome, completed = owners[position]
            (result.unsettled if completed else result.unreleased).append((outcome, error))


@dataclass
class _PendingClaims:
    """The claims and dead letters of a batch, in flight."""

    claims: list[tuple[Outcome, Future[Claim]]]
    letters: Pending


def _prepare(sales: Iterable[Outcome], embedding_encoding: str | None) -> None:
    """Build each sale's item and Firehose record (see the module's stage 1)."""
    now = time.time()
    for outcome in sales:
        sale = _sale(outcome)
        outcome.item = sales_item(sale, now, embedding_encoding)
        try:
            outcome.record = firehose_record(sale)
        except (TypeError, ValueError) as exc:
            outcome.record = _without_traceback(exc)


def _without_traceback(exc: _E) -> _E:
    """``exc`` to keep on an :class:`Outcome`, without its traceback (nor those of the exceptions it was raised
    from or while handling).

    The traceback starts at a frame of this batch (:meth:`SaleBatch.process`, :func:`_prepare`,
    ``_finish_claims``), and a frame keeps its caller's frame: their locals hold every outcome of the batch,
    this one included. Kept, that reference cycle holds the whole batch (each event's parsed 1,024-float
    embedding, ~50 KB a sale) until the garbage collector's next full pass, long after the batch is done
    (clearing the frames' locals once the batch is done is not enough: a cleared frame still holds its
    caller). What the outcome reports and logs is the exception's type and message: the field and value an
    event was rejected for, the SDK error's code and message. In direct mode the re-raised error's stack
    therefore starts at the handler.
    """
    for link in _chain(exc):
        link.__traceback__ = None
    return exc


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and every exception it was raised from or while handling, each once."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        link = pending.pop()
        if link is None or any(link is seen for seen in found):
            continue
        found.append(link)
        pending += [link.__cause__, link.__context__]
    return found


def _item(outcome: Outcome) -> dict[str, dict[str, Any]]:
    if outcome.item is None:  # pragma: no cover - _prepare builds every claimed sale's item
        raise ValueError("outcome without an item")
    return outcome.item


def _follow(copy: Outcome, first: Outcome) -> None:
    copy.in_batch_copy = True
    if first.kind in ("processed", "duplicate"):
        copy.kind = "duplicate"
        copy.first_event_id = first.first_event_id or _sale(first).event_id
    else:
        copy.kind, copy.error = first.kind, first.error


def _sale(outcome: Outcome) -> Sale:
    if outcome.sale is None:  # pragma: no cover - only validated outcomes reach the write stages
        raise ValueError("outcome without a sale")
    return outcome.sale
