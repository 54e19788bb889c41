"""The resources a local run creates, under the names a run gives them and the keys Terraform deploys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pipeline_config
from local_pipeline.aws.limits import SQS_MESSAGE_MAX_BYTES

__all__ = ["ResourceNames", "create_dead_letter_queue", "create_fanout_resources", "create_tables"]


@dataclass(frozen=True)
class ResourceNames:
    """Names of the resources one local run creates."""

    sales_table: str
    idempotency_table: str
    dead_letter_queue: str
    lake_bucket: str
    buffer_queue: str

    @classmethod
    def for_run(cls, suffix: str = "local") -> ResourceNames:
        """Names with ``suffix``; a fresh suffix per run keeps runs apart on a long-lived moto_server."""
        return cls(
            sales_table=f"sales-{suffix}",
            idempotency_table=f"sales-idempotency-{suffix}",
            dead_letter_queue=f"sales-fanout-dlq-{suffix}",
            lake_bucket=f"sales-lake-{suffix}",
            buffer_queue=f"sales-buffer-{suffix}",
        )


def create_tables(dynamodb: Any, sales_table: str, idempotency_table: str) -> None:
    """The sales table (PK/SK, GSI2 on GSI2PK/GSI2SK) and Powertools' idempotency table (``id``).

    Keys and GSI2's projection as Terraform deploys them: INCLUDE pipeline.json's
    ``dynamodb.gsi2_projected_attributes``, so what an embedding query reads back, and the size a GSI2 write is
    billed at (the capacity simulator sizes GSI2 writes from this projection), are the deployed stack's.
    """
    keys = ("PK", "SK", "GSI2PK", "GSI2SK")
    dynamodb.create_table(
        TableName=sales_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in keys],
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "GSI2",
                "KeySchema": [
                    {"AttributeName": "GSI2PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI2SK", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": list(pipeline_config.gsi2_projected_attributes()),
                },
            }
        ],
    )
    dynamodb.create_table(
        TableName=idempotency_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def create_dead_letter_queue(sqs: Any, name: str) -> str:
    """The DLQ with SQS's 256 KiB message limit, the size Terraform deploys (moto would default to 1 MiB)."""
    queue_url: str = sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": str(SQS_MESSAGE_MAX_BYTES)})[
        "QueueUrl"
    ]
    return queue_url


def create_fanout_resources(session: Any, region: str, *, suffix: str) -> str:
    """What a lone fan-out writes to, in (moto's) AWS, for the tests and benchmarks that call its handler
    directly: ``sales-{suffix}`` and ``idempotency-{suffix}`` tables, the ``sales-dlq-{suffix}`` queue and a raw
    ``sales-stream-{suffix}`` delivery stream to ``raw-firehose-{suffix}``. Returns the queue's URL."""
    create_tables(session.client("dynamodb", region_name=region), f"sales-{suffix}", f"idempotency-{suffix}")
    queue_url = create_dead_letter_queue(session.client("sqs", region_name=region), f"sales-dlq-{suffix}")
    bucket = f"raw-firehose-{suffix}"
    session.client("s3", region_name=region).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
    )
    session.client("firehose", region_name=region).create_delivery_stream(
        DeliveryStreamName=f"sales-stream-{suffix}",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::123456789012:role/firehose-{suffix}",
            "BucketARN": f"arn:aws:s3:::{bucket}",
        },
    )
    return queue_url
