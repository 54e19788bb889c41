"""Helpers shared by the tests: sample events, a Lambda context, Firehose events and moto resources."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from local_pipeline.aws.resources import create_fanout_resources
from pipeline_config import sale_record

EVENTS = Path(__file__).parent / "events"

#: The resources :func:`~local_pipeline.aws.resources.create_fanout_resources` names after this suffix.
SUFFIX = "test"
SALES_TABLE = f"sales-{SUFFIX}"
IDEMPOTENCY_TABLE = f"idempotency-{SUFFIX}"
STREAM = f"sales-stream-{SUFFIX}"
QUEUE = f"sales-dlq-{SUFFIX}"
REGION = "eu-west-1"


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/events/{name}.json``."""
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return copy.deepcopy(event)


@dataclass
class FakeLambdaContext:
    """The attributes Powertools reads from a Lambda context."""

    function_name: str = "sales-fanout-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:sales-fanout-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-4000-8000-000000000000"
    log_group_name: str = "/aws/lambda/sales-fanout-test"
    log_stream_name: str = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def firehose_event(payloads: list[bytes], arrival_ms: int = 1_700_000_000_000) -> dict[str, Any]:
    """A Firehose data-transformation event carrying ``payloads`` as records ``r0, r1, ...``."""
    return {
        "invocationId": "inv-1",
        "deliveryStreamArn": f"arn:aws:firehose:{REGION}:123456789012:deliverystream/{STREAM}",
        "region": REGION,
        "records": [
            {"recordId": f"r{i}", "approximateArrivalTimestamp": arrival_ms, "data": base64.b64encode(p).decode()}
            for i, p in enumerate(payloads)
        ],
    }


def create_resources(session: Any) -> dict[str, str]:
    """Create the fan-out's tables, queue, bucket and stream in (moto's) AWS; return their names/urls."""
    return {"queue_url": create_fanout_resources(session, REGION, suffix=SUFFIX)}


class RecordingFirehose:
    """A Firehose client fake: records every PutRecordBatch and can fail entries or whole calls on demand.

    ``fail_entries`` maps a call number (1-based) to the entry indexes that come back with an ErrorCode;
    ``raise_on`` is a set of call numbers that raise ``error`` instead.
    """

    def __init__(
        self,
        fail_entries: dict[int, set[int]] | None = None,
        raise_on: set[int] | None = None,
        error: Exception | None = None,
    ) -> None:
        self.calls: list[list[bytes]] = []
        self.fail_entries = fail_entries or {}
        self.raise_on = raise_on or set()
        self.error = error or RuntimeError("firehose unavailable")

    @property
    def delivered(self) -> list[bytes]:
        """Records that were accepted (not failed), across calls."""
        accepted = []
        for number, records in enumerate(self.calls, start=1):
            if number in self.raise_on:
                continue
            failed = self.fail_entries.get(number, set())
            accepted += [r for i, r in enumerate(records) if i not in failed]
        return accepted

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append([record["Data"] for record in Records])
        number = len(self.calls)
        if number in self.raise_on:
            raise self.error
        failed = self.fail_entries.get(number, set())
        responses: list[dict[str, str]] = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."}
            if i in failed
            else {"RecordId": f"{number}-{i}"}
            for i in range(len(Records))
        ]
        return {"FailedPutCount": len(failed), "Encrypted": False, "RequestResponses": responses}


def sqs_record(event: Any, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    """One SQS record as an event source mapping delivers it: ``event`` (or a raw string) as the body.

    The body is compact JSON, as EventBridge writes the events it sends to an SQS target.
    """
    body = event if isinstance(event, str) else json.dumps(event, separators=(",", ":"))
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}{receive_count}",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1767089700000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1767089700100",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:sales-buffer-test",
        "awsRegion": REGION,
    }


def sqs_event(messages: list[tuple[str, Any]], receive_count: int = 1) -> dict[str, Any]:
    """An SQS batch of ``(message_id, event or raw body)`` pairs."""
    return {"Records": [sqs_record(event, message_id, receive_count) for message_id, event in messages]}


def redelivery(batch: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The batch SQS delivers again after ``response``: exactly the listed messages, one receive later."""
    listed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
    records = []
    for record in batch["Records"]:
        if record["messageId"] in listed:
            count = int(record["attributes"]["ApproximateReceiveCount"]) + 1
            records.append(sqs_record(record["body"], record["messageId"], count))
    return {"Records": records}


def read_record(data: bytes) -> dict[str, Any]:
    """A record the fan-out put to Firehose, as the transform reads it (compact form decoded, or JSON)."""
    record: dict[str, Any] = sale_record.decode(data) if sale_record.is_compact(data) else orjson.loads(data)
    return record


def float32(values: list[float]) -> list[float]:
    """``values`` at the lake's precision (float32), as Python floats."""
    return array("f", values).tolist()


class FakeTime:
    """A clock that moves only when slept on: a backoff that waits on it costs no wall time, and a throttle that
    never ends meets the invocation's deadline after as many resends as the deadline allows."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


def waiting_on(time: FakeTime, *backoffs: Any) -> FakeTime:
    """Make each backoff wait on ``time`` with its largest delay (no jitter: the attempts are countable)."""
    for backoff in backoffs:
        backoff.sleep, backoff.clock, backoff.jitter = time.sleep, time.clock, lambda _low, high: high
    return time


def attempts_within(budget_seconds: float, backoff: Any) -> int:
    """How many attempts a throttle that never ends gets from ``backoff`` (no jitter) within the budget."""
    attempts, spent = 1, 0.0
    while True:
        delay = min(backoff.max_delay, backoff.base_delay * 2 ** (attempts - 1))
        if spent + delay > budget_seconds:
            return attempts
        spent += delay
        attempts += 1
