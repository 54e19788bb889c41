"""``sales-pipeline errors list | reprocess``: what Firehose put under its error prefix, and putting it back.

The work is in :mod:`operations.errors_prefix` (reading, checking, sending, moving; its docstring states the
order that never loses a record); this module parses and prints.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections import Counter

from operations.aws import AwsOptions
from operations.command_support import INCOMPLETE, aws_call, print_json
from operations.error_records import TransformCheck, group
from operations.errors_prefix import (
    REPROCESSED_PREFIX,
    STILL_FAILING_SUFFIX,
    ErrorPrefix,
    ObjectOutcome,
    Reprocessor,
    lake_tenants,
    read_objects,
    reprocess_all,
)
from operations.outputs import StackOutputs, delivery_stream_names
from sales_pipeline.options import add_aws_arguments, add_dry_run, add_json, stack

__all__ = ["register"]

#: Event ids shown per group in text output (``--json`` lists them all).
SHOWN = 5


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``errors``' description and its subcommands (list, reprocess) to its parser."""
    parser.description = (
        "Read the objects under the stack's Firehose error prefix (output firehose_error_prefix): "
        "records the transform failed (processing-failed), that did not convert to Parquet "
        "(format-conversion-failed) or found the active-partition limit reached (activePartitionExceeded)."
    )
    commands = parser.add_subparsers(dest="errors_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser(
        "list",
        help="error records grouped by error type, code and message, with counts and time range",
        description="Group the error records by error type (the folder after the prefix), error code and "
        "message, with record and object counts, arrival time range and the event ids decoded from rawData.",
    )
    _type_option(listing)
    listing.add_argument(
        "--records",
        action="store_true",
        help="also print each record's decoded data (a compact record as its JSON form)",
    )
    add_json(listing, "the groups")
    add_aws_arguments(listing)
    listing.set_defaults(handler=list_command)

    reprocess = commands.add_parser(
        "reprocess",
        help="put the records back into the delivery stream(s), then move each object under reprocessed/",
        description="Check each record with the transform's normaliser, put those that pass back, as they were "
        "(a compact record stays compact), into the delivery stream (output delivery_stream_name; with several, "
        "output delivery_stream_names, into the stream its sale id names, as the fan-out does) and, once all were "
        "accepted, copy the object to "
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
    add_json(reprocess, "the summary")
    add_dry_run(reprocess, "reprocess")
    add_aws_arguments(reprocess)
    reprocess.set_defaults(handler=reprocess_command)


def _type_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--type",
        dest="error_type",
        metavar="TYPE",
        help="only this error type (processing-failed, format-conversion-failed, activePartitionExceeded, ...)",
    )


def _prefix(args: argparse.Namespace, purpose: str) -> tuple[StackOutputs, AwsOptions, ErrorPrefix]:
    outputs, aws = stack(args, purpose=purpose)
    return outputs, aws, ErrorPrefix(aws.client("s3"), str(outputs.require("firehose_error_prefix")), args.error_type)


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- list ------------------------------------------------------------------------------------------------------


def list_command(args: argparse.Namespace) -> int:
    """``errors list``: error records grouped by type, code and message."""
    _, _, prefix = _prefix(args, "list its error records")
    objects = read_objects(prefix)
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
        malformed = item.malformed()
        if malformed and not args.records:
            more = f" (+{len(malformed) - SHOWN} more)" if len(malformed) > SHOWN else ""
            out.write(f"  unreadable data: {len(malformed)} record(s){more}\n")
            for where, problem in list(malformed.items())[:SHOWN]:
                out.write(f"    {where}: {problem}\n")
        if args.records:
            for record in item.records:
                out.write(f"  {record.key}#{record.index}: {_shorten(record.display())}\n")
    for broken in unreadable:
        out.write(f"\nunreadable: {broken.key}: {broken.unreadable}\n")
    return 0


def _shorten(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


# -- reprocess ---------------------------------------------------------------------------------------------------


def reprocess_command(args: argparse.Namespace) -> int:
    """``errors reprocess``: records back into the stream; objects moved under ``reprocessed/``."""
    outputs, aws, prefix = _prefix(args, "reprocess its error records")
    streams = delivery_stream_names(outputs)
    from fanout_lambda.adapters import FirehoseSender  # noqa: PLC0415

    s3 = aws.client("s3")
    firehose = None if args.dry_run else aws.client("firehose")
    senders = {stream: None if firehose is None else FirehoseSender(firehose, stream) for stream in streams}
    with aws_call("listing the lake's tenant partitions"):
        tenants = [*args.tenants, *lake_tenants(s3, outputs.get("lake_table_location"))]
    reprocessor = Reprocessor(prefix, s3, senders, TransformCheck(tenants=tenants), dry_run=args.dry_run)
    outcomes = reprocess_all(prefix, reprocessor)
    if args.json:
        print_json(
            {
                "dryRun": args.dry_run,
                "stream": streams[0],
                "streams": streams,
                "objects": [o.as_json() for o in outcomes],
            }
        )
    else:
        _print_summary(outcomes, prefix, streams, args.dry_run)
    incomplete = any(o.action in {"left", "failed"} or o.still_failing for o in outcomes)
    return INCOMPLETE if incomplete else 0


def _print_summary(outcomes: list[ObjectOutcome], prefix: ErrorPrefix, streams: list[str], dry_run: bool) -> None:
    out = sys.stdout
    would = "would be " if dry_run else ""
    by_action = Counter(o.action for o in outcomes)
    sent = sum(o.sent for o in outcomes if o.action in {"moved", "split"})
    restored = sum(o.tenant_restored for o in outcomes if o.action in {"moved", "split"})
    out.write(f"s3://{prefix.bucket}/{prefix.prefix}: {len(outcomes)} object(s)\n")
    if len(streams) == 1:
        into = repr(streams[0])
    else:
        by_stream: Counter[str] = Counter()
        for o in outcomes:
            if o.action in {"moved", "split"}:
                by_stream.update(o.by_stream)
        into = f"{len(streams)} streams by sale id ({', '.join(f'{s!r}: {by_stream[s]}' for s in streams)})"
    out.write(
        f"  records {would}sent to {into}: {sent}"
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
