"""``errors``' library: what Firehose put under its error prefix, and putting it back (printing is the CLI's).

``reprocess`` works object by object, and never deletes before what replaces it has succeeded:

1. every record of the object is checked with the transform's own normaliser
   (:class:`~operations.error_records.TransformCheck`); a lake row (what format-conversion and partition
   failures hold) gets back the tenant its ``sale_id`` names, from the lake's tenant folders or ``--tenant``;
2. the records that would pass are put back, as they were (a compact record stays compact), into the delivery
   stream with PutRecordBatch (500 records / 4 MiB per call, rejected entries resent with backoff: the fan-out's
   own :class:`~fanout_lambda.adapters.FirehoseSender`); with several streams, each record into the stream its
   sale id names by the fan-out's rule (:func:`operations.streams.stream_index`);
3. only when all of them were accepted: an object whose records all passed is copied to
   ``reprocessed/<its key>`` and then deleted; an object with some records that would fail again is split:
   those records' envelopes are written, unchanged, to ``<its key>.still-failing`` beside it, the whole
   original is copied to ``reprocessed/<its key>``, and only then is the original deleted. Nothing is lost:
   the still-failing records stay under the error prefix (a later run, after a fix, picks them up), and the
   original object is kept whole under ``reprocessed/``.

An object whose records all fail again, or that cannot be parsed, is left untouched and reported. If a send
fails part-way, the object is left untouched too; a later run sends its records again, and the lake's
deduplicated view (one row per sale) absorbs the copies.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from operations.command_support import Progress, aws_call
from operations.error_records import (
    ErrorRecord,
    TransformCheck,
    UnreadableObject,
    parse_object,
    split_s3_url,
)
from operations.errors import OperatorError
from operations.streams import stream_index

__all__ = [
    "REPROCESSED_PREFIX",
    "STILL_FAILING_SUFFIX",
    "ErrorObject",
    "ErrorPrefix",
    "ObjectOutcome",
    "Reprocessor",
    "lake_tenants",
    "read_objects",
    "reprocess_all",
]

#: Where a reprocessed object is kept (outside the error prefix, so listings and alarms show only what is left).
REPROCESSED_PREFIX = "reprocessed/"
#: Suffix of the object that keeps a split object's records that would fail again.
STILL_FAILING_SUFFIX = ".still-failing"


@dataclass
class ErrorObject:
    """One object under the error prefix with its records (or why it could not be read)."""

    key: str
    records: list[ErrorRecord] = field(default_factory=list)
    unreadable: str | None = None


class ErrorPrefix:
    """The error prefix of one stack: list its objects, read and parse each one."""

    def __init__(self, s3: Any, url: str, error_type: str | None = None) -> None:
        try:
            self.bucket, self.root = split_s3_url(url)
        except ValueError as exc:
            raise OperatorError(f"output firehose_error_prefix: {exc}") from exc
        self.url = url
        self._s3 = s3
        self.prefix = f"{self.root}{error_type}/" if error_type else self.root

    def keys(self) -> list[str]:
        """Every object key under the prefix (paginated)."""
        paginator = self._s3.get_paginator("list_objects_v2")
        return [
            str(entry["Key"])
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)
            for entry in page.get("Contents", [])
        ]

    def read(self, key: str) -> ErrorObject:
        """One object, parsed into its records."""
        body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            return ErrorObject(key, parse_object(key, body, self.root))
        except UnreadableObject as exc:
            return ErrorObject(key, unreadable=str(exc))

    def objects(self, progress_label: str) -> Iterator[ErrorObject]:
        """Every object, read one after the other, with progress."""
        keys = self.keys()
        with Progress(progress_label, len(keys)) as progress:
            for key in keys:
                yield self.read(key)
                progress.advance()


def read_objects(prefix: ErrorPrefix) -> list[ErrorObject]:
    """Every object under ``prefix``, read and parsed (an SDK failure is one line naming the prefix)."""
    with aws_call(f"reading s3://{prefix.bucket}/{prefix.prefix}"):
        return list(prefix.objects("reading error objects"))


def reprocess_all(prefix: ErrorPrefix, reprocessor: Reprocessor) -> list[ObjectOutcome]:
    """Reprocess every object under ``prefix`` into the reprocessor's streams, one after the other; what became
    of each."""
    outcomes: list[ObjectOutcome] = []
    streams = reprocessor.streams
    into = f"stream {streams[0]!r}" if len(streams) == 1 else f"streams {', '.join(map(repr, streams))}"
    with aws_call(f"reprocessing s3://{prefix.bucket}/{prefix.prefix} into {into}"):
        for item in prefix.objects("reprocessing error objects"):
            outcomes.append(reprocessor.reprocess(item))
    return outcomes


# -- reprocess -------------------------------------------------------------------------------------------------


@dataclass
class ObjectOutcome:
    """What reprocess did (or would do) with one object."""

    key: str
    action: str  # moved | split | left | failed
    sent: int = 0
    tenant_restored: int = 0  # lake rows sent with the tenant their sale_id names
    still_failing: dict[str, int] = field(default_factory=dict)  # reason -> records
    detail: str = ""
    by_stream: dict[str, int] = field(default_factory=dict)  # stream -> records sent (or that would be) to it

    def as_json(self) -> dict[str, Any]:
        """The outcome as ``errors reprocess --json`` prints it."""
        return {
            "key": self.key,
            "action": self.action,
            "recordsSent": self.sent,
            "tenantRestored": self.tenant_restored,
            "stillFailing": self.still_failing,
            "detail": self.detail,
            "sentByStream": self.by_stream,
        }


class Reprocessor:
    """Reprocesses one object at a time; ``dry_run`` decides and reports without sending, writing or deleting.

    ``senders`` maps every delivery stream of the stack, stream 0 first, to its sender (``None`` in a dry run).
    """

    def __init__(
        self, prefix: ErrorPrefix, s3: Any, senders: Mapping[str, Any], check: TransformCheck, *, dry_run: bool
    ) -> None:
        if not senders:
            raise ValueError("no delivery stream to reprocess into")
        self.prefix = prefix
        self._s3 = s3
        self._senders = dict(senders)
        self.streams: Sequence[str] = tuple(self._senders)
        self.check = check
        self.dry_run = dry_run

    def stream_of(self, sale_id: str | None) -> str:
        """The stream a record goes back to: the one its sale id names (the fan-out's rule), stream 0 for a
        record without one."""
        if len(self.streams) == 1 or sale_id is None:
            return self.streams[0]
        return self.streams[stream_index(sale_id, len(self.streams))]

    def reprocess(self, item: ErrorObject) -> ObjectOutcome:
        """Check, send, then move or split ``item`` (see the module docstring for the order)."""
        if item.unreadable:
            return ObjectOutcome(item.key, "left", detail=f"cannot be parsed: {item.unreadable}")
        good: list[bytes] = []
        spread: dict[str, list[bytes]] = {}
        bad: list[ErrorRecord] = []
        reasons: Counter[str] = Counter()
        restored = 0
        for record in item.records:
            prepared = self.check.prepare(record)
            if prepared.data is not None:
                good.append(prepared.data)
                spread.setdefault(self.stream_of(prepared.sale_id), []).append(prepared.data)
                restored += prepared.tenant_restored
            else:
                bad.append(record)
                reasons[str(prepared.problem)] += 1
        by_stream = {stream: len(spread[stream]) for stream in self.streams if stream in spread}
        outcome = ObjectOutcome(
            item.key, "left", sent=len(good), tenant_restored=restored, still_failing=dict(reasons), by_stream=by_stream
        )
        if not good:
            outcome.detail = "every record would fail again"
            return outcome
        outcome.action = "split" if bad else "moved"
        if self.dry_run:
            return outcome
        from botocore.exceptions import ClientError  # noqa: PLC0415

        from fanout_lambda.errors import DeliveryIncomplete  # noqa: PLC0415

        try:
            for stream, records in spread.items():
                self._senders[stream].send(records)
        except DeliveryIncomplete as exc:  # names its stream
            # records already sent to other streams come again with a later run; the deduplicated view absorbs them
            return ObjectOutcome(item.key, "failed", still_failing=dict(reasons), detail=str(exc))
        try:
            if bad:
                self._put_remaining(item.key, bad)
            self._move(item.key)
        except ClientError as exc:  # the object stays (nothing is deleted before its copy exists); go on
            error = exc.response.get("Error", {})
            detail = f"records sent, but the object could not be moved: {error.get('Code')}: {error.get('Message')}"
            return ObjectOutcome(item.key, "failed", sent=len(good), still_failing=dict(reasons), detail=detail)
        return outcome

    def _put_remaining(self, key: str, bad: list[ErrorRecord]) -> None:
        body = "".join(json.dumps(record.envelope, separators=(",", ":")) + "\n" for record in bad).encode()
        self._s3.put_object(Bucket=self.prefix.bucket, Key=f"{key}{STILL_FAILING_SUFFIX}", Body=body)

    def _move(self, key: str) -> None:
        target = f"{REPROCESSED_PREFIX}{key}"
        self._s3.copy_object(
            Bucket=self.prefix.bucket, Key=target, CopySource={"Bucket": self.prefix.bucket, "Key": key}
        )
        # copy_object raises on failure, so the delete below only ever follows a copy that succeeded.
        self._s3.delete_object(Bucket=self.prefix.bucket, Key=key)


def lake_tenants(s3: Any, table_location: Any) -> list[str]:
    """The tenants with a partition folder in the lake (``<table>/tenant_id=X/``), if the outputs name it."""
    if not isinstance(table_location, str) or not table_location:
        return []
    bucket, prefix = split_s3_url(table_location if table_location.endswith("/") else f"{table_location}/")
    tenants = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        for common in page.get("CommonPrefixes", []):
            folder = str(common["Prefix"])[len(prefix) :].rstrip("/")
            if folder.startswith("tenant_id="):
                tenants.append(folder.removeprefix("tenant_id="))
    return tenants
