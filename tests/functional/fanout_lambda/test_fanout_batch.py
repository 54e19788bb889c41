"""The fan-out handler on SQS batches (queue mode), against moto and fakes where moto cannot fail on demand.

moto never leaves BatchWriteItem requests unprocessed and never reports FailedPutCount; the fakes below wrap the
moto clients (or replace Firehose) to do so, and every scenario ends with the redelivery of exactly the messages
the handler listed, after which every sale is once in DynamoDB and once in Firehose.
"""

from __future__ import annotations

import gc
import json
import threading
import time
import weakref
from collections import Counter
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from botocore.exceptions import ClientError

from fanout_lambda import handler as fanout
from fanout_lambda.errors import DeliveryIncomplete, WriteIncomplete
from fanout_lambda.sale import sale_id
from fanout_lambda.settings import FanoutSettings
from local_pipeline.aws import create_tables
from tests.support import (
    IDEMPOTENCY_TABLE,
    SALES_TABLE,
    STREAM,
    FakeLambdaContext,
    FakeTime,
    RecordingFirehose,
    attempts_within,
    load_event,
    read_record,
    redelivery,
    sqs_event,
    waiting_on,
)

CONTEXT = FakeLambdaContext()
TENANT = "carousel-labs"


def sale_event(n: int, *, event_id: str | None = None) -> dict[str, Any]:
    """Sale number ``n`` (its own product), under EventBridge id ``event_id`` (default ``evt-{n}``)."""
    event = load_event("product_sold")
    event["id"] = event_id or f"evt-{n}"
    event["detail"]["productId"] = f"PROD-{n:05d}"
    return event


def sale_of(n: int) -> str:
    return sale_id(TENANT, f"PROD-{n:05d}", "2025-12-30")


