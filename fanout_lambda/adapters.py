"""Thin AWS adapters: the sales table, the Firehose sender and the dead-letter queue.

Each takes its boto3 client from the caller (created once per container, injectable in tests) and turns SDK
failures into the domain errors the handler acts on.
"""

from __future__ import annotations

import base64
import gzip
import json
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import DeadLetterTooLarge, DeliveryIncomplete

#: PutRecordBatch service limits.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024
#: SQS's classic message size limit (the queue's default in Terraform); bodies are kept under it.
MAX_SQS_MESSAGE_BYTES = 256 * 1024


class SalesStore:
    """The sales table: one put per sale (the item is deterministic, so a retried put is idempotent)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self.table_name = table_name

    def put(self, item: dict[str, dict[str, Any]]) -> None:
        """Write ``item``; SDK errors propagate so Lambda retries the event."""
        self._client.put_item(TableName=self.table_name, Item=item)


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
    exponential backoff and full jitter. Whatever still fails after ``max_attempts`` raises
    :class:`DeliveryIncomplete`, so Lambda retries the whole event (the idempotency record is released).
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
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self._client = client
        self.stream_name = stream_name
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._sleep = sleep
        self._jitter = jitter

    def send(self, records: Sequence[bytes]) -> SendReport:
        """Deliver every record or raise :class:`DeliveryIncomplete`."""
        report = SendReport(records=len(records))
        for chunk in chunked(records):
            self._send_chunk(chunk, report)
        return report

    def _send_chunk(self, chunk: list[bytes], report: SendReport) -> None:
        pending = chunk
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                report.resent += len(pending)
                self._sleep(self._jitter(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2))))
            response = self._client.put_record_batch(
                DeliveryStreamName=self.stream_name, Records=[{"Data": data} for data in pending]
            )
            report.calls += 1
            if not response.get("FailedPutCount"):
                return
            failed = [
                (data, entry.get("ErrorCode", "Unknown"))
                for data, entry in zip(pending, response["RequestResponses"], strict=True)
                if entry.get("ErrorCode")
            ]
            report.error_codes.extend(code for _, code in failed)
            pending = [data for data, _ in failed]
            if not pending:  # FailedPutCount without any entry marked: nothing identifiable to resend
                return
        raise DeliveryIncomplete(self.stream_name, len(pending), report.error_codes, report.resent)


def chunked(records: Sequence[bytes]) -> Iterator[list[bytes]]:
    """Split into PutRecordBatch calls of at most 500 records and 4 MiB; reject a record over 1,000 KiB."""
    chunk: list[bytes] = []
    size = 0
    for data in records:
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(f"Firehose record of {len(data)} bytes exceeds the {MAX_RECORD_BYTES}-byte limit")
        if chunk and (len(chunk) == MAX_BATCH_RECORDS or size + len(data) > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(data)
        size += len(data)
    if chunk:
        yield chunk


class DeadLetterQueue:
    """The SQS queue where events that must never be retried are kept for a person to inspect.

    The body is ``{"errorType", "error", "event"}``. An event whose JSON does not fit one message (EventBridge
    allows 256 KB events; escaping can grow them) is kept gzip-compressed and base64-encoded under
    ``eventGzipBase64`` instead, with its ``eventId``; nothing is truncated.
    """

    def __init__(self, client: Any, queue_url: str, max_message_bytes: int = MAX_SQS_MESSAGE_BYTES) -> None:
        self._client = client
        self.queue_url = queue_url
        self.max_message_bytes = max_message_bytes

    def send(self, event: Any, error: dict[str, Any], error_type: str) -> str:
        """Keep ``event`` with the error that rejected it; return the SQS message id."""
        body = _dumps({"errorType": error_type, "error": error, "event": event})
        if len(body.encode()) > self.max_message_bytes:
            packed = base64.b64encode(gzip.compress(_dumps(event).encode(), mtime=0)).decode()
            event_id = event.get("id") if isinstance(event, dict) else None
            body = _dumps({"errorType": error_type, "error": error, "eventId": event_id, "eventGzipBase64": packed})
            if len(body.encode()) > self.max_message_bytes:
                raise DeadLetterTooLarge(f"event {event_id!r} is {len(body)} bytes even compressed")
        response = self._client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={"errorType": {"DataType": "String", "StringValue": error_type}},
        )
        return str(response["MessageId"])


def _dumps(value: Any) -> str:
    # stdlib json on this rare path: it copes with anything the Lambda runtime parsed (huge ints, NaN).
    # ensure_ascii=False keeps non-ASCII text at its UTF-8 size instead of 6-byte escapes.
    text = json.dumps(value, default=repr, ensure_ascii=False)
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates have no UTF-8 form: fall back to \u escapes
        return json.dumps(value, default=repr)
    return text
