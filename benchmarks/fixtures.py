"""What the fan-out benchmarks run against: moto resources, a Lambda context, a sample event, SQS batches.

The benchmarks never import ``tests``: the resources come from the local runtime's own builders, the context
is the local runtime's, and the sample event is read as data from ``tests/events/`` (the same file the tests
use, so the figures measure the same event).
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from local_pipeline.aws.resources import create_fanout_resources
from local_pipeline.context import LambdaContext

__all__ = [
    "IDEMPOTENCY_TABLE",
    "REGION",
    "SALES_TABLE",
    "STREAM",
    "context",
    "create_resources",
    "sample_event",
    "sqs_event",
]

SAMPLE_EVENT = Path(__file__).resolve().parents[1] / "tests" / "events" / "product_sold.json"
#: The resources :func:`~local_pipeline.aws.resources.create_fanout_resources` names after this suffix.
SUFFIX = "bench"
SALES_TABLE = f"sales-{SUFFIX}"
IDEMPOTENCY_TABLE = f"idempotency-{SUFFIX}"
STREAM = f"sales-stream-{SUFFIX}"
QUEUE = f"sales-dlq-{SUFFIX}"
REGION = "eu-west-1"


@cache
def _sample() -> dict[str, Any]:
    event: dict[str, Any] = json.loads(SAMPLE_EVENT.read_text(encoding="utf-8"))
    return event


def sample_event() -> dict[str, Any]:
    """A fresh copy of the sample sale event."""
    return copy.deepcopy(_sample())


def context() -> LambdaContext:
    """The fan-out's context with a minute left, as a fresh invocation sees it."""
    return LambdaContext("sales-fanout-bench", region=REGION, timeout_ms=60_000)


def create_resources(session: Any) -> dict[str, str]:
    """Create the fan-out's tables, dead-letter queue and stream in (moto's) AWS; return the queue url."""
    return {"queue_url": create_fanout_resources(session, REGION, suffix=SUFFIX)}


def sqs_event(messages: list[tuple[str, Any]]) -> dict[str, Any]:
    """An SQS batch as the event source mapping delivers it: ``(message_id, event)`` pairs, compact JSON bodies."""
    records = []
    for message_id, event in messages:
        body = json.dumps(event, separators=(",", ":"))
        records.append(
            {
                "messageId": message_id,
                "receiptHandle": f"AQEB{message_id}1",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1767089700000"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # noqa: S324 - SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:sales-buffer-bench",
                "awsRegion": REGION,
            }
        )
    return {"Records": records}
