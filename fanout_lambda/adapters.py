"""Thin AWS adapters: the sales table, the Firehose sender and the dead-letter queue.

Each takes its boto3 client from the caller (created once per container, injectable in tests) and turns SDK
failures into the domain errors the handler acts on. The bulk operations (``submit``) split their input into the
service's batch calls, run those calls on the caller's thread pool and report, per input position, what was not
written and why: a failed call fails only the entries it carried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import dead_letter_body
from .bulk import BulkReport, Pending, submit_tasks
from .errors import DeadLetterNotSent, DeadLetterTooLarge, WriteIncomplete
from .firehose_sender import (
    MAX_BATCH_BYTES,
    MAX_BATCH_RECORDS,
    MAX_RECORD_BYTES,
    FirehoseSender,
    SendReport,
    chunk_positions,
    chunked,
    stream_index,
)
from .flow_control import Backoff, is_throughput, retry_throughput

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "MAX_SQS_BATCH_ENTRIES",
    "MAX_SQS_MESSAGE_BYTES",
    "MAX_WRITE_REQUESTS",
    "Backoff",
    "BatchWriter",
    "BufferQueue",
    "BulkReport",
    "DeadLetter",
    "DeadLetterQueue",
    "FirehoseSender",
    "Pending",
    "SalesStore",
    "SendReport",
    "chunk_positions",
    "chunked",
    "stream_index",
]

#: SQS's classic message size limit (the queue's default in Terraform); bodies are kept under it.
MAX_SQS_MESSAGE_BYTES = 256 * 1024
#: BatchWriteItem and SendMessageBatch service limits.
MAX_WRITE_REQUESTS = 25
MAX_SQS_BATCH_ENTRIES = 10


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
        return submit_tasks(executor, [partial(self._write_chunk, chunk) for chunk in chunks])

    def _write_chunk(self, chunk: list[tuple[int, dict[str, Any]]]) -> BulkReport:
        report = BulkReport()
        pending = chunk
        attempt = 1
        while True:
            if attempt > 1:
                # UnprocessedItems and a throttled call are DynamoDB's refusals for throughput.
                if not self.backoff.retry(attempt, throughput=True):
                    break
                report.resent += len(pending)
            report.calls += 1
            try:
                response = self._client.batch_write_item(RequestItems={self.table_name: [r for _, r in pending]})
            except Exception as exc:  # the whole call failed: only the requests it carried fail
                if is_throughput(exc):
                    attempt += 1
                    continue
                report.failed.update((position, exc) for position, _ in pending)
                return report
            unprocessed = response.get("UnprocessedItems", {}).get(self.table_name, [])
            if not unprocessed:
                return report
            keys = {_key_of(r, self.key_names) for r in unprocessed}
            matched = [(position, r) for position, r in pending if _key_of(r, self.key_names) in keys]
            # Unmatched keys would mean a response we cannot read: resending everything is safe (idempotent).
            pending = matched if len(matched) == len(unprocessed) else pending
            attempt += 1
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
        """Write one ``item``, resent while DynamoDB refuses it for throughput; other SDK errors propagate."""
        retry_throughput(lambda: self._client.put_item(TableName=self.table_name, Item=item), self.writer.backoff)

    def submit(self, items: Sequence[dict[str, dict[str, Any]]], executor: Executor) -> Pending:
        """Start writing ``items``: a lone item with PutItem (nothing to batch), more with BatchWriteItem."""
        if len(items) == 1:
            return submit_tasks(executor, [partial(self._put_one, items[0])])
        return self.writer.submit([{"PutRequest": {"Item": item}} for item in items], executor)

    def _put_one(self, item: dict[str, dict[str, Any]]) -> BulkReport:
        report = BulkReport(calls=1)
        try:
            self.put(item)
        except Exception as exc:
            report.failed[0] = exc
        return report


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
        return submit_tasks(executor, [partial(self._send_chunk, chunk) for chunk in chunks if chunk], report)

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


class BufferQueue:
    """The SQS buffer queue the batches come from (queue trigger): a throttled message is made visible again
    after a backoff of its own (``ChangeMessageVisibilityBatch``, 10 entries a call), instead of after the
    queue's visibility timeout with everything else throttled at the same moment.

    Best effort: an entry SQS refuses (or a call that fails) leaves that message to the queue's own visibility
    timeout, which also brings it back; nothing is lost either way.
    """

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self.queue_url = queue_url

    def back_off(self, entries: Sequence[tuple[str, int]]) -> BulkReport:
        """Make each ``(receipt handle, seconds)`` message visible again that many seconds from now."""
        report = BulkReport()
        for start in range(0, len(entries), MAX_SQS_BATCH_ENTRIES):
            chunk = entries[start : start + MAX_SQS_BATCH_ENTRIES]
            report.calls += 1
            try:
                response = self._client.change_message_visibility_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(start + n), "ReceiptHandle": handle, "VisibilityTimeout": seconds}
                        for n, (handle, seconds) in enumerate(chunk)
                    ],
                )
            except Exception as exc:  # the queue's own visibility timeout brings these back
                report.failed.update((start + n, exc) for n in range(len(chunk)))
                continue
            for failure in response.get("Failed", []):
                report.error_codes.append(str(failure.get("Code", "Unknown")))
                report.failed[int(failure["Id"])] = RuntimeError(f"{failure.get('Code')}: {failure.get('Message')}")
        return report
