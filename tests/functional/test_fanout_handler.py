"""The fan-out handler against moto (DynamoDB, SQS, Firehose) and injected fakes where moto cannot fail."""

from __future__ import annotations

import json
import time
from typing import Any

import orjson
import pytest
from botocore.exceptions import ClientError

from fanout_lambda import handler as fanout
from fanout_lambda.errors import DeliveryIncomplete
from fanout_lambda.sale import TTL_SECONDS, embedding_shard, sale_id, unpack_embedding
from fanout_lambda.settings import FanoutSettings
from tests.support import SALES_TABLE, FakeLambdaContext, RecordingFirehose, load_event

CONTEXT = FakeLambdaContext()


class FlakySalesTable:
    """Wraps the moto DynamoDB client; the first ``failures`` puts to the sales table raise a throttle."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client = client
        self.failures = failures

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["TableName"] == SALES_TABLE and self.failures > 0:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "throttled"}}, "PutItem"
            )
        return self._client.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _configure(aws: dict[str, Any], firehose: Any = None, dynamodb: Any = None) -> Any:
    session = aws["session"]
    return fanout.configure(
        dynamodb=dynamodb or session.client("dynamodb"),
        firehose=firehose or session.client("firehose"),
        sqs=session.client("sqs"),
    )


def _sales_items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws["session"].client("dynamodb").scan(TableName=SALES_TABLE)["Items"]
    return items


def _dlq_messages(aws: dict[str, Any]) -> list[dict[str, Any]]:
    sqs = aws["session"].client("sqs")
    messages = sqs.receive_message(QueueUrl=aws["queue_url"], MaxNumberOfMessages=10)["Messages"]
    return [json.loads(m["Body"]) for m in messages]


def test_new_event_is_written_to_dynamodb_and_forwarded_to_firehose(aws: dict[str, Any]) -> None:
    # GIVEN a valid sale and a recording Firehose
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")

    # WHEN the handler runs
    result = fanout.lambda_handler(event, CONTEXT)

    # THEN one item and one Firehose record carry the sale
    assert result["outcome"] == "processed"
    (item,) = _sales_items(aws)
    assert item["PK"]["S"] == "TENANT#carousel-labs#PRODUCT#PROD-LV-12345"
    assert item["salePrice"]["N"] == "450"
    (record,) = firehose.delivered
    body = orjson.loads(record)
    assert record.endswith(b"\n")
    assert body["eventId"] == event["id"]
    assert body["saleId"] == result["saleId"] == sale_id("carousel-labs", "PROD-LV-12345", "2025-12-30")
    assert body["embedding"] == event["detail"]["embedding"]


def test_moto_firehose_receives_the_record(aws: dict[str, Any]) -> None:
    # GIVEN moto's own Firehose (it stores raw records in S3; it does not transform or convert them)
    _configure(aws)
    # WHEN
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    # THEN the raw record reached the stream's bucket
    s3 = aws["session"].client("s3")
    (obj,) = s3.list_objects_v2(Bucket="raw-firehose-test")["Contents"]
    body = s3.get_object(Bucket="raw-firehose-test", Key=obj["Key"])["Body"].read()
    assert orjson.loads(body)["productId"] == "PROD-LV-12345"


def test_retried_delivery_with_same_id_is_skipped(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")

    first = fanout.lambda_handler(event, CONTEXT)
    second = fanout.lambda_handler(load_event("product_sold"), CONTEXT)

    assert (first["outcome"], second["outcome"]) == ("processed", "duplicate")
    assert len(_sales_items(aws)) == 1
    assert len(firehose.calls) == 1


def test_republished_copy_under_a_new_id_is_a_duplicate(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    republished = load_event("product_sold")
    republished["id"] = "11111111-2222-4333-8444-555555555555"
    republished["time"] = "2025-12-30T11:00:00Z"

    result = fanout.lambda_handler(republished, CONTEXT)

    assert result["outcome"] == "duplicate"
    assert result["saleId"] == sale_id("carousel-labs", "PROD-LV-12345", "2025-12-30")
    assert len(_sales_items(aws)) == 1
    assert len(firehose.delivered) == 1


def test_a_different_sale_of_the_same_product_is_not_a_duplicate(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    resold = load_event("product_sold")
    resold["id"] = "22222222-2222-4333-8444-555555555555"
    resold["detail"]["soldDate"] = "2026-01-05"

    assert fanout.lambda_handler(resold, CONTEXT)["outcome"] == "processed"
    assert len(_sales_items(aws)) == 2
    assert len(firehose.delivered) == 2


def test_keys_follow_the_documented_formats_with_a_stable_gsi2_shard(aws: dict[str, Any]) -> None:
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("product_sold")
    fanout.lambda_handler(event, CONTEXT)

    (item,) = _sales_items(aws)
    shard = embedding_shard("carousel-labs", "PROD-LV-12345")
    expected_sale_id = sale_id("carousel-labs", "PROD-LV-12345", "2025-12-30")
    assert 0 <= shard <= 4
    assert item["SK"]["S"] == f"SALE#2025-12-30#{expected_sale_id}"
    assert item["GSI2PK"]["S"] == f"TENANT#carousel-labs#EMBEDDING#{shard}"
    assert item["GSI2SK"]["S"] == "DATE#2025-12-30"
    # GSI2 answers an embedding query for the tenant's shard
    dynamodb = aws["session"].client("dynamodb")
    found = dynamodb.query(
        TableName=SALES_TABLE,
        IndexName="GSI2",
        KeyConditionExpression="GSI2PK = :pk AND begins_with(GSI2SK, :d)",
        ExpressionAttributeValues={":pk": {"S": f"TENANT#carousel-labs#EMBEDDING#{shard}"}, ":d": {"S": "DATE#2025"}},
    )["Items"]
    assert [i["SK"]["S"] for i in found] == [item["SK"]["S"]]


def test_ttl_is_two_years_ahead(aws: dict[str, Any]) -> None:
    _configure(aws, firehose=RecordingFirehose())
    before = int(time.time())
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    after = int(time.time())

    (item,) = _sales_items(aws)
    assert before + TTL_SECONDS <= int(item["ttl"]["N"]) <= after + TTL_SECONDS
    assert TTL_SECONDS == 730 * 86_400


def test_embedding_of_1024_floats_is_stored_compactly_and_forwarded_whole(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")
    assert len(event["detail"]["embedding"]) == 1024

    fanout.lambda_handler(event, CONTEXT)

    (item,) = _sales_items(aws)
    stored = unpack_embedding(item["embedding"]["B"])
    assert len(item["embedding"]["B"]) == 4 * 1024
    assert stored == pytest.approx(event["detail"]["embedding"], rel=1e-6)
    assert orjson.loads(firehose.delivered[0])["embedding"] == event["detail"]["embedding"]


def test_embedding_of_the_wrong_dimension_is_rejected(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")
    event["detail"]["embedding"] = event["detail"]["embedding"][:1023]

    result = fanout.lambda_handler(event, CONTEXT)

    assert result["outcome"] == "rejected"
    assert "detail.embedding" in result["reason"]
    assert firehose.calls == []


def test_dynamodb_failure_raises_and_the_retry_forwards_the_sale_once(aws: dict[str, Any]) -> None:
    # GIVEN the sales table throttles the first write
    firehose = RecordingFirehose()
    dynamodb = FlakySalesTable(aws["session"].client("dynamodb"), failures=1)
    _configure(aws, firehose=firehose, dynamodb=dynamodb)
    event = load_event("product_sold")

    # WHEN the first attempt fails, THEN the handler raises so Lambda retries, and nothing was forwarded
    with pytest.raises(ClientError, match="ProvisionedThroughputExceeded"):
        fanout.lambda_handler(event, CONTEXT)
    assert firehose.calls == []
    assert _sales_items(aws) == []

    # WHEN Lambda retries the same event, THEN it is processed (not treated as a duplicate)
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(_sales_items(aws)) == 1
    assert len(firehose.delivered) == 1


def test_firehose_failure_raises_and_the_retry_forwards_the_sale(aws: dict[str, Any]) -> None:
    # GIVEN Firehose rejects the whole first call
    error = ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "down"}}, "PutRecordBatch")
    firehose = RecordingFirehose(raise_on={1}, error=error)
    _configure(aws, firehose=firehose)

    with pytest.raises(ClientError, match="ServiceUnavailable"):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)

    # THEN the retry is not a duplicate: it forwards the sale; the item is rewritten, not doubled
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(firehose.delivered) == 1
    assert len(_sales_items(aws)) == 1


def test_firehose_entries_failing_every_resend_raise_delivery_incomplete(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose(fail_entries={n: {0} for n in range(1, 10)})
    service = _configure(aws, firehose=firehose)
    service.sender._sleep = lambda _seconds: None

    with pytest.raises(DeliveryIncomplete, match="ServiceUnavailableException"):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    assert len(firehose.calls) == service.sender.max_attempts

    # the idempotency record was released: a later retry goes through
    firehose.fail_entries = {}
    firehose.calls.clear()
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"


def test_partial_firehose_failure_is_resent_and_the_event_succeeds(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose(fail_entries={1: {0}})
    service = _configure(aws, firehose=firehose)
    service.sender._sleep = lambda _seconds: None

    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(firehose.calls) == 2
    assert len(firehose.delivered) == 1


@pytest.mark.parametrize(
    ("name", "field"),
    [
        ("escaping_tenant", "detail.tenantId"),
        ("negative_price", "detail.salePrice"),
        ("other_source", "source"),
    ],
)
def test_invalid_event_goes_to_the_dlq_with_its_reason_and_nowhere_else(
    aws: dict[str, Any], name: str, field: str
) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event(name)

    result = fanout.lambda_handler(event, CONTEXT)

    assert result["outcome"] == "rejected"
    (message,) = _dlq_messages(aws)
    assert message["errorType"] == "InvalidSaleEvent"
    assert message["error"]["field"] == field
    assert message["event"] == event
    assert _sales_items(aws) == []
    assert firehose.calls == []


def test_missing_field_is_named_in_the_dlq_message(aws: dict[str, Any]) -> None:
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("product_sold")
    del event["detail"]["soldDate"]

    fanout.lambda_handler(event, CONTEXT)

    (message,) = _dlq_messages(aws)
    assert message["error"] == {"field": "detail.soldDate", "reason": "is required", "value": "None"}


def test_outcomes_are_published_as_emf_metrics(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    _configure(aws, firehose=RecordingFirehose())
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    fanout.lambda_handler(load_event("negative_price"), CONTEXT)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = [m["Name"] for blob in emitted for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert sorted(names) == ["SalesDuplicate", "SalesProcessed", "SalesRejected"]


def test_missing_configuration_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DELIVERY_STREAM_NAME", raising=False)
    with pytest.raises(Exception, match="DELIVERY_STREAM_NAME"):
        FanoutSettings.from_env({"SALES_TABLE_NAME": "a", "IDEMPOTENCY_TABLE_NAME": "b", "DEAD_LETTER_QUEUE_URL": "c"})
