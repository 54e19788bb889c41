"""The embedded AWS the local run talks to: moto in-process by default, or any endpoint (a moto_server).

It creates what the fan-out and the local stream need (sales table with GSI2, idempotency table, DLQ, lake
bucket), reads the dead-letter queue back and mirrors the lake bucket to a local folder. Every client is
bound to the embedded backend or to ``endpoint_url``: nothing here can reach a real AWS account.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
import orjson
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError
from moto import mock_aws

from fanout_lambda.adapters import MAX_SQS_MESSAGE_BYTES
from local_pipeline.config import StreamConfig
from local_pipeline.context import ACCOUNT_ID
from local_pipeline.dynamodb_process import DynamoDBProcess, child_environment
from local_pipeline.spill import BodyFile

__all__ = ["EmbeddedAws", "ResourceNames", "UnsafeKeyError", "dead_letter_body"]

#: The embedded DynamoDB moves the sales table's items to a file whenever they span more than this many partition
#: keys (products; a product is sold about once, so about this many items) (:meth:`EmbeddedAws.spill_sales_items`):
#: ~10 KB of moto objects each.
SPILL_OVER_ITEMS = 2000
#: moto keeps an S3 object in memory up to this size, then in a temporary file: the lake of a 100,000-event
#: run is ~500 MB of Parquet, which belongs on disk (moto's default buffer is ~5 MB per object).
_S3_KEY_BUFFER_BYTES = 64 * 1024


class UnsafeKeyError(ValueError):
    """An S3 key that would land outside the mirror folder (``..`` segments or an absolute path)."""


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
        #: moto's SQS message class with its bodies in a file (see _enqueue); in-process only, from __enter__ on.
        self._dead_letter_message: Any = None

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
            self._dead_letter_message = _message_with_filed_body(BodyFile())
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
        if self._dead_letter_message is not None:
            self._dead_letter_message.store.close()
            self._dead_letter_message = None
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

    def stack_outputs(self, config: StreamConfig, *, trigger: str = "queue") -> dict[str, Any]:
        """This run's resources under the names ``terraform/outputs.tf`` gives them (plus ``endpoint_url``).

        In-process moto is gone when the run ends, so ``endpoint_url`` is set only for a run against a server.
        """
        values: dict[str, Any] = {
            "aws_region": self.region,
            "lake_bucket_name": self.names.lake_bucket,
            "lake_table_location": f"s3://{self.names.lake_bucket}/{config.table_prefix}",
            "firehose_error_prefix": f"s3://{self.names.lake_bucket}/{config.error_output_prefix.split('!', 1)[0]}",
            "delivery_stream_name": config.stream_name,
            "sales_table_name": self.names.sales_table,
            "idempotency_table_name": self.names.idempotency_table,
            "dead_letter_queue_url": self.queue_url,
            "dead_letter_queue_arn": self.queue_arn(self.names.dead_letter_queue),
            "glue_table_name": config.table_name,
            "glue_database_name": config.glue_table["database"],
            "fanout_trigger": trigger,
            "buffer_queue_url": self.buffer_queue_url,
            "buffer_queue_arn": self.queue_arn(self.names.buffer_queue) if self.buffer_queue_url else None,
            "fanout_lambda_name": "sales-fanout-local",
            "transform_lambda_name": "sales-transform-local",
            "event_bus_name": "default",
        }
        if self.endpoint_url is not None:
            values["endpoint_url"] = self.endpoint_url
        return values

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

        In-process, the message goes straight into moto's queue: moto's SendMessage computes every attribute
        of the queue (counting its messages) on each call, so filling a DLQ with the thousands of messages a
        throttled burst leaves there took quadratic time (minutes for 10,000). The message is the same moto
        message SendMessage makes (id, body, MD5, sent timestamp); against an endpoint it is SendMessage.
        """
        if self.endpoint_url is not None:
            self.client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=body)
            return
        self._enqueue(body)

    def send_dead_letters(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """SendMessageBatch to the dead-letter queue; the response SQS gives.

        In-process, for the reason :meth:`put_dead_letter` gives: moto's SendMessageBatch computes every
        attribute of the queue (three passes over its messages) for each entry, and a burst's fan-out sends
        thousands of rejected events there (py-spy: 28% of the run's busy time by event 30,000 of 100,000, and
        growing). The request is checked as SQS checks it (moto's checks, in moto's order: entry ids, total
        size, distinct ids, at most 10, each body within the queue's maximum size), then each message is the
        one SendMessage makes (id, body, message attributes, sent now) added to moto's queue. Against an
        endpoint it is SendMessageBatch.
        """
        if self.endpoint_url is not None:
            response: dict[str, Any] = self.client("sqs").send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            return response
        from moto.sqs.models import MAXIMUM_MESSAGE_LENGTH  # type: ignore[attr-defined]  # noqa: PLC0415

        queue = self._moto_dead_letter_queue()
        ids = [str(entry["Id"]) for entry in entries]
        length = sum(len(entry["MessageBody"]) for entry in entries)
        if not all(_BATCH_ENTRY_ID.match(entry_id) for entry_id in ids):
            raise _sqs_error("InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, "
                             "hyphens and underscores. It can be at most 80 letters long.")  # fmt: skip
        if length > MAXIMUM_MESSAGE_LENGTH:
            raise _sqs_error(
                "BatchRequestTooLong",
                f"Batch requests cannot be longer than {MAXIMUM_MESSAGE_LENGTH} bytes. You have sent {length} bytes.",
            )
        if len(set(ids)) != len(ids):
            repeated = next(entry_id for position, entry_id in enumerate(ids) if entry_id in ids[:position])
            raise _sqs_error("BatchEntryIdsNotDistinct", f"Id {repeated} repeated.")
        if len(entries) > 10:
            raise _sqs_error(
                "TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are 10. You have sent {len(entries)}.",
            )
        for entry in entries:
            if len(entry["MessageBody"]) > queue.maximum_message_size:
                raise _sqs_error(
                    "InvalidParameterValue",
                    "One or more parameters are invalid. Reason: Message must be shorter than "
                    f"{queue.maximum_message_size} bytes.",
                )
        successful = []
        for entry in entries:
            message = self._enqueue(entry["MessageBody"], entry.get("MessageAttributes"))
            successful.append({"Id": entry["Id"], "MessageId": message.id, "MD5OfMessageBody": message.body_md5})
        return {"Successful": successful, "Failed": []}

    def _enqueue(self, body: str, attributes: dict[str, Any] | None = None) -> Any:
        """Add to moto's dead-letter queue the message SendMessage would make (id, body, message attributes,
        sent now), its body kept in a temporary file.

        A throttled burst leaves tens of thousands of events in the DLQ, ~11 KB each: 44,508 of them held
        ~0.5 GB as moto's strings (the 50,000-event burst, direct trigger, 1,000 requests/s), and nothing in a
        run reads them back but a receive (the run keeps its own copy in ``dead_letters.jsonl``). The message
        is moto's own class; only where its ``body`` lives changes (:class:`~local_pipeline.spill.BodyFile`).
        """
        message = self._dead_letter_message(str(uuid.uuid4()), body)
        if attributes:
            message.message_attributes = attributes
        queue = self._moto_dead_letter_queue()
        message.mark_sent(delay_seconds=queue.delay_seconds)
        queue.add_message(message)
        return message

    def _moto_dead_letter_queue(self) -> Any:
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto's in-process backend

        return sqs_backends[ACCOUNT_ID][self.region].get_queue(self.names.dead_letter_queue)

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

        Against an endpoint, the S3 client. In-process, moto's S3 backend directly (:class:`_MotoLakeWriter`):
        the same object in the same bucket, without botocore's request and moto's stubber around it (~2 ms an
        object, 5% of the default run), and without the werkzeug request the stubber leaves in a reference
        cycle with its body (a Parquet object of ~2.5 MB at 100,000 events) until the collector finds it.
        """
        if self.endpoint_url is not None:
            return self.client("s3")
        return _MotoLakeWriter(self.region)

    def _lake_objects(self) -> Iterator[tuple[str, bytes]]:
        """Every object of the lake bucket with its body, in key order.

        In-process, read from moto's S3 backend: a GetObject through botocore and moto's stubber costs ~1.4 ms
        an object, 0.21 s of the default run's 144 (3% of its time), for bytes already in this process.
        """
        if self.endpoint_url is not None:
            for key in self.keys():
                yield key, self.get(key)
            return
        backend = _moto_s3_backend(self.region)
        for key in sorted(backend.get_bucket(self.names.lake_bucket).keys.keys()):
            stored = backend.get_object(self.names.lake_bucket, key)
            if stored is not None:  # a key deleted since it was listed: nothing to copy
                yield key, stored.value


class _MotoLakeWriter:
    """PutObject into moto's in-process S3 backend (see :meth:`EmbeddedAws.lake_writer`)."""

    def __init__(self, region: str) -> None:
        self._backend = _moto_s3_backend(region)

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> dict[str, Any]:  # noqa: N803 - S3's names
        """Store ``Body`` under ``Key``, as PutObject does; the answer carries the object's ETag.

        moto's errors (a missing bucket) come back as the ``ClientError`` PutObject raises, with S3's code,
        so the local Firehose retries and discards as it would after a failed PutObject. Unlike PutObject
        through botocore, no CRC32 checksum is stored with the object (nothing in a run reads one).
        """
        from moto.core.exceptions import ServiceException  # noqa: PLC0415 - moto's in-process backend

        try:
            stored = self._backend.put_object(Bucket, Key, Body)
        except ServiceException as exc:
            raise ClientError({"Error": {"Code": exc.code, "Message": exc.message}}, "PutObject") from exc
        return {"ETag": stored.etag}


def _moto_s3_backend(region: str) -> Any:
    """moto's in-process S3 backend that holds this run's buckets (S3's backends are per partition)."""
    from moto.s3.models import s3_backends  # noqa: PLC0415 - moto's in-process backend
    from moto.utilities.utils import get_partition  # noqa: PLC0415

    return s3_backends[ACCOUNT_ID][get_partition(region)]


def dead_letter_body(body: str) -> dict[str, Any]:
    """A DLQ message body parsed, its event restored: the fan-out gzips an event too large for one message."""
    message: dict[str, Any] = json.loads(body)
    packed = message.pop("eventGzipBase64", None)
    if packed is not None:
        message["event"] = json.loads(gzip.decompress(base64.b64decode(packed)))
    return message


def _message_with_filed_body(bodies: BodyFile) -> Any:
    """moto's SQS ``Message`` class, with each message's body written to ``bodies`` instead of held."""
    from moto.sqs.models import Message  # noqa: PLC0415 - moto's in-process backend

    class FiledMessage(Message):
        #: Where the bodies are (closed by EmbeddedAws when the run ends).
        store = bodies

        @property
        def body(self) -> str:
            return self.store.get(self._body_at).decode("utf-8")

        @body.setter
        def body(self, value: str) -> None:
            self._body_at = self.store.put(value.encode("utf-8"))

    return FiledMessage


_BATCH_ENTRY_ID = re.compile(r"^[\w-]{1,80}$")


def _sqs_error(code: str, message: str) -> ClientError:
    """The error SQS (and moto) answers SendMessageBatch with: batch errors carry the service's prefix."""
    prefixed = code if code == "InvalidParameterValue" else f"AWS.SimpleQueueService.{code}"
    error = {"Code": prefixed, "Message": message, "QueryErrorCode": code, "Type": "Sender"}
    return ClientError({"Error": error}, "SendMessageBatch")


def safe_path(root: Path, key: str) -> Path:
    """``root / key``, refusing a key that would resolve outside ``root`` (S3 keys may hold ``..``)."""
    target = (root / key).resolve()
    if key.startswith("/") or not target.is_relative_to(root):
        raise UnsafeKeyError(f"S3 key {key!r} would be written outside {root}")
    return target


def create_tables(dynamodb: Any, sales_table: str, idempotency_table: str) -> None:
    """The sales table (PK/SK, GSI2 on GSI2PK/GSI2SK) and Powertools' idempotency table (``id``).

    Keys as Terraform deploys them; GSI2 projects ALL here (Terraform projects a cost-saving INCLUDE list),
    which changes no behaviour of the pipeline, only what an embedding query could read back.
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
                "Projection": {"ProjectionType": "ALL"},
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
    queue_url: str = sqs.create_queue(QueueName=name, Attributes={"MaximumMessageSize": str(MAX_SQS_MESSAGE_BYTES)})[
        "QueueUrl"
    ]
    return queue_url
