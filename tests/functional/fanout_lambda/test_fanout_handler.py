"""The fan-out handler against moto (DynamoDB, SQS, Firehose) and injected fakes where moto cannot fail."""

from __future__ import annotations

import base64
import gzip
import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

import pipeline_config
from fanout_lambda import handler as fanout
from fanout_lambda.errors import DeliveryIncomplete
from fanout_lambda.sale import TTL_SECONDS, embedding_shard, sale_id
from fanout_lambda.settings import DYNAMODB_EMBEDDING_ENCODING, FanoutSettings
from pipeline_config import embedding_codec
from tests.support import (
    SALES_TABLE,
    FakeLambdaContext,
    FakeTime,
    RecordingFirehose,
    attempts_within,
    float32,
    load_event,
    read_record,
    waiting_on,
)

CONTEXT = FakeLambdaContext()


class FlakySalesTable:
    """Wraps the moto DynamoDB client; the first ``failures`` puts to the sales table raise ``code`` (a throttle
    by default)."""

    def __init__(self, client: Any, failures: int, code: str = "ProvisionedThroughputExceededException") -> None:
        self._client = client
        self.failures = failures
        self.code = code

    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["TableName"] == SALES_TABLE and self.failures > 0:
            self.failures -= 1
            raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, "PutItem")
        return self._client.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _configure(aws: dict[str, Any], firehose: Any = None, dynamodb: Any = None) -> Any:
    session = aws["session"]
    service = fanout.configure(
        dynamodb=dynamodb or session.client("dynamodb"),
        firehose=firehose or session.client("firehose"),
        sqs=session.client("sqs"),
    )
    # Resends wait on a fake clock: no wall time, and a refusal that never ends meets the invocation's deadline.
    batch = service.batch
    waiting_on(FakeTime(), batch.sender.backoff, batch.store.writer.backoff, batch.records.writer.backoff)
    return service


#: The attempts a refusal that never ends gets within CONTEXT's remaining time, less the flow-control margin.
def _budget_attempts(service: Any) -> int:
    budget = CONTEXT.get_remaining_time_in_millis() / 1000 - service.batch.margin_seconds
    return attempts_within(budget, service.batch.sender.backoff)


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
    body = read_record(record)
    assert body["eventId"] == event["id"]
    assert body["saleId"] == result["saleId"] == sale_id("carousel-labs", "PROD-LV-12345", "2025-12-30")
    assert body["embedding"] == float32(event["detail"]["embedding"])


def test_moto_firehose_receives_the_record(aws: dict[str, Any]) -> None:
    # GIVEN moto's own Firehose (it stores raw records in S3; it does not transform or convert them)
    _configure(aws)
    # WHEN
    fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    # THEN the raw record reached the stream's bucket
    s3 = aws["session"].client("s3")
    (obj,) = s3.list_objects_v2(Bucket="raw-firehose-test")["Contents"]
    body = s3.get_object(Bucket="raw-firehose-test", Key=obj["Key"])["Body"].read()
    assert read_record(body)["productId"] == "PROD-LV-12345"


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

    # THEN the item's copy is pipeline.json's float16 (2 bytes a value, says so) and the lake's stays float32
    (item,) = _sales_items(aws)
    assert item["embeddingEncoding"] == {"S": "float16"}
    assert len(item["embedding"]["B"]) == 2 * 1024
    assert embedding_codec.decode(item) == pytest.approx(event["detail"]["embedding"], rel=2**-11, abs=2**-25)
    assert read_record(firehose.delivered[0])["embedding"] == float32(event["detail"]["embedding"])


@pytest.mark.parametrize("encoding", embedding_codec.ENCODINGS)
def test_embedding_query_on_gsi2_decodes_in_the_resource_form(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, encoding: str
) -> None:
    # GIVEN a sale written with each encoding, on a table projecting GSI2 as Terraform does (pipeline.json's list)
    monkeypatch.setenv(DYNAMODB_EMBEDDING_ENCODING, encoding)
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("product_sold")
    fanout.lambda_handler(event, CONTEXT)
    detail = event["detail"]

    # WHEN queried as README's example does (boto3's resource layer: Binary, str, Decimal)
    table = aws["session"].resource("dynamodb").Table(SALES_TABLE)
    shard = embedding_shard(detail["tenantId"], detail["productId"])
    (item,) = table.query(
        IndexName="GSI2",
        KeyConditionExpression=Key("GSI2PK").eq(f"TENANT#{detail['tenantId']}#EMBEDDING#{shard}")
        & Key("GSI2SK").begins_with(f"DATE#{detail['soldDate'][:7]}"),
    )["Items"]

    # THEN the projection carries what decoding needs, and nothing an embedding query does not show
    assert set(item) == {"PK", "SK", "GSI2PK", "GSI2SK"} | {
        name for name in pipeline_config.gsi2_projected_attributes() if encoding == "int8" or name != "embeddingScale"
    }
    decoded = embedding_codec.decode(item)
    assert len(decoded) == len(detail["embedding"])
    assert decoded == pytest.approx(detail["embedding"], abs=max(map(abs, detail["embedding"])) / 254)


