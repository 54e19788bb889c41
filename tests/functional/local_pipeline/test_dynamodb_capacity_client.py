"""The capacity-limited DynamoDB client over moto: what each write is billed, and DynamoDB's answers to a throttle."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from fanout_lambda.flow_control import is_throughput
from local_pipeline.dynamodb import CapacityLedger, CapacityLimitedDynamoDB
from local_pipeline.metrics import MetricsRecorder

REGION = "eu-west-1"


@pytest.fixture
def raw() -> Iterator[Any]:
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName="sales",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("PK", "SK", "G", "GS")],
            KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "GSI2",
                    "KeySchema": [
                        {"AttributeName": "G", "KeyType": "HASH"},
                        {"AttributeName": "GS", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["small"]},
                }
            ],
        )
        client.create_table(
            TableName="claims",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        )
        yield client


class Clock:
    def __init__(self) -> None:
        self.ms = 0

    def __call__(self) -> int:
        return self.ms


def _limited(raw: Any, warm: int = 4_000) -> tuple[CapacityLimitedDynamoDB, Clock, MetricsRecorder]:
    clock, metrics = Clock(), MetricsRecorder()
    return CapacityLimitedDynamoDB(raw, CapacityLedger(warm), now_ms=clock, metrics=metrics), clock, metrics


def _sale(n: int, *, blob: int = 2500, shard: int = 0) -> dict[str, Any]:
    return {
        "PK": {"S": f"P#{n}"},
        "SK": {"S": "S"},
        "G": {"S": f"T#{shard}"},
        "GS": {"S": f"D#{n}"},
        "small": {"S": "x" * 100},
        "blob": {"B": b"b" * blob},  # not projected: the index entry stays under 1 KB
    }


def _row(client: CapacityLimitedDynamoDB, name: str) -> dict[str, Any]:
    return next(row for row in client.report() if row["name"] == name)


def test_a_put_bills_the_item_and_its_projected_index_entry(raw: Any) -> None:
    client, _, metrics = _limited(raw)
    client.put_item(TableName="sales", Item=_sale(1))
    assert _row(client, "sales")["write_units"] == 3  # ~2.6 KB item
    assert _row(client, "sales/index/GSI2")["write_units"] == 1  # keys + "small"
    assert metrics.total("AWS/DynamoDB", "ConsumedWriteCapacityUnits", TableName="sales") == 4
    # Rewriting the same item bills the larger of before and after; the index key is unchanged: one index write.
    client.put_item(TableName="sales", Item=_sale(1, blob=100))
    assert _row(client, "sales")["write_units"] == 6
    assert _row(client, "sales/index/GSI2")["write_units"] == 2
    # A changed index key is a delete and a put in the index (GSI.html): two index writes.
    moved = {**_sale(1, blob=100), "G": {"S": "T#4"}}
    client.put_item(TableName="sales", Item=moved)
    assert _row(client, "sales/index/GSI2")["write_units"] == 4
    # A delete bills the deleted item's size, and removes the index entry.
    client.delete_item(TableName="sales", Key={"PK": {"S": "P#1"}, "SK": {"S": "S"}})
    assert _row(client, "sales")["write_units"] == 6 + 1 + 1
    assert _row(client, "sales/index/GSI2")["write_units"] == 5
    assert "Item" not in raw.get_item(TableName="sales", Key={"PK": {"S": "P#1"}, "SK": {"S": "S"}})


def test_a_failed_condition_bills_the_existing_item(raw: Any) -> None:
    client, _, _ = _limited(raw)
    claim = {"TableName": "claims", "Item": {"id": {"S": "a"}}, "ConditionExpression": "attribute_not_exists(id)"}
    client.put_item(**claim)
    with pytest.raises(ClientError) as failed:
        client.put_item(**claim)
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    row = _row(client, "claims")
    assert row["write_units"] == 2
    assert row["failed_condition_write_units"] == 1


def test_a_throttled_put_raises_with_throttling_reasons_and_writes_nothing(raw: Any) -> None:
    client, clock, metrics = _limited(raw, warm=3)
    client.put_item(TableName="sales", Item=_sale(1))  # 3 units: the table's whole second
    with pytest.raises(ClientError) as throttled:
        client.put_item(TableName="sales", Item=_sale(2))
    response = throttled.value.response
    assert response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert response["ThrottlingReasons"] == [
        {
            "reason": "TableWriteKeyRangeThroughputExceeded",
            "resource": raw.describe_table(TableName="sales")["Table"]["TableArn"],
        }
    ]
    assert is_throughput(throttled.value)  # the fan-out's flow control resends it
    assert "Item" not in raw.get_item(TableName="sales", Key={"PK": {"S": "P#2"}, "SK": {"S": "S"}})
    assert metrics.total("AWS/DynamoDB", "ThrottledRequests", TableName="sales", Operation="PutItem") == 1
    assert metrics.total("AWS/DynamoDB", "WriteThrottleEvents", TableName="sales") == 1
    clock.ms = 1_000  # the next second has capacity again
    client.put_item(TableName="sales", Item=_sale(2))
    assert _row(client, "sales")["throttled_requests"] == 1


def test_an_index_throttles_the_table_write(raw: Any) -> None:
    # Back-pressure: the index's key value is hot (1,000 units/s), so the table write is refused too.
    client, _, _ = _limited(raw)
    for n in range(1_000):
        client.put_item(TableName="sales", Item=_sale(n, blob=10, shard=3))  # 1 unit each in the index
    with pytest.raises(ClientError) as throttled:
        client.put_item(TableName="sales", Item=_sale(5_000, blob=10, shard=3))
    (reason,) = throttled.value.response["ThrottlingReasons"]
    assert reason["reason"] == "IndexWriteKeyRangeThroughputExceeded"
    assert reason["resource"].endswith("/index/GSI2")
    client.put_item(TableName="sales", Item=_sale(5_001, blob=10, shard=4))  # another shard has room


def test_batch_write_item_hands_back_what_did_not_fit(raw: Any) -> None:
    client, _, metrics = _limited(raw, warm=9)
    requests = [{"PutRequest": {"Item": _sale(n)}} for n in range(5)]  # 3 units each: 3 fit in 9
    response = client.batch_write_item(RequestItems={"sales": requests})
    assert response["UnprocessedItems"]["sales"] == requests[3:]
    assert raw.scan(TableName="sales")["Count"] == 3
    # A batch of which nothing fits raises (BatchWriteItem API Reference), and only then is a request throttled.
    assert metrics.total("AWS/DynamoDB", "ThrottledRequests") == 0
    with pytest.raises(ClientError) as throttled:
        client.batch_write_item(RequestItems={"sales": requests[3:]})
    assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert metrics.total("AWS/DynamoDB", "ThrottledRequests", TableName="sales", Operation="BatchWriteItem") == 1
    assert _row(client, "sales")["throttle_events"] == 2 + 2


def test_an_empty_batch_is_not_a_throttle(raw: Any) -> None:
    # Nothing was refused, so the call is the service's to answer (moto accepts it; DynamoDB would refuse it
    # with a ValidationException), never a throttling error without a reason.
    client, _, metrics = _limited(raw)
    assert client.batch_write_item(RequestItems={})["UnprocessedItems"] == {}
    assert metrics.total("AWS/DynamoDB", "ThrottledRequests") == 0


def test_writes_it_cannot_size_are_refused(raw: Any) -> None:
    client, _, _ = _limited(raw)
    with pytest.raises(NotImplementedError, match="update_item"):
        client.update_item(TableName="claims", Key={"id": {"S": "a"}})
    assert client.describe_table(TableName="claims")["Table"]["TableName"] == "claims"  # reads pass through