class UnprocessingDynamoDB:
    """Wraps the moto client: BatchWriteItem to the sales table leaves chosen items unprocessed (moto never does).

    ``holds`` maps a sale's PK to how many more times its put comes back in ``UnprocessedItems``.
    """

    def __init__(self, client: Any, holds: dict[str, int]) -> None:
        self._client = client
        self.holds = holds
        self.batch_calls = 0

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]], **kwargs: Any) -> Any:  # noqa: N803
        requests = RequestItems.get(SALES_TABLE)
        if requests is None:
            return self._client.batch_write_item(RequestItems=RequestItems, **kwargs)
        self.batch_calls += 1
        held, kept = [], []
        for request in requests:
            pk = request["PutRequest"]["Item"]["PK"]["S"]
            if self.holds.get(pk, 0) > 0:
                self.holds[pk] -= 1
                held.append(request)
            else:
                kept.append(request)
        response: dict[str, Any] = {"UnprocessedItems": {}}
        if kept:
            response = self._client.batch_write_item(RequestItems={SALES_TABLE: kept}, **kwargs)
        if held:
            response["UnprocessedItems"] = {SALES_TABLE: held}
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class ConcurrencyProbe:
    """Wraps a client and records the most calls in flight at once.

    The first ``together`` calls wait for each other at a barrier (up to 10 s): they all return only if the
    handler let that many run at the same time.
    """

    def __init__(self, client: Any, together: int) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._barrier = threading.Barrier(together, timeout=10)
        self._waiting = together
        self.in_flight = 0
        self.most_in_flight = 0

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name.startswith("_") or name in ("meta", "exceptions") or not callable(target):
            return target

        def probed(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                wait, self._waiting = self._waiting > 0, self._waiting - 1
            try:
                if wait:
                    self._barrier.wait()
                return target(*args, **kwargs)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return probed


def _configure(aws: dict[str, Any], firehose: Any = None, dynamodb: Any = None, sqs: Any = None) -> Any:
    session = aws["session"]
    service = fanout.configure(
        dynamodb=dynamodb or session.client("dynamodb"),
        firehose=firehose if firehose is not None else RecordingFirehose(),
        sqs=sqs or session.client("sqs"),
    )
    # No real waiting between resends in tests (the backoff itself is unit-tested): they wait on a fake clock, so
    # a throttle that never ends meets the invocation's deadline (CONTEXT's remaining time less the margin).
    batch = service.batch
    waiting_on(FakeTime(), batch.sender.backoff, batch.store.writer.backoff, batch.records.writer.backoff)
    batch.dead_letters.backoff.sleep = lambda _seconds: None
    return service


def _budget_attempts(service: Any, backoff: Any) -> int:
    """The attempts a refusal that never ends gets within the invocation's time (CONTEXT's, less the margin)."""
    return attempts_within(CONTEXT.get_remaining_time_in_millis() / 1000 - service.batch.margin_seconds, backoff)


def _sales_in_dynamodb(aws: dict[str, Any]) -> Counter[str]:
    items = aws["session"].client("dynamodb").scan(TableName=SALES_TABLE)["Items"]
    return Counter(item["saleId"]["S"] for item in items)


def _sales_in_firehose(firehose: RecordingFirehose) -> Counter[str]:
    return Counter(read_record(record)["saleId"] for record in firehose.delivered)


def _dlq_messages(aws: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = aws["session"].client("sqs")
    found: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return found
        found += [json.loads(m["Body"]) for m in messages]
        sqs.delete_message_batch(
            QueueUrl=aws["queue_url"],
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )


def _listed(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def _metrics(capsys: pytest.CaptureFixture[str]) -> dict[str, list[float]]:
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in emitted for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    return {name: [v for blob in emitted if name in blob for v in _as_list(blob[name])] for name in names}


def _as_list(value: Any) -> list[float]:
    return value if isinstance(value, list) else [value]


def _recover(firehose: RecordingFirehose) -> None:
    """Firehose stops failing from the next call on (the calls already made keep their results)."""
    made = len(firehose.calls)
    firehose.fail_entries = {n: entries for n, entries in firehose.fail_entries.items() if n <= made}
    firehose.raise_on = {n for n in firehose.raise_on if n <= made}


def _exactly_once(aws: dict[str, Any], firehose: RecordingFirehose, sales: list[int]) -> None:
    expected = Counter({sale_of(n): 1 for n in sales})
    assert _sales_in_dynamodb(aws) == expected
    assert _sales_in_firehose(firehose) == expected


def test_sample_sqs_event_is_processed_as_a_batch(aws: dict[str, Any]) -> None:
    # GIVEN the sample SQS event (two sales as an event source mapping delivers them)
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    batch = load_event("sqs_product_sold")

    # WHEN
    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN nothing is listed; both sales are written with one Firehose call
    assert response == {"batchItemFailures": []}
    assert len(_sales_in_dynamodb(aws)) == 2
    assert len(firehose.calls) == 1
    assert len(firehose.delivered) == 2


def test_mixed_batch_processes_new_sales_once_keeps_the_invalid_and_lists_nothing(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN sale 2 was processed by an earlier batch
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    assert _listed(fanout.lambda_handler(sqs_event([("m0", sale_event(2))]), CONTEXT)) == []
    capsys.readouterr()
    firehose.calls.clear()

    # WHEN a batch mixes new sales, the invalid, the unreadable, the foreign and every kind of duplicate
    batch = sqs_event(
        [
            ("m1", sale_event(1)),  # new
            ("m2", load_event("negative_price")),  # invalid
            ("m3", "{not json"),  # not JSON
            ("m4", load_event("other_source")),  # another source
            ("m5", sale_event(2)),  # retried: same EventBridge id as the earlier batch's sale
            ("m6", sale_event(2, event_id="republished-2")),  # re-published copy of the earlier sale
            ("m7", sale_event(1)),  # duplicate inside the batch (same id as m1)
            ("m8", sale_event(1, event_id="republished-1")),  # re-published inside the batch (new id)
            ("m9", sale_event(3)),  # new
        ]
    )
    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN nothing is retried; the new sales are written once, in one Firehose call
    assert _listed(response) == []
    assert len(firehose.calls) == 1
    assert _sales_in_firehose(firehose) == Counter({sale_of(1): 1, sale_of(3): 1})
    assert _sales_in_dynamodb(aws) == Counter({sale_of(1): 1, sale_of(2): 1, sale_of(3): 1})
    # the three rejected messages are in the DLQ, each with its reason
    letters = sorted(_dlq_messages(aws), key=lambda m: m["error"]["field"])
    assert [m["error"]["field"] for m in letters] == ["body", "detail.salePrice", "source"]
    assert all(m["errorType"] == "InvalidSaleEvent" for m in letters)
    assert letters[0]["event"] == "{not json"
    assert "not JSON" in letters[0]["error"]["reason"]
    assert letters[1]["event"] == load_event("negative_price")
    # and the outcomes are counted once per batch
    metrics = _metrics(capsys)
    assert metrics == {"SalesProcessed": [2.0], "SalesDuplicate": [4.0], "SalesRejected": [3.0]}


def test_direct_mode_records_written_by_powertools_are_duplicates_in_queue_mode_and_back(
    aws: dict[str, Any],
) -> None:
    # GIVEN the previous direct-mode handler (Powertools' @idempotent_function) recorded sale 1
    dynamodb = aws["session"].client("dynamodb")
    config = IdempotencyConfig(event_key_jmespath="key", raise_on_no_idempotency_key=True, expires_after_seconds=86400)
    config.register_lambda_context(CONTEXT)
    ran: list[str] = []

    @idempotent_function(
        data_keyword_argument="request",
        persistence_store=DynamoDBPersistenceLayer(table_name=IDEMPOTENCY_TABLE, boto3_client=dynamodb),
        config=config,
        key_prefix="carousel.product.sold",
    )
    def record_sale(request: dict[str, Any]) -> dict[str, Any]:
        ran.append(request["key"][1])
        return {"outcome": "processed", "eventId": f"direct-{request['key'][1]}", "saleId": "x"}

    record_sale(request={"key": [TENANT, "PROD-00001", "2025-12-30"]})
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)

    # WHEN a batch carries sale 1 (and the new sale 2)
    response = fanout.lambda_handler(sqs_event([("m1", sale_event(1)), ("m2", sale_event(2))]), CONTEXT)

    # THEN sale 1 is a duplicate, sale 2 is new
    assert _listed(response) == []
    assert _sales_in_firehose(firehose) == Counter({sale_of(2): 1})

    # AND Powertools recognises the batch's record of sale 2 as done: it replays the stored response
    replay = record_sale(request={"key": [TENANT, "PROD-00002", "2025-12-30"]})
    assert ran == ["PROD-00001"]
    assert replay == {"outcome": "processed", "eventId": "evt-2", "saleId": sale_of(2)}
    # and the records have Powertools' layout
    records = {i["id"]["S"]: i for i in dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"]}
    assert len(records) == 2
    for record in records.values():
        assert record["id"]["S"].startswith("carousel.product.sold#")
        assert record["status"]["S"] == "COMPLETED"
        assert set(record) == {"id", "expiration", "in_progress_expiration", "status", "data"}


def test_queue_and_direct_modes_recognise_each_others_sales(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)

    assert fanout.lambda_handler(sale_event(1), CONTEXT)["outcome"] == "processed"
    assert _listed(fanout.lambda_handler(sqs_event([("m1", sale_event(1, event_id="again"))]), CONTEXT)) == []
    assert _listed(fanout.lambda_handler(sqs_event([("m2", sale_event(2))]), CONTEXT)) == []
    assert fanout.lambda_handler(sale_event(2, event_id="again-2"), CONTEXT)["outcome"] == "duplicate"

    _exactly_once(aws, firehose, [1, 2])


def test_unprocessed_items_are_resent_and_the_batch_succeeds(aws: dict[str, Any]) -> None:
    # GIVEN DynamoDB leaves two items unprocessed on the first call (throttled partitions)
    session = aws["session"]
    dynamodb = UnprocessingDynamoDB(session.client("dynamodb"), {f"TENANT#{TENANT}#PRODUCT#PROD-00002": 1})
    dynamodb.holds[f"TENANT#{TENANT}#PRODUCT#PROD-00004"] = 2
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose, dynamodb=dynamodb)

    response = fanout.lambda_handler(sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 6)]), CONTEXT)

    # THEN they are resent, only they, and nothing is listed
    assert _listed(response) == []
    assert dynamodb.batch_calls == 3
    _exactly_once(aws, firehose, [1, 2, 3, 4, 5])


