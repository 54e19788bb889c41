"""Thin AWS adapters: the sales table, the Firehose sender and the dead-letter queue.

Each takes its boto3 client from the caller (created once per container, injectable in tests) and turns SDK
failures into the domain errors the handler acts on. The bulk operations (``submit``) split their input into the
service's batch calls, run those calls on the caller's thread pool and report, per input position, what was not
written and why: a failed call fails only the entries it carried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from . import dead_letter_body
from .errors import DeadLetterNotSent, DeadLetterTooLarge, DeliveryIncomplete, WriteIncomplete

#: PutRecordBatch service limits.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
#: SQS's classic message size limit (the queue's default in Terraform); bodies are kept under it.
MAX_SQS_MESSAGE_BYTES = 256 * 1024
#: BatchWriteItem and SendMessageBatch service limits.
MAX_WRITE_REQUESTS = 25
MAX_SQS_BATCH_ENTRIES = 10


@dataclass
class BulkReport:
    """What a bulk operation did: the input positions not written (with why), calls made, entries resent."""

    failed: dict[int, BaseException] = field(default_factory=dict)
    calls: int = 0
    resent: int = 0
    error_codes: list[str] = field(default_factory=list)
    #: Per input position, the id the service gave the entry (SQS message ids).
    ids: dict[int, str] = field(default_factory=dict)

    def absorb(self, other: BulkReport) -> None:
        """Add ``other`` (another chunk of the same operation) to this report."""
        self.failed.update(other.failed)
        self.calls += other.calls
        self.resent += other.resent
        self.error_codes.extend(other.error_codes)
        self.ids.update(other.ids)


class Pending:
    """Chunk calls submitted to a pool; :meth:`result` waits for all of them and merges their reports."""

    def __init__(self, futures: list[Future[BulkReport]], report: BulkReport | None = None) -> None:
        self._futures = futures
        self._report = report or BulkReport()

    def result(self) -> BulkReport:
        """The merged report. A ``BaseException`` in a call (not an SDK error) propagates: nothing can clean up."""
        for future in self._futures:
            self._report.absorb(future.result())
        self._futures = []
        return self._report


def _submit(executor: Executor, tasks: Sequence[Callable[[], BulkReport]], report: BulkReport | None = None) -> Pending:
    return Pending([executor.submit(task) for task in tasks], report)


class Backoff:
    """Capped exponential backoff with full jitter, shared by the resend loops."""

    def __init__(
        self,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        sleep: Callable[[float], None],
        jitter: Callable[[float, float], float],
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.jitter = jitter

    def pause(self, attempt: int) -> None:
        """Sleep before ``attempt`` (2, 3, ...)."""
        self.sleep(self.jitter(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2))))


def _key_of(request: dict[str, Any], key_names: Sequence[str]) -> tuple[Any, ...]:
    item = request["PutRequest"]["Item"] if "PutRequest" in request else request["DeleteRequest"]["Key"]
    return tuple(next(iter(item[name].values())) for name in key_names)


class BatchWriter:
    """BatchWriteItem to one table: 25 requests a call, ``UnprocessedItems`` resent with backoff.

    A resend repeats a put or a delete of the same key, so it is harmless even if DynamoDB had in fact applied it.
    Requests still unprocessed after ``max_attempts`` calls fail with :class:`WriteIncomplete`; a call that raises
    (throttled past botocore's retries, table missing) fails the requests it carried.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        key_names: Sequence[str],
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._client = client
        self.table_name = table_name
        self.key_names = tuple(key_names)
        self.backoff = Backoff(max_attempts, base_delay, max_delay, sleep, jitter)

    def submit(self, requests: Sequence[dict[str, Any]], executor: Executor) -> Pending:
        """Start writing ``requests`` (``PutRequest`` / ``DeleteRequest`` entries, distinct keys)."""
        indexed = list(enumerate(requests))
        chunks = [indexed[i : i + MAX_WRITE_REQUESTS] for i in range(0, len(indexed), MAX_WRITE_REQUESTS)]
        return _submit(executor, [partial(self._write_chunk, chunk) for chunk in chunks])

    def _write_chunk(self, chunk: list[tuple[int, dict[str, Any]]]) -> BulkReport:
        report = BulkReport()
        pending = chunk
        for attempt in range(1, self.backoff.max_attempts + 1):
            if attempt > 1:
                report.resent += len(pending)
                self.backoff.pause(attempt)
            report.calls += 1
            try:
                response = self._client.batch_write_item(RequestItems={self.table_name: [r for _, r in pending]})
            except Exception as exc:  # the whole call failed: only the requests it carried fail
                report.failed.update((position, exc) for position, _ in pending)
                return report
            unprocessed = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not unprocessed:
                return report
            keys = {_key_of(r, self.key_names) for r in unprocessed}
            matched = [(position, r) for position, r in pending if _key_of(r, self.key_names) in keys]
            # Unmatched keys would mean a response we cannot read: resending everything is safe (idempotent).
            pending = matched if len(matched) == len(unprocessed) else pending
        error = WriteIncomplete(self.table_name, len(pending), report.resent)
        report.failed.update((position, error) for position, _ in pending)
        return report


class SalesStore:
    """The sales table. Items are deterministic (but for ``ttl``), so rewriting one on a retry is idempotent."""

    def __init__(self, client: Any, table_name: str, writer: BatchWriter | None = None) -> None:
        self._client = client
        self.table_name = table_name
        self.writer = writer or BatchWriter(client, table_name, ("PK", "SK"))

    def put(self, item: dict[str, dict[str, Any]]) -> None:
        """Write one ``item``; SDK errors propagate."""
        self._client.put_item(TableName=self.table_name, Item=item)

    def submit(self, items: Sequence[dict[str, dict[str, Any]]], executor: Executor) -> Pending:
        """Start writing ``items``: a lone item with PutItem (nothing to batch), more with BatchWriteItem."""
        if len(items) == 1:
            return _submit(executor, [partial(self._put_one, items[0])])
        return self.writer.submit([{"PutRequest": {"Item": item}} for item in items], executor)

    def _put_one(self, item: dict[str, dict[str, Any]]) -> BulkReport:
        report = BulkReport(calls=1)
        try:
            self.put(item)
        except Exception as exc:
            report.failed[0] = exc
        return report


@dataclass
class SendReport:
    """What one :meth:`FirehoseSender.send` call did."""

    records: int = 0
    calls: int = 0
    resent: int = 0
    error_codes: list[str] = field(default_factory=list)


class FirehoseSender:
    """PutRecordBatch with the service limits and partial-failure handling boto3 leaves to the caller.

    A successful call can still reject entries (``FailedPutCount > 0``); only those are resent, with capped
    exponential backoff and full jitter. Whatever still fails after ``max_attempts`` calls is reported (or, from
    :meth:`send`, raised) as :class:`DeliveryIncomplete`.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._client = client
        self.stream_name = stream_name
        self.backoff = Backoff(max_attempts, base_delay, max_delay, sleep, jitter)

    def send(self, records: Sequence[bytes]) -> SendReport:
        """Deliver every record or raise (the failed call's error, or :class:`DeliveryIncomplete`)."""
        report = SendReport(records=len(records))
        for positions in chunk_positions(records):
            chunk = self._deliver_chunk([(i, records[i]) for i in positions])
            report.calls += chunk.calls
            report.resent += chunk.resent
            report.error_codes.extend(chunk.error_codes)
            if chunk.failed:
                error = next(iter(chunk.failed.values()))
                if isinstance(error, DeliveryIncomplete):
                    raise DeliveryIncomplete(self.stream_name, len(chunk.failed), report.error_codes, report.resent)
                raise error
        return report

    def submit(self, records: Sequence[bytes], executor: Executor) -> Pending:
        """Start delivering ``records``, one PutRecordBatch chunk per pool task; failures reported per position."""
        report = BulkReport()
        sendable: list[int] = []
        for position, data in enumerate(records):
            if len(data) > MAX_RECORD_BYTES:
                report.failed[position] = ValueError(_too_large(len(data)))
            else:
                sendable.append(position)
        kept = [records[i] for i in sendable]
        tasks = [
            partial(self._deliver_chunk, [(sendable[i], kept[i]) for i in positions])
            for positions in chunk_positions(kept)
        ]
        return _submit(executor, tasks, report)

    def _deliver_chunk(self, chunk: list[tuple[int, bytes]]) -> BulkReport:
        report = BulkReport()
        pending = chunk
        for attempt in range(1, self.backoff.max_attempts + 1):
            if attempt > 1:
                report.resent += len(pending)
                self.backoff.pause(attempt)
            report.calls += 1
            try:
                response = self._client.put_record_batch(
                    DeliveryStreamName=self.stream_name, Records=[{"Data": data} for _, data in pending]
                )
            except Exception as exc:  # the whole call failed: only the records it carried fail
                report.failed.update((position, exc) for position, _ in pending)
                return report
            if not response.get("FailedPutCount"):
                return report
            failed = [
                (entry_of, entry.get("ErrorCode", "Unknown"))
                for entry_of, entry in zip(pending, response["RequestResponses"], strict=True)
                if entry.get("ErrorCode")
            ]
            report.error_codes.extend(code for _, code in failed)
            pending = [entry_of for entry_of, _ in failed]
            if not pending:  # FailedPutCount without any entry marked: nothing identifiable to resend
                return report
        error = DeliveryIncomplete(self.stream_name, len(pending), report.error_codes, report.resent)
        report.failed.update((position, error) for position, _ in pending)
        return report


def chunk_positions(records: Sequence[bytes]) -> Iterator[list[int]]:
    """Positions of ``records`` grouped into PutRecordBatch calls of at most 500 records and 4 MiB."""
    chunk: list[int] = []
    size = 0
    for position, data in enumerate(records):
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(_too_large(len(data)))
        if chunk and (len(chunk) == MAX_BATCH_RECORDS or size + len(data) > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(position)
        size += len(data)
    if chunk:
        yield chunk


def chunked(records: Sequence[bytes]) -> Iterator[list[bytes]]:
    """Split into PutRecordBatch calls of at most 500 records and 4 MiB; reject a record over 1,000 KiB."""
    for positions in chunk_positions(records):
        yield [records[i] for i in positions]


def _too_large(size: int) -> str:
    return f"Firehose record of {size} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"


@dataclass(frozen=True)
class DeadLetter:
    """An event that must never be retried, with the error that rejected it."""

    event: Any
    error: dict[str, Any]
    error_type: str


class DeadLetterQueue:
    """The SQS queue where events that must never be retried are kept for a person to inspect.

    The body is ``{"errorType", "error", "event"}``. An event whose JSON does not fit one message (EventBridge
    allows 256 KB events; escaping can grow them) is kept gzip-compressed and base64-encoded under
    ``eventGzipBase64`` instead, with its ``eventId``; nothing is truncated. Letters go out with SendMessageBatch
    (10 a call, within the size limit); entries SQS fails on its side are resent with backoff.
    """

    def __init__(
        self,
        client: Any,
        queue_url: str,
        max_message_bytes: int = MAX_SQS_MESSAGE_BYTES,
        *,
        max_attempts: int = 3,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._client = client
        self.queue_url = queue_url
        self.max_message_bytes = max_message_bytes
        self.backoff = Backoff(max_attempts, base_delay, max_delay, sleep, jitter)

    def body(self, letter: DeadLetter) -> str:
        """The message body for ``letter``, compressed if it would not fit; :class:`DeadLetterTooLarge` if never."""
        return dead_letter_body.encode(letter.event, letter.error, letter.error_type, self.max_message_bytes)

    def submit(self, letters: Sequence[DeadLetter], executor: Executor) -> Pending:
        """Start sending ``letters``; the report maps each position to its SQS message id or its failure."""
        report = BulkReport()
        chunks: list[list[tuple[int, str, str]]] = [[]]
        size = 0
        for position, letter in enumerate(letters):
            try:
                body = self.body(letter)
            except DeadLetterTooLarge as exc:
                report.failed[position] = exc
                continue
            length = len(body.encode())
            if chunks[-1] and (len(chunks[-1]) == MAX_SQS_BATCH_ENTRIES or size + length > self.max_message_bytes):
                chunks.append([])
                size = 0
            chunks[-1].append((position, body, letter.error_type))
            size += length
        return _submit(executor, [partial(self._send_chunk, chunk) for chunk in chunks if chunk], report)

    def _send_chunk(self, chunk: list[tuple[int, str, str]]) -> BulkReport:
        report = BulkReport()
        pending = {str(position): (position, body, error_type) for position, body, error_type in chunk}
        for attempt in range(1, self.backoff.max_attempts + 1):
            if attempt > 1:
                report.resent += len(pending)
                self.backoff.pause(attempt)
            report.calls += 1
            try:
                response = self._client.send_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {
                            "Id": entry_id,
                            "MessageBody": body,
                            "MessageAttributes": {"errorType": {"DataType": "String", "StringValue": error_type}},
                        }
                        for entry_id, (_, body, error_type) in pending.items()
                    ],
                )
            except Exception as exc:  # the whole call failed: only the letters it carried fail
                report.failed.update((position, exc) for position, _, _ in pending.values())
                return report
            for sent in response.get("Successful", []):
                report.ids[pending.pop(sent["Id"])[0]] = str(sent["MessageId"])
            for refused in response.get("Failed", []):
                report.error_codes.append(refused.get("Code", "Unknown"))
                if refused.get("SenderFault"):  # our request is wrong: resending the same entry cannot help
                    position = pending.pop(refused["Id"])[0]
                    report.failed[position] = DeadLetterNotSent(self.queue_url, refused.get("Code", "Unknown"))
            if not pending:
                return report
        for position, _, _ in pending.values():
            report.failed[position] = DeadLetterNotSent(
                self.queue_url, (report.error_codes or ["Unknown"])[-1], "after resends"
            )
        return report
