"""The embedded AWS session: moto in-process by default, or clients pointed at any endpoint (a moto_server).

:class:`EmbeddedAws` sets the environment up, creates what the fan-out and the local stream need (sales table
with GSI2, idempotency table, DLQ, lake bucket), keeps the sales items spilled to a file, sends to and reads the
dead-letter queue and mirrors the lake bucket to a local folder. Every client is bound to the embedded backend
or to ``endpoint_url``: nothing here can reach a real AWS account.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import orjson
from botocore import UNSIGNED
from botocore.config import Config
from moto import mock_aws

from local_pipeline.aws.dead_letters import InProcessDeadLetterQueue
from local_pipeline.aws.lake import MotoLakeWriter, moto_lake_objects, safe_path
from local_pipeline.aws.outputs import stack_outputs
from local_pipeline.aws.resources import ResourceNames, create_dead_letter_queue, create_tables
from local_pipeline.config import StreamConfig
from local_pipeline.context import ACCOUNT_ID
from local_pipeline.dynamodb_process import DynamoDBProcess, child_environment

__all__ = ["SPILL_OVER_ITEMS", "EmbeddedAws"]

#: The embedded DynamoDB moves the sales table's items to a file whenever they span more than this many partition
#: keys (products; a product is sold about once, so about this many items) (:meth:`EmbeddedAws.spill_sales_items`):
#: ~10 KB of moto objects each.
SPILL_OVER_ITEMS = 2000
#: moto keeps an S3 object in memory up to this size, then in a temporary file: the lake of a 100,000-event
#: run is ~500 MB of Parquet, which belongs on disk (moto's default buffer is ~5 MB per object).
_S3_KEY_BUFFER_BYTES = 64 * 1024


class EmbeddedAws:
    """A context manager: moto's ``mock_aws`` (no ``endpoint_url``) or clients pointed at ``endpoint_url``.

    In-process, DynamoDB is moto's too but runs in a child process (:mod:`~local_pipeline.dynamodb_process`),
    so the fan-out's DynamoDB work and the rest of the pipeline use both cores.
    """

    def __init__(self, *, region: str = "us-east-1", endpoint_url: str | None = None) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.names = ResourceNames.for_run("local" if endpoint_url is None else uuid.uuid4().hex[:8])
        self._mock: Any = None
        self._saved_env: dict[str, str | None] = {}
        self._clients: dict[str, Any] = {}
        self.queue_url = ""
        self.buffer_queue_url: str | None = None
        self.dynamodb_process: DynamoDBProcess | None = None
        self._spill: Path | None = None
        #: The dead-letter queue written in-process (bodies in a file); in-process only, from __enter__ on.
        self._dead_letters: InProcessDeadLetterQueue | None = None

    def __enter__(self) -> EmbeddedAws:
        # Credentials are never real here: moto ignores them and a local endpoint only needs them signed.
        settings = {**child_environment(self.region), "MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(_S3_KEY_BUFFER_BYTES)}
        for name, value in settings.items():
            self._saved_env[name] = os.environ.get(name)
            os.environ[name] = value
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            self._saved_env[name] = os.environ.pop(name, None)
        if self.endpoint_url is None:
            self._mock = mock_aws()
            self._mock.start()
            self.dynamodb_process = DynamoDBProcess(child_environment(self.region))
            self._dead_letters = InProcessDeadLetterQueue(self.region, self.names.dead_letter_queue)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.dynamodb_process is not None:
            self.dynamodb_process.close()
        if self._mock is not None:
            self._mock.stop()
        if self._spill is not None:
            self._spill.unlink(missing_ok=True)
        if self._dead_letters is not None:
            self._dead_letters.close()
            self._dead_letters = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def client(self, service: str) -> Any:
        """One boto3 client per service, bound to the embedded backend or the endpoint."""
        if service not in self._clients:
            if service == "dynamodb" and self.dynamodb_process is not None:
                # The child answers for the default account without reading a signature; signing every request
                # (~0.08 ms each, on the run's busiest thread) would buy nothing.
                client = boto3.client(service, region_name=self.region, config=Config(signature_version=UNSIGNED))
                self.dynamodb_process.attach(client)
            else:
                client = boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url)
            self._clients[service] = client
        return self._clients[service]

    def create_resources(self, *, buffer_queue: bool = False) -> None:
        """Create the tables, the dead-letter queue and the lake bucket the run writes to; with
        ``buffer_queue``, also the (empty) buffer queue, so its URL and ARN exist as in a deployed stack (the
        local runtime's :mod:`~local_pipeline.buffer_queue` carries the messages).

        The tables come last: their calls wait for the embedded DynamoDB process to start (~0.3 s, importing
        moto), which it does while this process sets up the queues and the bucket."""
        self.queue_url = create_dead_letter_queue(self.client("sqs"), self.names.dead_letter_queue)
        if buffer_queue:
            self.buffer_queue_url = self.client("sqs").create_queue(QueueName=self.names.buffer_queue)["QueueUrl"]
        bucket: dict[str, Any] = {"Bucket": self.names.lake_bucket}
        if self.region != "us-east-1":
            bucket["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.client("s3").create_bucket(**bucket)
        create_tables(self.client("dynamodb"), self.names.sales_table, self.names.idempotency_table)
        if self.dynamodb_process is not None:
            self.dynamodb_process.spill_when_over(
                SPILL_OVER_ITEMS, self.names.sales_table, self.region, ACCOUNT_ID, self._spill_path()
            )

    def stack_outputs(
        self, config: StreamConfig, *, trigger: str = "queue", stream_names: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """This run's resources under the names ``terraform/outputs.tf`` gives them (:func:`.outputs.stack_outputs`)."""
        return stack_outputs(self, config, trigger=trigger, stream_names=stream_names)

    def spill_sales_items(self) -> int:
        """Move the sales table's items out of the embedded DynamoDB into a temporary JSONL file; return
        how many.

        moto holds each ~4.4 KB sales item as ~10 KB of Python objects, ~1 GB for a 100,000-event run, and the
        pipeline never reads them back (duplicates are recognised by the idempotency table, which stays). The
        items are kept, on disk: :meth:`sales_items` yields them all. The embedded DynamoDB does this by itself
        whenever the table's items span more than :data:`SPILL_OVER_ITEMS` partition keys (set up by
        :meth:`create_resources`).
        Against an endpoint this does nothing (the items live in the server's memory, not this process's).
        """
        if self.dynamodb_process is None:
            return 0
        return self.dynamodb_process.spill_sales_items(
            self.names.sales_table, self.region, ACCOUNT_ID, self._spill_path()
        )

    def _spill_path(self) -> Path:
        if self._spill is None:
            handle, name = tempfile.mkstemp(prefix="sales-items-", suffix=".jsonl")
            os.close(handle)
            self._spill = Path(name)
        return self._spill

    def sales_items(self) -> Iterator[dict[str, Any]]:
        """Every item of the sales table (DynamoDB JSON), spilled or not, each key once (the latest write)."""
        seen: set[tuple[str, str]] = set()
        current = list(self._scan(self.names.sales_table))
        for item in current:
            seen.add((item["PK"]["S"], item["SK"]["S"]))
            yield item
        if self._spill is None or self._spill.stat().st_size == 0:
            return
        later: dict[tuple[str, str], dict[str, Any]] = {}
        with self._spill.open("rb") as spill:
            for line in spill:
                item = orjson.loads(line)
                key = (item["PK"]["S"], item["SK"]["S"])
                if key not in seen:
                    later[key] = item
        yield from later.values()

    def _scan(self, table: str) -> Iterator[dict[str, Any]]:
        paginator = self.client("dynamodb").get_paginator("scan")
        for page in paginator.paginate(TableName=table):
            yield from page.get("Items", [])

    def put_dead_letter(self, body: str) -> None:
        """Put one message into the dead-letter queue, as SendMessage does.

        In-process, the message goes straight into moto's queue (:class:`.dead_letters.InProcessDeadLetterQueue`
        says why); against an endpoint it is SendMessage.
        """
        if self.endpoint_url is not None:
            self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)
            return
        self._in_process_dead_letters().send(body)

    def send_dead_letters(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """SendMessageBatch to the dead-letter queue; the response SQS gives.

        In-process, checked and enqueued by :meth:`.dead_letters.InProcessDeadLetterQueue.send_batch`: moto's
        SendMessageBatch computes every attribute of the queue (three passes over its messages) for each entry,
        and a burst's fan-out sends thousands of rejected events there (py-spy: 28% of the run's busy time by
        event 30,000 of 100,000, and growing). Against an endpoint it is SendMessageBatch.
        """
        if self.endpoint_url is not None:
            response: dict[str, Any] = self.client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            return response
        return self._in_process_dead_letters().send_batch(entries)

    def _in_process_dead_letters(self) -> InProcessDeadLetterQueue:
        if self._dead_letters is None:
            raise RuntimeError("the in-process dead-letter queue exists only inside the EmbeddedAws context")
        return self._dead_letters

    def _moto_dead_letter_queue(self) -> Any:
        return self._in_process_dead_letters().moto_queue()

    def queue_arn(self, name: str) -> str:
        """The ARN of a queue of this run."""
        return f"arn:aws:sqs:{self.region}:{ACCOUNT_ID}:{name}"

    def metric_names(self, namespace: str) -> set[str]:
        """The metric names CloudWatch holds in ``namespace`` (read back to prove the metrics landed)."""
        paginator = self.client("cloudwatch").get_paginator("list_metrics")
        return {m["MetricName"] for page in paginator.paginate(Namespace=namespace) for m in page["Metrics"]}

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every object key of the lake bucket under ``prefix``."""
        paginator = self.client("s3").get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.names.lake_bucket, Prefix=prefix):
            for entry in page.get("Contents", []):
                yield str(entry["Key"])

    def get(self, key: str) -> bytes:
        """The body of one lake object."""
        body: bytes = self.client("s3").get_object(Bucket=self.names.lake_bucket, Key=key)["Body"].read()
        return body

    def mirror(self, out: Path) -> int:
        """Copy the lake bucket to ``out`` with the same key layout; return the number of objects copied."""
        root = out.resolve()
        count = 0
        for key, body in self._lake_objects():
            target = safe_path(root, key)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(body)
            count += 1
        return count

    def lake_writer(self) -> Any:
        """What the local Firehose puts the lake's objects with: ``put_object(Bucket=, Key=, Body=)``.

        Against an endpoint, the S3 client. In-process, moto's S3 backend directly (:class:`.lake.MotoLakeWriter`):
        the same object in the same bucket, without botocore's request and moto's stubber around it (~2 ms an
        object, 5% of the default run), and without the werkzeug request the stubber leaves in a reference
        cycle with its body (a Parquet object of ~2.5 MB at 100,000 events) until the collector finds it.
        """
        if self.endpoint_url is not None:
            return self.client("s3")
        return MotoLakeWriter(self.region)

    def _lake_objects(self) -> Iterator[tuple[str, bytes]]:
        """Every object of the lake bucket with its body, in key order.

        In-process, read from moto's S3 backend: a GetObject through botocore and moto's stubber costs ~1.4 ms
        an object, 0.21 s of the default run's 144 (3% of its time), for bytes already in this process.
        """
        if self.endpoint_url is not None:
            for key in self.keys():
                yield key, self.get(key)
            return
        yield from moto_lake_objects(self.region, self.names.lake_bucket)