def test_items_unprocessed_after_every_resend_fail_only_their_sales_and_the_redelivery_completes(
    aws: dict[str, Any],
) -> None:
    # GIVEN DynamoDB keeps leaving sale 2's item unprocessed
    session = aws["session"]
    dynamodb = UnprocessingDynamoDB(session.client("dynamodb"), {f"TENANT#{TENANT}#PRODUCT#PROD-00002": 10**6})
    firehose = RecordingFirehose()
    service = _configure(aws, firehose=firehose, dynamodb=dynamodb)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 4)])

    # WHEN the batch runs
    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN only sale 2 is listed, after the resends the invocation's time allowed, and no Firehose record for it
    assert _listed(response) == ["m2"]
    assert dynamodb.batch_calls == _budget_attempts(service, service.batch.store.writer.backoff)
    assert sale_of(2) not in _sales_in_firehose(firehose)

    # WHEN DynamoDB recovers and SQS redelivers exactly m2, THEN it completes
    dynamodb.holds.clear()
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2, 3])


def test_write_incomplete_names_the_table(aws: dict[str, Any]) -> None:
    session = aws["session"]
    dynamodb = UnprocessingDynamoDB(session.client("dynamodb"), {f"TENANT#{TENANT}#PRODUCT#PROD-00001": 10**6})
    service = _configure(aws, dynamodb=dynamodb)
    result = service.batch.process(
        [fanout.Message(None, sale_event(1)), fanout.Message(None, sale_event(2))],
        remaining_time_in_millis=60_000,
    )
    first, second = result.outcomes
    assert (first.kind, second.kind) == ("failed", "processed")
    assert isinstance(first.error, WriteIncomplete)
    assert SALES_TABLE in str(first.error)