@pytest.mark.parametrize(("encoding", "blob_bytes"), [("float32", 4 * 1024), ("int8", 1024)])
def test_environment_chooses_the_items_embedding_encoding(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, encoding: str, blob_bytes: int
) -> None:
    # GIVEN Terraform's DYNAMODB_EMBEDDING_ENCODING overriding pipeline.json's float16
    monkeypatch.setenv(DYNAMODB_EMBEDDING_ENCODING, encoding)
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("product_sold")

    fanout.lambda_handler(event, CONTEXT)

    # THEN the item is written in it and decodes from what it carries
    (item,) = _sales_items(aws)
    assert item["embeddingEncoding"] == {"S": encoding}
    assert len(item["embedding"]["B"]) == blob_bytes
    decoded = embedding_codec.decode(item)
    if encoding == "float32":
        assert decoded == float32(event["detail"]["embedding"])
    else:
        assert decoded == pytest.approx(event["detail"]["embedding"], abs=max(map(abs, decoded)) / 254 + 1e-12)


def test_embedding_of_the_wrong_dimension_is_rejected(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")
    event["detail"]["embedding"] = event["detail"]["embedding"][:1023]

    result = fanout.lambda_handler(event, CONTEXT)

    assert result["outcome"] == "rejected"
    assert "detail.embedding" in result["reason"]
    assert firehose.calls == []


def test_a_dynamodb_throttle_is_resent_within_the_invocation(aws: dict[str, Any]) -> None:
    # GIVEN the sales table throttles the first two writes (flow control: resent while the invocation has time)
    firehose = RecordingFirehose()
    dynamodb = FlakySalesTable(aws["session"].client("dynamodb"), failures=2)
    _configure(aws, firehose=firehose, dynamodb=dynamodb)
    # WHEN the handler runs once, THEN the sale is processed in that invocation, written and forwarded once
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert dynamodb.failures == 0
    assert len(_sales_items(aws)) == 1
    assert len(firehose.delivered) == 1


def test_dynamodb_failure_raises_and_the_retry_forwards_the_sale_once(aws: dict[str, Any]) -> None:
    # GIVEN the sales table refuses the first write for a reason that is not throughput (not resent in place)
    firehose = RecordingFirehose()
    dynamodb = FlakySalesTable(aws["session"].client("dynamodb"), failures=1, code="AccessDeniedException")
    _configure(aws, firehose=firehose, dynamodb=dynamodb)
    event = load_event("product_sold")

    # WHEN the first attempt fails, THEN the handler raises so Lambda retries, and nothing was forwarded
    with pytest.raises(ClientError, match="AccessDenied"):
        fanout.lambda_handler(event, CONTEXT)
    assert firehose.calls == []
    assert _sales_items(aws) == []

    # WHEN Lambda retries the same event, THEN it is processed (not treated as a duplicate)
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(_sales_items(aws)) == 1
    assert len(firehose.delivered) == 1


def test_a_firehose_throttle_is_resent_within_the_invocation(aws: dict[str, Any]) -> None:
    # GIVEN Firehose refuses the whole first call for throughput
    error = ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "down"}}, "PutRecordBatch")
    firehose = RecordingFirehose(raise_on={1}, error=error)
    _configure(aws, firehose=firehose)
    # WHEN the handler runs once, THEN the call is resent and the sale processed in that invocation
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(firehose.calls) == 2 and len(firehose.delivered) == 1


def test_firehose_failure_raises_and_the_retry_forwards_the_sale(aws: dict[str, Any]) -> None:
    # GIVEN Firehose rejects the whole first call for a reason that is not throughput
    error = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "PutRecordBatch")
    firehose = RecordingFirehose(raise_on={1}, error=error)
    _configure(aws, firehose=firehose)

    with pytest.raises(ClientError, match="AccessDenied"):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)

    # THEN the retry is not a duplicate: it forwards the sale; the item is rewritten, not doubled
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(firehose.delivered) == 1
    assert len(_sales_items(aws)) == 1


