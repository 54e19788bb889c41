"""A stack's worth of resources on a moto_server for the recovery commands' tests (dlq, errors, send).

What the commands touch, created as Terraform names them in its outputs: the dead-letter queue, the default
event bus with the pipeline's rule (its target an SQS probe queue, since moto cannot deliver to Lambda), the
lake bucket and a moto Firehose delivery stream writing raw records to it. ``outputs.json`` is written with
:func:`operations.outputs.write`, exactly as a local run writes it.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

import pipeline_config
from local_pipeline.generator import BurstSpec, generate
from operations.outputs import write
from sales_pipeline import cli
from tests.integration.terraform_support import run_moto_server

REGION = "us-east-1"
BUCKET = "carousel-lake-test"
STREAM = "carousel-sales-test"
DLQ = "carousel-dead-letter-test"
PROBE = "carousel-bus-probe"
RULE = "carousel-product-sold"
LAKE_PREFIX = "sales_history/"


@dataclass
class Stack:
    """The moto endpoint, the outputs file and boto3 clients on it."""

    endpoint: str
    outputs: Path
    dlq_url: str
    probe_url: str

    def client(self, service: str) -> Any:
        return session().client(service, endpoint_url=self.endpoint)

    def run(self, *argv: str) -> tuple[int, str, str]:
        """Run ``sales-pipeline ARGV --outputs <file>`` in-process; return (status, stdout, stderr)."""
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main([*argv, "--outputs", str(self.outputs)])
        return status, out.getvalue(), err.getvalue()

    # -- reading state independently of the commands under test ------------------------------------------

    def queue_bodies(self, url: str) -> list[str]:
        """Every message body in a queue (sorted), read and made visible again."""
        sqs = self.client("sqs")
        bodies: dict[str, str] = {}
        handles: list[str] = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30).get(
                "Messages", []
            )
            if not messages:
                break
            for message in messages:
                bodies[message["MessageId"]] = message["Body"]
                handles.append(message["ReceiptHandle"])
        for handle in handles:
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        return sorted(bodies.values())

    def drain(self, url: str) -> list[Any]:
        """Receive and delete every message of a queue; return the bodies (parsed when JSON)."""
        sqs = self.client("sqs")
        bodies = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return bodies
            for message in messages:
                try:
                    bodies.append(json.loads(message["Body"]))
                except ValueError:
                    bodies.append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def bucket(self) -> dict[str, bytes]:
        """Every object of the lake bucket: key -> body."""
        s3 = self.client("s3")
        objects = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
            for entry in page.get("Contents", []):
                objects[entry["Key"]] = s3.get_object(Bucket=BUCKET, Key=entry["Key"])["Body"].read()
        return objects


def session() -> boto3.session.Session:
    """Dummy credentials: module-scoped fixtures run before the suite's per-test credential fixture."""
    return boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
    )


def create_stack(endpoint: str, folder: Path) -> Stack:
    """Create the resources on the moto_server at ``endpoint`` and write ``folder/outputs.json``."""
    sqs = session().client("sqs", endpoint_url=endpoint)
    dlq_url = sqs.create_queue(QueueName=DLQ, Attributes={"MaximumMessageSize": str(256 * 1024)})["QueueUrl"]
    probe_url = sqs.create_queue(QueueName=PROBE)["QueueUrl"]
    probe_arn = sqs.get_queue_attributes(QueueUrl=probe_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = session().client("events", endpoint_url=endpoint)
    events.put_rule(Name=RULE, EventPattern=json.dumps(pipeline_config.load()["event_pattern"]))
    events.put_targets(Rule=RULE, Targets=[{"Id": "probe", "Arn": probe_arn}])
    session().client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    session().client("firehose", endpoint_url=endpoint).create_delivery_stream(
        DeliveryStreamName=STREAM,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose-test",
            "BucketARN": f"arn:aws:s3:::{BUCKET}",
            "Prefix": LAKE_PREFIX,
        },
    )
    outputs = folder / "outputs.json"
    write(
        outputs,
        {
            "aws_region": REGION,
            "endpoint_url": endpoint,
            "dead_letter_queue_url": dlq_url,
            "event_bus_name": "default",
            "lake_bucket_name": BUCKET,
            "lake_table_location": f"s3://{BUCKET}/{LAKE_PREFIX}",
            "firehose_error_prefix": f"s3://{BUCKET}/errors/",
            "delivery_stream_name": STREAM,
        },
    )
    return Stack(endpoint, outputs, dlq_url, probe_url)


@contextlib.contextmanager
def moto_stack(folder: Path) -> Iterator[Stack]:
    """A moto_server on 127.0.0.1 with the stack's resources, stopped afterwards."""
    with run_moto_server(folder / "moto_server.log") as endpoint:
        yield create_stack(endpoint, folder)


def valid_events(count: int, seed: int = 3) -> list[dict[str, Any]]:
    """``count`` valid sale events from the generator (no invalid, duplicate or unmatched ones)."""
    spec = BurstSpec(events=count, seed=seed, retry_share=0, republish_share=0, invalid_share=0, unmatched_share=0)
    return [generated.event for generated in generate(spec)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One moto_server stack for a test module."""
    with moto_stack(tmp_path_factory.mktemp("stack")) as created:
        yield created