def test_firehose_entries_failing_every_resend_fail_only_their_sales(aws: dict[str, Any]) -> None:
    # GIVEN Firehose rejects entries 1 and 3 of the first call, and entry 0 of every resend (that is sale 2)
    firehose = RecordingFirehose(fail_entries={1: {1, 3}, **{n: {0} for n in range(2, 1000)}})
    service = _configure(aws, firehose=firehose)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 6)])

    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN sale 4 got through on the first resend; sale 2 never did and is the only one listed
    assert _listed(response) == ["m2"]
    assert len(firehose.calls) == _budget_attempts(service, service.batch.sender.backoff)
    assert sale_of(4) in _sales_in_firehose(firehose)
    # its claim was released, so the redelivery processes it (its item is rewritten, not doubled)
    _recover(firehose)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2, 3, 4, 5])


def test_firehose_whole_call_failure_fails_only_the_records_it_carried(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the first call rejects entries 0 and 2, and the resend of those two fails as a whole, not for
    # throughput (a throttled call is resent in place: see the flow-control tests)
    failure = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "Not allowed."}}, "PutRecordBatch")
    firehose = RecordingFirehose(fail_entries={1: {0, 2}}, raise_on={2}, error=failure)
    _configure(aws, firehose=firehose)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 5)])

    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN exactly the two sales of the failed call are listed
    assert _listed(response) == ["m1", "m3"]
    metrics = _metrics(capsys)
    assert metrics["SalesProcessed"] == [2.0]
    assert metrics["SalesFailed"] == [2.0]
    assert metrics["FirehoseResends"] == [2.0]
    # WHEN SQS redelivers them, THEN every sale is once in DynamoDB and once in Firehose
    _recover(firehose)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2, 3, 4])


