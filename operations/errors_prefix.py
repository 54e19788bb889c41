"""``sales-pipeline errors list | reprocess``: what Firehose put under its error prefix, and putting it back.

``reprocess`` works object by object, and never deletes before what replaces it has succeeded:

1. every record of the object is checked with the transform's own normaliser
   (:class:`~operations.error_records.TransformCheck`); a lake row (what format-conversion and partition
   failures hold) gets back the tenant its ``sale_id`` names, from the lake's tenant folders or ``--tenant``;
2. the records that would pass are put back into the delivery stream with PutRecordBatch (500 records /
   4 MiB per call, rejected entries resent with backoff: the fan-out's own
   :class:`~fanout_lambda.adapters.FirehoseSender`);
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

import argparse
import datetime as dt
import json
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from operations.aws import AwsOptions, add_arguments
from operations.command_support import INCOMPLETE, Progress, add_dry_run, aws_call, print_json, stack
from operations.error_records import (
    ErrorRecord,
    TransformCheck,
    UnreadableObject,
    group,
    parse_object,
    split_s3_url,
)
from operations.errors import OperatorError
from operations.outputs import StackOutputs

__all__ = ["REPROCESSED_PREFIX", "STILL_FAILING_SUFFIX", "register"]

#: Where a reprocessed object is kept (outside the error prefix, so listings and alarms show only what is left).
REPROCESSED_PREFIX = "reprocessed/"
#: Suffix of the object that keeps a split object's records that would fail again.
STILL_FAILING_SUFFIX = ".still-failing"
SHOWN = 5


def register(subparsers: Any) -> None:
    """Add ``errors`` and its subcommands to the ``sales-pipeline`` parser."""
    errors = subparsers.add_parser(
        "errors",
        help="list and reprocess the records Firehose put under its error prefix",
        description="Read the objects under the stack's Firehose error prefix (output firehose_error_prefix): "
        "records the transform failed (processing-failed), that did not convert to Parquet "
        "(format-conversion-failed) or found the active-partition limit reached (activePartitionExceeded).",
    )
    commands = errors.add_subparsers(dest="errors_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser(
        "list",
        help="error records grouped by error type, code and message, with counts and time range",
        description="Group the error records by error type (the folder after the prefix), error code and "
        "message, with record and object counts, arrival time range and the event ids decoded from rawData.",
    )
    _type_option(listing)
    listing.add_argument("--records", action="store_true", help="also print each record's decoded data")
    listing.add_argument("--json", action="store_true", help="print the groups as JSON")
    add_arguments(listing)
    listing.set_defaults(handler=list_command)

    reprocess = commands.add_parser(
        "reprocess",
        help="put the records back into the delivery stream, then move each object under reprocessed/",
        description="Check each record with the transform's normaliser, put those that pass back into the "
        "delivery stream (output delivery_stream_name) and, once all were accepted, copy the object to "
        f"{REPROCESSED_PREFIX}<key> and delete it. Records that would fail again stay under the error prefix "
        f"(an object with some of them is split: they go to <key>{STILL_FAILING_SUFFIX}).",
    )
    _type_option(reprocess)
    reprocess.add_argument(
        "--tenant",
        dest="tenants",
        action="append",
        default=[],
        metavar="TENANT_ID",
        help="a tenant a lake row (format-conversion-failed, activePartitionExceeded) may belong to, besides "
        "those with a folder in the lake (output lake_table_location); repeatable",
    )
    reprocess.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_dry_run(reprocess, "reprocess")
    add_arguments(reprocess)
    reprocess.set_defaults(handler=reprocess_command)


def _type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        dest="error_type",
        metavar="TYPE",
        help="only this error type (processing-failed, format-conversion-failed, activePartitionExceeded, ...)",
    )


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


def _prefix(args: argparse.Namespace) -> tuple[StackOutputs, AwsOptions, ErrorPrefix]:
    outputs, aws = stack(args)
    return outputs, aws, ErrorPrefix(aws.client("s3"), str(outputs.require("firehose_error_prefix")), args.error_type)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- list ------------------------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    """``errors list``: error records grouped by type, code and message."""
    _, _, prefix = _prefix(args)
    with aws_call(f"reading s3://{prefix.bucket}/{prefix.prefix}"):
        objects = list(prefix.objects("reading error objects"))
    records = [record for item in objects for record in item.records]
    unreadable = [item for item in objects if item.unreadable]
    groups = group(records)
    if args.json:
        print_json(
            {
                "prefix": f"s3://{prefix.bucket}/{prefix.prefix}",
                "objects": len(objects),
                "records": len(records),
                "groups": [item.as_json() for item in groups],
                "unreadable": {item.key: item.unreadable for item in unreadable},
            }
        )
        return 0
    out = sys.stdout
    out.write(f"s3://{prefix.bucket}/{prefix.prefix}: {len(objects)} object(s), {len(records)} record(s)\n")
    for item in groups:
        span = item.arrival_range()
        when = "" if span is None else f", arrived {_when(span[0])} .. {_when(span[1])} UTC"
        out.write(f"\n{item.error_type}  {item.code}: {len(item.records)} record(s) in {len(item.objects)} object(s)")
        out.write(f"{when}\n")
        if item.message:
            out.write(f"  message: {item.message}\n")
        ids = [event_id for event_id in (record.event_id() for record in item.records) if event_id]
        if ids:
            more = f" (+{len(ids) - SHOWN} more)" if len(ids) > SHOWN else ""
            out.write(f"  events: {', '.join(ids[:SHOWN])}{more}\n")
        if args.records:
            for record in item.records:
                data = record.data.decode("utf-8", "replace") if record.data is not None else record.data_problem
                out.write(f"  {record.key}#{record.index}: {_shorten(str(data))}\n")
    for broken in unreadable:
        out.write(f"\nunreadable: {broken.key}: {broken.unreadable}\n")
    return 0


def _shorten(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


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

    def as_json(self) -> dict[str, Any]:
        """The outcome as ``errors reprocess --json`` prints it."""
        return {
            "key": self.key,
            "action": self.action,
            "recordsSent": self.sent,
            "tenantRestored": self.tenant_restored,
            "stillFailing": self.still_failing,
            "detail": self.detail,
        }


class Reprocessor:
    """Reprocesses one object at a time; ``dry_run`` decides and reports without sending, writing or deleting."""

    def __init__(self, prefix: ErrorPrefix, s3: Any, sender: Any, check: TransformCheck, *, dry_run: bool) -> None:
        self.prefix = prefix
        self._s3 = s3
        self._sender = sender
        self.check = check
        self.dry_run = dry_run

    def reprocess(self, item: ErrorObject) -> ObjectOutcome:
        """Check, send, then move or split ``item`` (see the module docstring for the order)."""
        if item.unreadable:
            return ObjectOutcome(item.key, "left", detail=f"cannot be parsed: {item.unreadable}")
        good: list[bytes] = []
        bad: list[ErrorRecord] = []
        reasons: Counter[str] = Counter()
        restored = 0
        for record in item.records:
            prepared = self.check.prepare(record)
            if prepared.data is not None:
                good.append(prepared.data)
                restored += prepared.tenant_restored
            else:
                bad.append(record)
                reasons[str(prepared.problem)] += 1
        outcome = ObjectOutcome(item.key, "left", sent=len(good), tenant_restored=restored, still_failing=dict(reasons))
        if not good:
            outcome.detail = "every record would fail again"
            return outcome
        outcome.action = "split" if bad else "moved"
        if self.dry_run:
            return outcome
        from botocore.exceptions import ClientError  # noqa: PLC0415

        from fanout_lambda.errors import DeliveryIncomplete  # noqa: PLC0415

        try:
            self._sender.send(good)
        except DeliveryIncomplete as exc:
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


def reprocess_command(args: argparse.Namespace) -> int:
    """``errors reprocess``: records back into the stream; objects moved under ``reprocessed/``."""
    outputs, aws, prefix = _prefix(args)
    stream = str(outputs.require("delivery_stream_name"))
    from fanout_lambda.adapters import FirehoseSender  # noqa: PLC0415

    s3 = aws.client("s3")
    sender = None if args.dry_run else FirehoseSender(aws.client("firehose"), stream)
    with aws_call("listing the lake's tenant partitions"):
        tenants = [*args.tenants, *_lake_tenants(s3, outputs.get("lake_table_location"))]
    reprocessor = Reprocessor(prefix, s3, sender, TransformCheck(tenants=tenants), dry_run=args.dry_run)
    outcomes: list[ObjectOutcome] = []
    with aws_call(f"reprocessing s3://{prefix.bucket}/{prefix.prefix} into stream {stream!r}"):
        for item in prefix.objects("reprocessing error objects"):
            outcomes.append(reprocessor.reprocess(item))
    if args.json:
        print_json({"dryRun": args.dry_run, "stream": stream, "objects": [o.as_json() for o in outcomes]})
    else:
        _print_summary(outcomes, prefix, stream, args.dry_run)
    incomplete = any(o.action in {"left", "failed"} or o.still_failing for o in outcomes)
    return INCOMPLETE if incomplete else 0


def _lake_tenants(s3: Any, table_location: Any) -> list[str]:
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


def _print_summary(outcomes: list[ObjectOutcome], prefix: ErrorPrefix, stream: str, dry_run: bool) -> None:
    out = sys.stdout
    would = "would be " if dry_run else ""
    by_action = Counter(o.action for o in outcomes)
    sent = sum(o.sent for o in outcomes if o.action in {"moved", "split"})
    restored = sum(o.tenant_restored for o in outcomes if o.action in {"moved", "split"})
    out.write(f"s3://{prefix.bucket}/{prefix.prefix}: {len(outcomes)} object(s)\n")
    out.write(
        f"  records {would}sent to {stream!r}: {sent}"
        + (f" ({restored} lake row(s) with the tenant their sale_id names)" if restored else "")
        + (" (dry run: nothing sent, moved or written)" if dry_run else "")
        + "\n"
    )
    out.write(f"  objects {would}moved to s3://{prefix.bucket}/{REPROCESSED_PREFIX}: {by_action['moved']}\n")
    out.write(
        f"  objects {would}split (good records sent, the rest kept in <key>{STILL_FAILING_SUFFIX}, "
        f"original under {REPROCESSED_PREFIX}): {by_action['split']}\n"
    )
    out.write(f"  objects left in place: {by_action['left']}\n")
    if by_action["failed"]:
        out.write(f"  objects whose records Firehose did not all accept (left in place): {by_action['failed']}\n")
    reasons: Counter[str] = Counter()
    for o in outcomes:
        reasons.update(o.still_failing)
    if reasons:
        out.write(f"  records that would fail again (kept under {prefix.root}):\n")
        for reason, count in reasons.most_common():
            out.write(f"    {count:>4}  {reason}\n")
    for o in outcomes:
        if o.detail and o.action in {"left", "failed"}:
            out.write(f"  {o.key}: {o.detail}\n")
