"""The fault wrappers around the real fan-out (moto behind them): each fault is answered by the handler's own paths.

The crash scenario runs on a simulated process clock (time-machine), as the local runtime does: the fan-out reads
the wall clock (``datetime.now()`` in its claims and in Powertools) to stamp and test a claim's in-progress expiry,
so the clock has to move the way a real redelivery's delay would.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
import time_machine

from fanout_lambda import handler as fanout
from local_pipeline.faults import FanoutCrash, FaultInjector, FaultSpec, FaultyDynamoDB, FaultyFirehose, FaultySqs
from tests.support import (
    IDEMPOTENCY_TABLE,
    SALES_TABLE,
    RecordingFirehose,
    load_event,
    read_record,
    redelivery,
    sqs_event,
)

T0 = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
#: The fan-out's function timeout (Terraform's default) and the buffer queue's visibility timeout (pipeline.json).
FUNCTION_TIMEOUT_MS = 30_000
VISIBILITY_TIMEOUT = dt.timedelta(seconds=185)


@dataclass
class Context:
    """A Lambda context whose remaining time is the function timeout (the invocation just started)."""

    function_name: str = "sales-fanout-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:sales-fanout-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-4000-8000-000000000001"
    log_group_name: str = "/aws/lambda/sales-fanout-test"
    log_stream_name: str = "test"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return FUNCTION_TIMEOUT_MS


def sale(n: int) -> dict[str, Any]:
    event = load_event("product_sold")
    event["id"] = f"evt-{n}"
    event["detail"]["productId"] = f"PROD-{n:05d}"
    return event


def wire(aws: dict[str, Any], spec: str, seed: int = 7) -> tuple[FaultInjector, RecordingFirehose]:
    session = aws["session"]
    injector = FaultInjector(FaultSpec.parse(spec), seed)
    firehose = RecordingFirehose()
    fanout.configure(
        dynamodb=FaultyDynamoDB(session.client("dynamodb"), injector),
        firehose=FaultyFirehose(firehose, injector),
        sqs=FaultySqs(session.client("sqs"), injector),
    )
    return injector, firehose


def claims(aws: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws["session"].client("dynamodb").scan(TableName=IDEMPOTENCY_TABLE)["Items"]
    return items


def sales_items(aws: dict[str, Any]) -> int:
    return int(aws["session"].client("dynamodb").scan(TableName=SALES_TABLE)["Count"])


def test_crashed_batch_leaves_claims_in_progress_until_the_invocation_time_is_over_then_redelivery_processes(
    aws: dict[str, Any],
) -> None:
    batch = sqs_event([(f"m{n}", sale(n)) for n in range(3)])
    with time_machine.travel(T0, tick=False) as clock:
        # GIVEN a fan-out whose Firehose call crashes the invocation
        _, firehose = wire(aws, "fanout-crash=1")

        # WHEN the batch is handled: the crash is not caught by the handler or Powertools
        with pytest.raises(FanoutCrash):
            fanout.lambda_handler(batch, Context())

        # THEN the items were written, nothing reached Firehose, and every claim is still INPROGRESS until the
        # invocation's own deadline (now + remaining time), as after a real timeout
        assert sales_items(aws) == 3
        assert firehose.calls == []
        deadline_ms = int(T0.timestamp() * 1000) + FUNCTION_TIMEOUT_MS
        assert {(c["status"]["S"], int(c["in_progress_expiration"]["N"])) for c in claims(aws)} == {
            ("INPROGRESS", deadline_ms)
        }

        # WHEN a copy arrives while the dead invocation's time is not over (10 s later), with no fault left
        clock.move_to(T0 + dt.timedelta(seconds=10))
        _, firehose = wire(aws, "")
        early = fanout.lambda_handler(batch, Context())

        # THEN it is listed for redelivery, not processed twice and not parked
        assert {f["itemIdentifier"] for f in early["batchItemFailures"]} == {"m0", "m1", "m2"}
        assert firehose.calls == []

        # WHEN the buffer queue redelivers after its visibility timeout (185 s > the 30 s function timeout)
        clock.move_to(T0 + VISIBILITY_TIMEOUT)
        late = fanout.lambda_handler(redelivery(batch, early), Context())

    # THEN every sale is processed once: claims taken over, records sent, claims completed
    assert late == {"batchItemFailures": []}
    assert sorted(read_record(r)["productId"] for r in firehose.delivered) == [
        "PROD-00000",
        "PROD-00001",
        "PROD-00002",
    ]
    assert {c["status"]["S"] for c in claims(aws)} == {"COMPLETED"}
    assert sales_items(aws) == 3


@pytest.mark.parametrize("spec", ["dynamodb-throttle=0.5", "firehose-unavailable=0.5", "firehose-partial=0.6"])
def test_under_each_service_fault_redelivering_the_listed_messages_settles_every_sale_once(
    aws: dict[str, Any], spec: str
) -> None:
    # GIVEN 40 sales in one batch and a failing service
    batch = sqs_event([(f"m{n}", sale(n)) for n in range(40)])
    with time_machine.travel(T0, tick=False) as clock:
        # A draw is keyed on the call's content: seed 4 hits each fault on the compact records.
        injector, firehose = wire(aws, spec, seed=4)

        # WHEN the event source mapping redelivers exactly the listed messages until none is listed
        deliveries = 0
        while batch["Records"]:
            deliveries += 1
            assert deliveries <= 20, "the fault never lets go"
            injector.begin_invocation()
            response = fanout.lambda_handler(batch, Context())
            batch = redelivery(batch, response)
            clock.move_to(T0 + deliveries * VISIBILITY_TIMEOUT)

    # THEN the fault was injected, retries happened, and every sale reached Firehose exactly once
    name = spec.split("=", maxsplit=1)[0]
    assert injector.injected[name] > 0
    assert deliveries > 1 or firehose.calls != []
    product_ids = [read_record(r)["productId"] for r in firehose.delivered]
    assert sorted(product_ids) == [f"PROD-{n:05d}" for n in range(40)]
    # A throttled completion write leaves a done sale's claim INPROGRESS (the handler logs it "unsettled"); it
    # lapses at the invocation's deadline and a later copy is then processed again: a duplicate the lake's dedup
    # view absorbs, never a loss. Without DynamoDB faults every claim is completed.
    statuses = {c["status"]["S"] for c in claims(aws)}
    assert statuses == {"COMPLETED"} if name != "dynamodb-throttle" else statuses <= {"COMPLETED", "INPROGRESS"}