def test_firehose_throttling_the_whole_batch_lists_every_sale_and_the_redelivery_completes(
    aws: dict[str, Any],
) -> None:
    throttle = ClientError(
        {"Error": {"Code": "ServiceUnavailableException", "Message": "Slow down."}}, "PutRecordBatch"
    )
    firehose = RecordingFirehose(raise_on=set(range(1, 1000)), error=throttle)  # past the invocation's time
    _configure(aws, firehose=firehose)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 4)] + [("bad", load_event("negative_price"))])

    response = fanout.lambda_handler(batch, CONTEXT)

    assert _listed(response) == ["m1", "m2", "m3"]  # the invalid event is in the DLQ, never retried
    assert len(_dlq_messages(aws)) == 1
    _recover(firehose)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2, 3])


def test_missing_sales_table_fails_the_claimed_sales_releases_them_and_the_redelivery_completes(
    aws: dict[str, Any],
) -> None:
    # GIVEN the sales table is gone
    dynamodb = aws["session"].client("dynamodb")
    dynamodb.delete_table(TableName=SALES_TABLE)
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 4)])

    # WHEN the batch runs, THEN every sale is listed, nothing reached Firehose and no claim is left behind
    response = fanout.lambda_handler(batch, CONTEXT)
    assert _listed(response) == ["m1", "m2", "m3"]
    assert firehose.calls == []
    assert dynamodb.scan(TableName=IDEMPOTENCY_TABLE)["Items"] == []

    # WHEN the table is back and SQS redelivers, THEN everything completes
    dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
    create_tables(dynamodb, SALES_TABLE, IDEMPOTENCY_TABLE)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2, 3])


def test_missing_idempotency_table_lists_every_sale_and_writes_nothing(aws: dict[str, Any]) -> None:
    dynamodb = aws["session"].client("dynamodb")
    dynamodb.delete_table(TableName=IDEMPOTENCY_TABLE)
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    batch = sqs_event([(f"m{n}", sale_event(n)) for n in range(1, 3)])

    response = fanout.lambda_handler(batch, CONTEXT)

    assert _listed(response) == ["m1", "m2"]
    assert firehose.calls == []
    assert _sales_in_dynamodb(aws) == Counter()
    dynamodb.delete_table(TableName=SALES_TABLE)
    create_tables(dynamodb, SALES_TABLE, IDEMPOTENCY_TABLE)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2])


def test_copies_inside_a_batch_follow_a_failed_first_copy_and_the_sale_is_never_lost(aws: dict[str, Any]) -> None:
    # GIVEN Firehose throttles the first call: the first copy of sale 1 fails
    throttle = ClientError(
        {"Error": {"Code": "ServiceUnavailableException", "Message": "Slow down."}}, "PutRecordBatch"
    )
    firehose = RecordingFirehose(raise_on=set(range(1, 1000)), error=throttle)  # past the invocation's time
    _configure(aws, firehose=firehose)
    batch = sqs_event([("m1", sale_event(1)), ("m1-again", sale_event(1)), ("m1-new-id", sale_event(1, event_id="r"))])

    # THEN every copy is listed (none is dropped as a duplicate of a sale that was not done)
    response = fanout.lambda_handler(batch, CONTEXT)
    assert _listed(response) == ["m1", "m1-again", "m1-new-id"]

    # WHEN they come again, THEN the sale is done once and the other copies are duplicates
    _recover(firehose)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1])


