"""The embedded DynamoDB in its own process: the run's DynamoDB clients reach it, and it answers as moto does."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.dynamodb.models import dynamo_type, dynamodb_backends

from fanout_lambda.claims import IdempotencyRecords
from local_pipeline.aws import EmbeddedAws
from local_pipeline.context import ACCOUNT_ID
from local_pipeline.dynamodb_process import _ITEM_SOURCES, DynamoDBProcessError


@pytest.fixture
def aws() -> Iterator[EmbeddedAws]:
    with EmbeddedAws() as embedded:
        embedded.create_resources()
        yield embedded


def test_the_run_s_dynamodb_lives_in_the_child_not_in_this_process(aws: EmbeddedAws) -> None:
    tables = aws.client("dynamodb").list_tables()["TableNames"]
    assert set(tables) == {aws.names.sales_table, aws.names.idempotency_table}
    # this process's moto never saw them: every request went down the pipe
    assert dynamodb_backends[ACCOUNT_ID][aws.region].tables == {}


def test_a_claim_answers_as_moto_does_through_the_pipe(aws: EmbeddedAws) -> None:
    records = IdempotencyRecords(aws.client("dynamodb"), aws.names.idempotency_table)
    record_id = records.record_id(["TENANT-001", "PROD-1", "2026-01-15"])
    first = records.claim(record_id, 30_000)
    assert first.status == "claimed"
    # the second claim's condition fails; the old image comes back through ReturnValuesOnConditionCheckFailure
    assert records.claim(record_id, 30_000).status == "in_progress"
    with pytest.raises(ClientError) as raised:
        aws.client("dynamodb").put_item(TableName="no-such-table", Item={"id": {"S": "x"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


@pytest.mark.parametrize("limit", [5, 15])
def test_a_remembered_condition_is_evaluated_with_each_request_s_own_values(aws: EmbeddedAws, limit: int) -> None:
    # the child remembers parses by (expression, names, values): the same text with other values is a new parse
    dynamodb = aws.client("dynamodb")
    table = aws.names.idempotency_table
    dynamodb.put_item(TableName=table, Item={"id": {"S": "k"}, "n": {"N": "10"}})

    def put_if_below(value: int) -> bool:
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"id": {"S": "k"}, "n": {"N": "10"}},
                ConditionExpression="#n < :limit",
                ExpressionAttributeNames={"#n": "n"},
                ExpressionAttributeValues={":limit": {"N": str(value)}},
            )
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False
        return True

    assert put_if_below(limit) is (limit > 10)
    assert put_if_below(25 - limit) is (25 - limit > 10)
    assert put_if_below(limit) is (limit > 10)


def test_a_dead_child_is_a_clear_error_not_a_hang(aws: EmbeddedAws) -> None:
    process: Any = aws.dynamodb_process
    process._process.kill()
    process._process.wait()
    with pytest.raises(DynamoDBProcessError, match="embedded DynamoDB process has stopped"):
        aws.client("dynamodb").list_tables()


def test_closing_reports_the_child_s_peak_memory() -> None:
    with EmbeddedAws() as aws:
        aws.create_resources()
        process = aws.dynamodb_process
    assert process is not None
    assert process.peak_rss_bytes is not None
    assert process.peak_rss_bytes > 10 * 1024 * 1024


def test_an_item_over_400_kb_is_still_refused(aws: EmbeddedAws) -> None:
    # the child builds items with a running size total instead of moto's quadratic sum: same limit, same error
    dynamodb = aws.client("dynamodb")
    small = {"id": {"S": "k"}, "a": {"S": "x" * 200_000}}
    dynamodb.put_item(TableName=aws.names.idempotency_table, Item=small)
    with pytest.raises(ClientError) as raised:
        dynamodb.put_item(TableName=aws.names.idempotency_table, Item={**small, "b": {"S": "y" * 205_000}})
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Item size has exceeded the maximum allowed size" in raised.value.response["Error"]["Message"]


def test_the_linear_item_build_applies_to_the_installed_moto() -> None:
    # the child replaces moto's Item.__init__ only for the source it was checked against: a moto upgrade that
    # changes either function turns the speed-up off (answers stay moto's), and this test says so
    sources = tuple(
        hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
        for function in (dynamo_type.Item.__init__, dynamo_type.LimitedSizeDict.__setitem__)
    )
    assert sources == _ITEM_SOURCES


def test_the_child_moves_the_sales_items_out_once_the_table_passes_its_limit(aws: EmbeddedAws) -> None:
    # create_resources set the policy (SPILL_OVER_ITEMS); a small limit shows it working during a run
    process: Any = aws.dynamodb_process
    process.spill_when_over(2, aws.names.sales_table, aws.region, ACCOUNT_ID, aws._spill_path())
    dynamodb = aws.client("dynamodb")
    for pk in ("a", "b", "c"):
        item = {"PK": {"S": pk}, "SK": {"S": "SALE#1"}, "GSI2PK": {"S": "g"}, "GSI2SK": {"S": "d"}}
        dynamodb.put_item(TableName=aws.names.sales_table, Item=item)
    # the third put passed the limit: the table was emptied into the file, nothing was lost
    assert dynamodb.scan(TableName=aws.names.sales_table)["Count"] == 0
    assert sorted(item["PK"]["S"] for item in aws.sales_items()) == ["a", "b", "c"]
