"""Fan-out cost per event: API calls, DynamoDB write units and events/s against in-process moto."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import boto3
from moto import mock_aws

import pipeline_config
from benchmarks.fixtures import (
    IDEMPOTENCY_TABLE,
    REGION,
    SALES_TABLE,
    STREAM,
    create_resources,
    sample_event,
)
from benchmarks.fixtures import (
    context as lambda_context,
)
from fanout_lambda import handler as fanout
from fanout_lambda.sale import item_size_bytes, write_units


def gsi2_projected_attributes() -> list[str]:
    """The INCLUDE list Terraform deploys for GSI2: pipeline.json's ``dynamodb.gsi2_projected_attributes``."""
    return list(pipeline_config.gsi2_projected_attributes())


def gsi2_copy(item: dict[str, Any]) -> dict[str, Any]:
    """What a GSI2 write stores: the table and index keys plus the projected attributes."""
    keep = {"PK", "SK", "GSI2PK", "GSI2SK", *gsi2_projected_attributes()}
    return {name: value for name, value in item.items() if name in keep}


@dataclass(frozen=True)
class FanoutCost:
    calls_new: dict[str, int]
    calls_duplicate: dict[str, int]
    item_bytes: int
    item_write_units: int
    gsi2_bytes: int
    gsi2_write_units: int
    idempotency_write_units_new: int
    events_per_second: float
    events: int


class _Counting:
    """Counts the API calls that go through a boto3 client (and the idempotency item sizes written)."""

    def __init__(self, client: Any, calls: Counter[str], service: str) -> None:
        self._client = client
        self._calls = calls
        self._service = service

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target) or name.startswith(("_", "meta", "exceptions", "get_paginator", "get_waiter")):
            return target

        def counted(*args: Any, **kwargs: Any) -> Any:
            table = kwargs.get("TableName", "")
            suffix = f"({'sales' if table == SALES_TABLE else 'idempotency'})" if table else ""
            self._calls[f"{self._service}.{name}{suffix}"] += 1
            return target(*args, **kwargs)

        return counted


def run(events: int = 400) -> FanoutCost:
    logging.getLogger("sales-fanout").setLevel(logging.WARNING)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's dummy credentials, never a real account
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        names = create_resources(session)
        calls: Counter[str] = Counter()
        fanout.configure(
            settings=_settings(names["queue_url"]),
            dynamodb=_Counting(session.client("dynamodb"), calls, "dynamodb"),
            firehose=_Counting(session.client("firehose"), calls, "firehose"),
            sqs=_Counting(session.client("sqs"), calls, "sqs"),
        )
        context = lambda_context()
        template = sample_event()

        with contextlib.redirect_stdout(io.StringIO()):
            fanout.lambda_handler(_variant(template, 0), context)
            calls_new = dict(calls)
            calls.clear()
            fanout.lambda_handler(_variant(template, 0), context)
            calls_duplicate = dict(calls)

        item = session.client("dynamodb").scan(TableName=SALES_TABLE)["Items"][0]
        idem_items = session.client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
        idempotency_units = sum(write_units(i) for i in idem_items)  # one put (INPROGRESS) + one update (COMPLETED)

        with contextlib.redirect_stdout(io.StringIO()):  # the EMF lines Lambda would ship to CloudWatch
            start = time.perf_counter()
            for n in range(1, events + 1):
                fanout.lambda_handler(_variant(template, n), context)
            elapsed = time.perf_counter() - start
        fanout.reset()
    return FanoutCost(
        calls_new=calls_new,
        calls_duplicate=calls_duplicate,
        item_bytes=item_size_bytes(item),
        item_write_units=write_units(item),
        gsi2_bytes=item_size_bytes(gsi2_copy(item)),
        gsi2_write_units=write_units(gsi2_copy(item)),
        idempotency_write_units_new=2 * idempotency_units,
        events_per_second=events / elapsed,
        events=events,
    )


def _settings(queue_url: str) -> Any:
    from fanout_lambda.settings import FanoutSettings

    return FanoutSettings(SALES_TABLE, IDEMPOTENCY_TABLE, STREAM, queue_url, 1024)


def _variant(template: dict[str, Any], n: int) -> dict[str, Any]:
    event = dict(template, id=f"bench-{n}")
    event["detail"] = dict(template["detail"], productId=f"PROD-{n:06d}")
    return event