def test_sale_in_progress_in_another_invocation_is_listed_until_its_claim_lapses(aws: dict[str, Any]) -> None:
    # GIVEN another invocation holds sale 1 for 200 ms more
    firehose = RecordingFirehose()
    service = _configure(aws, firehose=firehose)
    service.batch.records.claim(service.batch.records.record_id([TENANT, "PROD-00001", "2025-12-30"]), 200)
    batch = sqs_event([("m1", sale_event(1)), ("m2", sale_event(2))])

    # WHEN the batch runs, THEN sale 1 is listed and untouched; sale 2 is processed
    response = fanout.lambda_handler(batch, CONTEXT)
    assert _listed(response) == ["m1"]
    assert _sales_in_firehose(firehose) == Counter({sale_of(2): 1})

    # WHEN the holder's time is over and SQS redelivers, THEN sale 1 is processed
    time.sleep(0.3)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2])


class RefusingSqs:
    """Wraps the moto SQS client: SendMessageBatch fails every entry on the service's side (not the sender's)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.refuse = True

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        if not self.refuse:
            return self._client.send_message_batch(QueueUrl=QueueUrl, Entries=Entries)
        failed = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "x"} for e in Entries]
        return {"Successful": [], "Failed": failed}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_invalid_event_the_dlq_cannot_take_is_listed_not_lost(aws: dict[str, Any]) -> None:
    sqs = RefusingSqs(aws["session"].client("sqs"))
    _configure(aws, sqs=sqs)
    batch = sqs_event([("bad", load_event("negative_price")), ("m1", sale_event(1))])

    response = fanout.lambda_handler(batch, CONTEXT)

    assert _listed(response) == ["bad"]
    sqs.refuse = False
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    (letter,) = _dlq_messages(aws)
    assert letter["error"]["field"] == "detail.salePrice"


def test_batch_calls_run_concurrently_within_the_pool(aws: dict[str, Any]) -> None:
    # GIVEN a client whose first 4 calls return only once all 4 are in flight together
    session = aws["session"]
    dynamodb = ConcurrencyProbe(session.client("dynamodb"), together=4)
    fanout.configure(
        settings=FanoutSettings(SALES_TABLE, IDEMPOTENCY_TABLE, STREAM, aws["queue_url"], 1024, aws_call_concurrency=4),
        dynamodb=dynamodb,
        firehose=RecordingFirehose(),
        sqs=session.client("sqs"),
    )

    # WHEN a batch of 12 sales runs
    response = fanout.lambda_handler(sqs_event([(f"m{n}", sale_event(n)) for n in range(12)]), CONTEXT)

    # THEN its claims overlapped (a serial chain would break the barrier), never more than the pool allows
    assert _listed(response) == []
    assert dynamodb.most_in_flight == 4


def test_clients_built_by_the_service_have_one_connection_per_pool_thread(aws: dict[str, Any]) -> None:
    settings = FanoutSettings(SALES_TABLE, IDEMPOTENCY_TABLE, STREAM, aws["queue_url"], 1024, aws_call_concurrency=48)
    service = fanout.FanoutService.build(settings)
    try:
        assert service.executor._max_workers == 48
        assert service.batch.records._client.meta.config.max_pool_connections == 48
        assert service.batch.sender._client.meta.config.max_pool_connections == 48
        assert service.batch.dead_letters._client.meta.config.max_pool_connections == 48
        assert service.batch.records._client.meta.config.retries["mode"] == "standard"
    finally:
        service.close()


def test_an_empty_or_foreign_records_list_is_not_mistaken_for_a_batch(aws: dict[str, Any]) -> None:
    _configure(aws)
    assert fanout.is_sqs_event(load_event("sqs_product_sold"))
    assert not fanout.is_sqs_event({"Records": []})
    assert not fanout.is_sqs_event({"Records": [{"eventSource": "aws:s3"}]})
    assert not fanout.is_sqs_event(load_event("product_sold"))
    # an S3 notification is not a sale: it is rejected in direct mode like any other foreign event
    assert fanout.lambda_handler({"Records": [{"eventSource": "aws:s3"}]}, CONTEXT)["outcome"] == "rejected"


def test_delivery_incomplete_is_what_a_sale_failed_by_firehose_entries_carries(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose(fail_entries={n: {0} for n in range(1, 1000)})
    service = _configure(aws, firehose=firehose)
    result = service.batch.process([fanout.Message("m1", sale_event(1))], 60_000)
    (outcome,) = result.outcomes
    assert outcome.kind == "failed"
    assert isinstance(outcome.error, DeliveryIncomplete)
    assert result.firehose_resends == _budget_attempts(service, service.batch.sender.backoff) - 1
    assert outcome.throttled  # refused for throughput only: listed and backed off, never parked


class FailingIdempotencyWrites:
    """Wraps the moto client: BatchWriteItem to the idempotency table fails while ``failing`` is set."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failing = True

    def batch_write_item(self, RequestItems: dict[str, Any], **kwargs: Any) -> Any:  # noqa: N803
        if self.failing and IDEMPOTENCY_TABLE in RequestItems:
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "BatchWriteItem")
        return self._client.batch_write_item(RequestItems=RequestItems, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _ShortContext(FakeLambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 200


def test_unrecorded_completions_and_releases_lose_nothing_and_lapse_with_the_invocation(aws: dict[str, Any]) -> None:
    # GIVEN the idempotency table refuses the batch's completions and releases; Firehose throttles sale 2's entry
    dynamodb = FailingIdempotencyWrites(aws["session"].client("dynamodb"))
    firehose = RecordingFirehose(fail_entries={n: {1} if n == 1 else {0} for n in range(1, 5)})
    _configure(aws, firehose=firehose, dynamodb=dynamodb)
    batch = sqs_event([("m1", sale_event(1)), ("m2", sale_event(2))])

    # WHEN the batch runs in an invocation with 200 ms left
    response = fanout.lambda_handler(batch, _ShortContext())

    # THEN sale 1 is done (not listed, though its record stays INPROGRESS); sale 2 failed and is listed
    assert _listed(response) == ["m2"]
    assert _sales_in_firehose(firehose) == Counter({sale_of(1): 1})

    # WHEN SQS redelivers m2 after that invocation's time is over, THEN its lapsed claim is taken and it completes
    dynamodb.failing = False
    _recover(firehose)
    time.sleep(0.3)
    assert _listed(fanout.lambda_handler(redelivery(batch, response), CONTEXT)) == []
    _exactly_once(aws, firehose, [1, 2])


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_queue_batch_logs_one_summary_line_and_each_problem_each_sale_only_at_debug(
    aws: dict[str, Any], caplog: pytest.LogCaptureFixture, level: str
) -> None:
    # GIVEN the fan-out at the log level Terraform's var.log_level sets
    _configure(aws, firehose=RecordingFirehose())
    fanout.logger.setLevel(level)
    caplog.set_level(level, logger=fanout.logger.name)
    try:
        # WHEN a batch carries two new sales, a duplicate and an invalid event
        fanout.lambda_handler(
            sqs_event(
                [
                    ("m1", sale_event(1)),
                    ("m2", sale_event(2)),
                    ("m3", sale_event(1, event_id="republished-1")),
                    ("m4", load_event("negative_price")),
                ]
            ),
            CONTEXT,
        )
    finally:
        fanout.logger.setLevel("INFO")
    messages = Counter(record.getMessage() for record in caplog.records)
    # THEN one INFO summary counts every outcome, and the invalid event is logged on its own
    (summary,) = [record for record in caplog.records if record.getMessage() == "batch done"]
    assert summary.levelname == "INFO"
    assert (summary.processed, summary.duplicate, summary.rejected) == (2, 1, 1)
    assert messages["invalid sale event sent to the dead-letter queue"] == 1
    # and each routine sale has its own line only at DEBUG
    routine = messages["sale processed"] + messages["duplicate sale skipped"]
    assert routine == (3 if level == "DEBUG" else 0)


def test_a_finished_batch_is_freed_at_once_even_when_its_events_were_rejected_or_failed(aws: dict[str, Any]) -> None:
    # GIVEN a batch with a rejected event and sales whose claims fail (the idempotency table is gone)
    aws["session"].client("dynamodb").delete_table(TableName=IDEMPOTENCY_TABLE)
    service = _configure(aws)
    messages = [
        fanout.Message("m1", load_event("negative_price")),
        fanout.Message("m2", sale_event(1)),
        fanout.Message("m3", sale_event(2)),
    ]

    gc.collect()
    gc.disable()  # only reference counting from here: an outcome in a reference cycle would outlive the batch
    try:
        result = service.batch.process(messages, 30_000)
        assert [o.kind for o in result.outcomes] == ["rejected", "failed", "failed"]
        # THEN each outcome still says what went wrong, without the tracebacks that tied it to the batch's frames
        errors = [o.error for o in result.outcomes]
        assert "salePrice" in str(errors[0]) and all(isinstance(e, ClientError) for e in errors[1:])
        assert "ResourceNotFoundException" in str(errors[1])
        assert all(e is not None and e.__traceback__ is None for e in errors)
        assert (errors[0].__cause__ or errors[0].__context__).__traceback__ is None  # type: ignore[union-attr]
        outcomes = [weakref.ref(o) for o in result.outcomes]
        del result, errors
        assert [ref() for ref in outcomes] == [None, None, None]
    finally:
        gc.enable()


class RecordingVisibility:
    """The buffer queue's ChangeMessageVisibilityBatch, recorded."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.entries += Entries
        return {"Successful": [{"Id": e["Id"]} for e in Entries], "Failed": []}


def test_sales_throttled_past_the_invocation_are_listed_and_their_messages_backed_off_by_receive_count(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN Firehose refuses everything for throughput for longer than the invocation has, and the buffer queue
    throttle = ClientError(
        {"Error": {"Code": "ServiceUnavailableException", "Message": "Slow down."}}, "PutRecordBatch"
    )
    firehose = RecordingFirehose(raise_on=set(range(1, 1000)), error=throttle)
    service = _configure(aws, firehose=firehose)
    visibility = RecordingVisibility()
    service.buffer_queue, service.draw = fanout.BufferQueue(visibility, "https://sqs/buffer"), lambda: 0.0
    # two messages on their 1st receive, one on its 4th, and an invalid event
    batch = sqs_event([("m1", sale_event(1)), ("m2", sale_event(2)), ("bad", load_event("negative_price"))])
    batch["Records"] += sqs_event([("m3", sale_event(3))], receive_count=4)["Records"]

    response = fanout.lambda_handler(batch, CONTEXT)

    # THEN the three sales are listed (never parked), the invalid event went to the DLQ, and each throttled
    # message is made visible again after its own backoff: 15 s on the 1st receive, 120 s on the 4th
    assert _listed(response) == ["m1", "m2", "m3"]
    assert len(_dlq_messages(aws)) == 1
    handles = {r["messageId"]: r["receiptHandle"] for r in batch["Records"]}
    assert {e["ReceiptHandle"]: e["VisibilityTimeout"] for e in visibility.entries} == {
        handles["m1"]: 15,
        handles["m2"]: 15,
        handles["m3"]: 120,
    }
    assert _metrics(capsys)["SalesThrottled"] == [3.0]


def test_a_sale_failed_for_another_reason_is_listed_but_not_backed_off(aws: dict[str, Any]) -> None:
    failure = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutRecordBatch")
    service = _configure(aws, firehose=RecordingFirehose(raise_on={1}, error=failure))
    visibility = RecordingVisibility()
    service.buffer_queue = fanout.BufferQueue(visibility, "https://sqs/buffer")
    response = fanout.lambda_handler(sqs_event([("m1", sale_event(1))]), CONTEXT)
    assert _listed(response) == ["m1"]
    assert visibility.entries == []  # back after the queue's own visibility timeout; past the budget, the DLQ
