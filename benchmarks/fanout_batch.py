"""Queue-mode fan-out cost: a batch of 500 new sales and one of 500 duplicates through the handler, against
in-process moto, with every AWS call counted (and optionally delayed) by a botocore ``before-send`` hook.

Also the SQS batch size the 6 MB synchronous invocation payload allows for 1024-dimension sales, measured on the
JSON of a real SQS event (bodies = EventBridge events, as an SQS target of a rule receives them).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import statistics
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3
from moto import mock_aws

from benchmarks.fanout import gsi2_projected_attributes
from benchmarks.fixtures import (
    IDEMPOTENCY_TABLE,
    REGION,
    SALES_TABLE,
    STREAM,
    create_resources,
    sample_event,
    sqs_event,
)
from benchmarks.fixtures import (
    context as lambda_context,
)
from fanout_lambda import handler as fanout
from fanout_lambda.sale import write_units
from fanout_lambda.settings import AWS_CALL_CONCURRENCY, FanoutSettings

#: Lambda's synchronous invocation payload limit ("6 MB"; read as 6,000,000 bytes to stay on the safe side).
INVOCATION_PAYLOAD_BYTES = 6_000_000


@dataclass
class CallLog:
    """Every AWS call made (per ``service.Operation``) and the DynamoDB write units its requests carried."""

    calls: Counter[str]
    write_units: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@dataclass(frozen=True)
class BatchFigures:
    sales: int
    calls: dict[str, int]
    write_units: dict[str, int]
    listed: int
    seconds: list[float]
    cpu_seconds: list[float]

    @property
    def calls_per_event(self) -> float:
        return sum(self.calls.values()) / self.sales

    def per_event(self, operation: str) -> float:
        return self.calls.get(operation, 0) / self.sales


@dataclass(frozen=True)
class PayloadFigures:
    embedding: str
    record_bytes: int
    max_batch: int


@dataclass(frozen=True)
class BatchCost:
    new: BatchFigures
    duplicate: BatchFigures
    gsi2_units_per_new: float
    latency_ms: float
    pool_size: int
    payloads: list[PayloadFigures]


class Hooks:
    """botocore hooks on a client: count each call and add a fixed latency before it is sent."""

    def __init__(self, log: CallLog, latency: float) -> None:
        self._log = log
        self._latency = latency
        self._lock = threading.Lock()
        # What a GSI2 write stores (as benchmarks.fanout.gsi2_copy), from pipeline.json once, not per item.
        self._gsi2_attributes = {"PK", "SK", "GSI2PK", "GSI2SK", *gsi2_projected_attributes()}

    def attach(self, client: Any) -> Any:
        client.meta.events.register_first("before-send", self._before_send)
        client.meta.events.register("before-parameter-build.dynamodb", self._dynamodb_params)
        return client

    def _before_send(self, event_name: str, **_kwargs: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self._log.calls[f"{service}.{operation}"] += 1
        if self._latency:
            time.sleep(self._latency)

    def _dynamodb_params(self, params: dict[str, Any], model: Any, **_kwargs: Any) -> None:
        units: Counter[str] = Counter()
        if model.name == "PutItem":
            units[_table(params["TableName"])] += write_units(params["Item"])
        elif model.name == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        units[_table(table)] += write_units(request["PutRequest"]["Item"])
                        if table == SALES_TABLE:
                            item = request["PutRequest"]["Item"]
                            copy = {name: value for name, value in item.items() if name in self._gsi2_attributes}
                            units["sales GSI2 copy"] += write_units(copy)
                    else:
                        units[_table(table)] += 1
        with self._lock:
            self._log.write_units.update(units)


def _table(name: str) -> str:
    return "sales" if name == SALES_TABLE else "idempotency" if name == IDEMPOTENCY_TABLE else name


def float32_embedding(rng: random.Random, dimension: int = 1024) -> list[float]:
    """An embedding as a producer serialising float32 values writes it: each value at full float32 precision."""
    return [struct.unpack("f", struct.pack("f", rng.uniform(-1.0, 1.0)))[0] for _ in range(dimension)]


def sale_events(first: int, count: int, rng: random.Random, embedding: Callable[[], list[float]]) -> list[Any]:
    """``count`` distinct sales of 1024 dimensions (products ``first``...)."""
    template = sample_event()
    events = []
    for n in range(first, first + count):
        event = dict(template, id=f"bench-{n}")
        event["detail"] = dict(template["detail"], productId=f"PROD-{n:07d}", embedding=embedding())
        events.append(event)
    return events


def max_batch(events: list[dict[str, Any]], limit: int = INVOCATION_PAYLOAD_BYTES) -> tuple[int, int]:
    """(largest SQS batch of these events whose event JSON fits ``limit``, bytes of one record), measured."""
    batch = sqs_event([(f"{n:08d}-0000-4000-8000-000000000000", e) for n, e in enumerate(events)])
    # Compact JSON throughout (the bodies as EventBridge writes them; the envelope without optional whitespace).
    records = [json.dumps(record, separators=(",", ":")) for record in batch["Records"]]
    size = len('{"Records":[]}')
    for count, record in enumerate(records):
        size += len(record.encode()) + (1 if count else 0)  # "," between records
        if size > limit:
            return count, len(records[0].encode())
    raise ValueError(f"{len(events)} events all fit in {limit} bytes: measure with more")


def run(
    sales: int = 500, latency_ms: float = 5.0, rounds: int = 3, seed: int = 7, pool_size: int = AWS_CALL_CONCURRENCY
) -> BatchCost:
    """Measure a batch of ``sales`` new sales (``rounds`` times, fresh sales each) and one of ``sales`` duplicates."""
    logging.getLogger("sales-fanout").setLevel(logging.WARNING)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's dummy credentials, never a real account
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    rng = random.Random(seed)
    payloads = [
        PayloadFigures(label, record_bytes, count)
        for label, make in (
            (
                "float32 values written at full precision (Python repr, ~19 characters each)",
                lambda: float32_embedding(rng),
            ),
            ("6 decimals (the local generator's)", lambda: [round(rng.uniform(-1, 1), 6) for _ in range(1024)]),
        )
        for count, record_bytes in [max_batch(sale_events(0, 700, rng, make))]
    ]
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        names = create_resources(session)
        settings = FanoutSettings(
            SALES_TABLE, IDEMPOTENCY_TABLE, STREAM, names["queue_url"], 1024, aws_call_concurrency=pool_size
        )
        log = CallLog(Counter(), Counter())
        hooks = Hooks(log, latency_ms / 1000)
        config = fanout.client_config(settings.aws_call_concurrency)
        fanout.configure(
            settings=settings,
            dynamodb=hooks.attach(session.client("dynamodb", config=config)),
            firehose=hooks.attach(session.client("firehose", config=config)),
            sqs=hooks.attach(session.client("sqs", config=config)),
        )
        context = lambda_context()
        new_seconds: list[float] = []
        new_cpu: list[float] = []
        batches = []
        for number in range(rounds):
            events = sale_events(number * sales, sales, rng, lambda: float32_embedding(rng))
            batch = sqs_event([(f"m-{number}-{n}", e) for n, e in enumerate(events)])
            batches.append(batch)
            log.calls.clear()
            log.write_units.clear()
            seconds, cpu, response = _timed(partial(fanout.lambda_handler, batch, context))
            new_seconds.append(seconds)
            new_cpu.append(cpu)
            listed = len(response["batchItemFailures"])
            if listed:
                raise RuntimeError(f"{listed} sales of a benchmark batch failed: the figures would not hold")
        new = BatchFigures(sales, dict(log.calls), dict(log.write_units), listed, new_seconds, new_cpu)

        duplicate_batch = {"Records": [dict(r, messageId=f"dup-{r['messageId']}") for r in batches[0]["Records"]]}
        log.calls.clear()
        log.write_units.clear()
        seconds, cpu, response = _timed(partial(fanout.lambda_handler, duplicate_batch, context))
        duplicate = BatchFigures(
            sales, dict(log.calls), dict(log.write_units), len(response["batchItemFailures"]), [seconds], [cpu]
        )
        fanout.reset()
    return BatchCost(
        new=new,
        duplicate=duplicate,
        gsi2_units_per_new=new.write_units.get("sales GSI2 copy", 0) / sales,
        latency_ms=latency_ms,
        pool_size=pool_size,
        payloads=payloads,
    )


def _timed(call: Callable[[], dict[str, Any]]) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds of the whole process, i.e. all threads, moto included, response)."""
    with contextlib.redirect_stdout(io.StringIO()):  # the log and EMF lines Lambda would ship to CloudWatch
        cpu, start = time.process_time(), time.perf_counter()
        response = call()
        return time.perf_counter() - start, time.process_time() - cpu, response


def median(values: list[float]) -> float:
    """Median of ``values``."""
    return statistics.median(values)