def test_firehose_entries_failing_every_resend_raise_delivery_incomplete(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose(fail_entries={n: {0} for n in range(1, 1000)})
    service = _configure(aws, firehose=firehose)

    with pytest.raises(DeliveryIncomplete, match="ServiceUnavailableException"):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    assert len(firehose.calls) == _budget_attempts(service)

    # the idempotency record was released: a later retry goes through
    firehose.fail_entries = {}
    firehose.calls.clear()
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"


def test_partial_firehose_failure_is_resent_and_the_event_succeeds(aws: dict[str, Any]) -> None:
    firehose = RecordingFirehose(fail_entries={1: {0}})
    _configure(aws, firehose=firehose)

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
    assert message["error"] == {"field": "detail.soldDate", "reason": "is required", "value": None}


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


def test_large_non_ascii_invalid_event_is_kept_verbatim_within_the_sqs_limit(aws: dict[str, Any]) -> None:
    # GIVEN an invalid event of ~200 KB of non-ASCII text (escaped JSON would be ~600 KB)
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("negative_price")
    event["detail"]["notes"] = "é" * 100_000

    assert fanout.lambda_handler(event, CONTEXT)["outcome"] == "rejected"

    sqs = aws["session"].client("sqs")
    (raw,) = sqs.receive_message(QueueUrl=aws["queue_url"])["Messages"]
    assert len(raw["Body"].encode()) <= 256 * 1024
    assert json.loads(raw["Body"])["event"] == event


def test_invalid_event_too_large_to_send_verbatim_is_kept_compressed(aws: dict[str, Any]) -> None:
    # GIVEN control characters, which JSON must escape six-fold: verbatim it cannot fit one SQS message
    _configure(aws, firehose=RecordingFirehose())
    event = load_event("negative_price")
    event["detail"]["notes"] = "\x01" * 60_000

    assert fanout.lambda_handler(event, CONTEXT)["outcome"] == "rejected"

    (message,) = _dlq_messages(aws)
    assert message["eventId"] == event["id"]
    assert message["error"]["field"] == "detail.salePrice"
    assert json.loads(gzip.decompress(base64.b64decode(message["eventGzipBase64"]))) == event


class _Timeout(BaseException):
    """What a Lambda timeout looks like to the code: execution stops and nothing can clean up."""


class _DyingSalesTable(FlakySalesTable):
    def put_item(self, **kwargs: Any) -> Any:
        if kwargs["TableName"] == SALES_TABLE and self.failures > 0:
            self.failures -= 1
            raise _Timeout
        return self._client.put_item(**kwargs)


class _ShortContext(FakeLambdaContext):
    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 50


def test_sale_in_progress_elsewhere_raises_then_is_processed_after_its_record_expires(aws: dict[str, Any]) -> None:
    # GIVEN an invocation that died mid-sale (timeout) and left its idempotency record INPROGRESS
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose, dynamodb=_DyingSalesTable(aws["session"].client("dynamodb"), failures=1))
    with pytest.raises(_Timeout):
        fanout.lambda_handler(load_event("product_sold"), _ShortContext())

    # WHEN a retry comes while that record is still in progress, THEN it raises and writes nothing
    with pytest.raises(IdempotencyAlreadyInProgressError):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)
    assert _sales_items(aws) == []
    assert firehose.calls == []

    # WHEN a retry comes after the dead invocation's remaining time, THEN the sale is processed once
    time.sleep(0.1)
    assert fanout.lambda_handler(load_event("product_sold"), CONTEXT)["outcome"] == "processed"
    assert len(_sales_items(aws)) == 1
    assert len(firehose.delivered) == 1


def test_firehose_resends_are_counted_even_when_delivery_fails(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    firehose = RecordingFirehose(fail_entries={n: {0} for n in range(1, 1000)})
    service = _configure(aws, firehose=firehose)

    with pytest.raises(DeliveryIncomplete):
        fanout.lambda_handler(load_event("product_sold"), CONTEXT)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    values = {name: blob[name] for blob in emitted for name in ("FirehoseResends", "SalesFailed") if name in blob}
    assert values == {"FirehoseResends": [float(_budget_attempts(service) - 1)], "SalesFailed": [1.0]}


@pytest.mark.parametrize(
    ("variable", "value", "field", "hint"),
    [
        ("TENANT_IDS", "resale-co,vintage-hub", "detail.tenantId", "add it to tenant_ids"),
        ("SOLD_DATE_YEARS", "2026,2040", "detail.soldDate", "widen sold_date_years"),
    ],
)
def test_a_sale_athena_would_not_show_goes_to_the_dlq_with_what_to_change(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str, hint: str
) -> None:
    # GIVEN Terraform's enum projection of tenants (or its year range) in the environment, which the sample
    # sale (tenant carousel-labs, sold 2025-12-30) is outside of
    monkeypatch.setenv(variable, value)
    firehose = RecordingFirehose()
    _configure(aws, firehose=firehose)
    event = load_event("product_sold")
    # WHEN it arrives
    result = fanout.lambda_handler(event, CONTEXT)
    # THEN it is refused into the DLQ with the reason, and written nowhere Athena could miss it
    assert result["outcome"] == "rejected"
    (message,) = _dlq_messages(aws)
    assert message["errorType"] == "InvalidSaleEvent"
    assert message["error"]["field"] == field
    assert hint in message["error"]["reason"]
    assert message["event"] == event
    assert _sales_items(aws) == []
    assert firehose.calls == []
