"""``sales-pipeline dlq list | show | replay``: read the dead-letter queue and re-publish what can succeed now.

The work is in :mod:`operations.dlq` (reading, replay plans, replay); this module parses and prints.
``list`` and ``show`` change nothing: each message is hidden while it is read and made visible again after.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from operations.aws import AwsOptions
from operations.command_support import INCOMPLETE, format_age, print_json
from operations.dead_letters import KIND_TITLES, REPLAYABLE_KINDS, DeadLetter, QueueReader, abbreviate, find, group, now
from operations.dlq import ReplaySummary, read_letters, replay, validator
from operations.errors import OperatorError
from operations.outputs import StackOutputs
from operations.publisher import EventPublisher
from sales_pipeline.options import add_aws_arguments, add_dry_run, add_json, bounded_integer, positive, stack

__all__ = ["register"]

#: Event ids shown per group in text output (``--json`` lists them all).
SHOWN_IDS = 5


def register(parser: argparse.ArgumentParser) -> None:
    """Add ``dlq``'s description and its subcommands (list, show, replay) to its parser."""
    parser.description = (
        "Read the stack's dead-letter queue (output dead_letter_queue_url): rejected events, events "
        "EventBridge could not deliver, and events the fan-out failed on after every retry."
    )
    commands = parser.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser(
        "list",
        help="messages grouped by kind and reason, with counts, oldest age and event ids",
        description="Group the queue's messages by kind and reason. Read-only in effect: each message is hidden "
        "for --visibility-timeout while the listing runs (other readers of the queue do not see it meanwhile), "
        "then made visible again.",
    )
    add_json(listing, "the groups")
    _reader_options(listing, default_timeout=60)
    add_aws_arguments(listing)
    listing.set_defaults(handler=list_command)

    show = commands.add_parser(
        "show",
        help="one message with its decoded event",
        description="Print one message (by SQS message id or event id) with its kind, reason, attributes and "
        "decoded event (gzip+base64 bodies included). Long arrays are abbreviated unless --json.",
    )
    show.add_argument("id", metavar="ID", help="SQS message id or the event's id")
    add_json(show, "the message and its full event")
    _reader_options(show, default_timeout=60)
    add_aws_arguments(show)
    show.set_defaults(handler=show_command)

    replay = commands.add_parser(
        "replay",
        help="re-publish failed and undeliverable events to the bus, then delete their messages",
        description="Re-publish each message's original event (source, detail-type, detail, resources, time) to "
        "the stack's bus with PutEvents (10 entries / 256 KB per call, rejected entries resent with backoff) "
        "and delete the message once its event was accepted. By default only events that can succeed now: "
        "undeliverable ones and those the fan-out failed on. Rejected events only with --rejected, each "
        "re-validated first with the fan-out's own validator; one that would be rejected again stays.",
    )
    replay.add_argument(
        "--rejected",
        action="store_true",
        help="also replay events the fan-out rejected (after fixing the cause, e.g. a tenant onboarded); "
        "each is re-validated first and left in the queue if it would be rejected again",
    )
    add_json(replay, "the summary")
    add_dry_run(replay, "replay")
    _reader_options(replay, default_timeout=300)
    add_aws_arguments(replay)
    replay.set_defaults(handler=replay_command)


def _reader_options(parser: argparse.ArgumentParser, default_timeout: int) -> None:
    parser.add_argument(
        "--visibility-timeout",
        type=bounded_integer(1, 43200, why=" (SQS's 12-hour limit)"),
        default=default_timeout,
        metavar="SECONDS",
        help="how long each received message stays hidden while this command works (default: %(default)s); "
        "messages are made visible again as soon as it is done",
    )
    parser.add_argument(
        "--max-messages",
        type=positive,
        metavar="N",
        help="read at most N messages (default: all; SQS hides at most 120,000 in-flight messages at once)",
    )


# -- list --------------------------------------------------------------------------------------------------------


def _reader(args: argparse.Namespace) -> tuple[StackOutputs, AwsOptions, QueueReader]:
    outputs, aws = stack(args, purpose="read its dead-letter queue")
    queue_url = str(outputs.require("dead_letter_queue_url"))
    reader = QueueReader(
        aws.client("sqs"), queue_url, visibility_timeout=args.visibility_timeout, limit=args.max_messages
    )
    return outputs, aws, reader


def _read_all(args: argparse.Namespace, wanted: str | None = None) -> tuple[str, list[DeadLetter], QueueReader]:
    """Read every message (or until one with id ``wanted`` is found), then make them all visible again."""
    _, _, reader = _reader(args)
    return reader.queue_url, read_letters(reader, wanted), reader


def list_command(args: argparse.Namespace) -> int:
    """``dlq list``: the messages grouped by kind and reason."""
    queue_url, letters, reader = _read_all(args)
    moment = now()
    groups = group(letters)
    if args.json:
        print_json(
            {
                "queueUrl": queue_url,
                "messages": len(letters),
                "complete": not reader.report.stopped_at_limit,
                "groups": [item.as_json(moment) for item in groups],
            }
        )
        return 0
    out = sys.stdout
    counts: Counter[str] = Counter(letter.kind for letter in letters)
    replayable = sum(counts[kind] for kind in REPLAYABLE_KINDS)
    out.write(
        f"{queue_url}: {len(letters)} message(s); {replayable} replayable now, "
        f"{counts['rejected']} rejected (replay with --rejected), {counts['unknown']} unknown\n"
    )
    if reader.report.stopped_at_limit:
        out.write(f"(stopped at --max-messages {args.max_messages}; the queue may hold more)\n")
    for item in groups:
        oldest = item.oldest_ms()
        age = "?" if oldest is None else format_age(moment - oldest / 1000)
        out.write(f"\n{item.kind}: {len(item.letters)} message(s), oldest {age} ({KIND_TITLES[item.kind]})\n")
        out.write(f"  reason: {item.reason}\n")
        ids = [letter.event_id or f"message {letter.message_id}" for letter in item.letters]
        more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
        out.write(f"  events: {', '.join(ids[:SHOWN_IDS])}{more}\n")
    _warn_reappeared(reader)
    return 0


def show_command(args: argparse.Namespace) -> int:
    """``dlq show ID``: one message by SQS message id or event id, with its decoded event."""
    queue_url, letters, reader = _read_all(args, wanted=args.id)
    letter = find(letters, args.id)
    if letter is None:
        raise OperatorError(f"no message with message id or event id {args.id!r} in {queue_url}", INCOMPLETE)
    moment = now()
    if args.json:
        print_json(letter.as_json(moment))
        return 0
    out = sys.stdout
    age = letter.age_seconds(moment)
    out.write(f"message   {letter.message_id}\n")
    out.write(f"kind      {letter.kind} ({KIND_TITLES[letter.kind]})\n")
    out.write(f"reason    {letter.reason}\n")
    out.write(f"event id  {letter.event_id}\n")
    out.write(f"age       {'?' if age is None else format_age(age)} (received {letter.receive_count} time(s))\n")
    for key, value in letter.error.items():
        out.write(f"  {key}: {value}\n")
    for key, value in sorted(letter.attributes.items()):
        if key not in letter.error:
            out.write(f"  attribute {key}: {value}\n")
    if letter.event is None:
        out.write(f"body:\n{letter.body}\n")
    else:
        out.write("event (arrays over 8 items abbreviated; --json prints it whole):\n")
        print_json(abbreviate(letter.event), out)
    _warn_reappeared(reader)
    return 0


def _warn_reappeared(reader: QueueReader) -> None:
    if reader.report.reappeared:
        sys.stderr.write(
            f"warning: {reader.report.reappeared} message(s) reappeared while reading: the pass took longer than "
            f"--visibility-timeout {reader.visibility_timeout}; raise it to be sure every message was read\n"
        )
    if reader.report.release_failed:
        sys.stderr.write(
            f"warning: {reader.report.release_failed} message(s) could not be made visible again; they reappear "
            f"by themselves after --visibility-timeout {reader.visibility_timeout} s\n"
        )


# -- replay ------------------------------------------------------------------------------------------------------


def replay_command(args: argparse.Namespace) -> int:
    """``dlq replay``: re-publish replayable events, delete their messages once accepted, release the rest."""
    outputs, aws, reader = _reader(args)
    queue_url = reader.queue_url
    bus_name = str(outputs.require("event_bus_name"))
    validate = validator() if args.rejected else None
    publisher = None if args.dry_run else EventPublisher(aws.client("events"))
    summary = ReplaySummary()
    try:
        replay(
            reader,
            publisher=publisher,
            summary=summary,
            bus_name=bus_name,
            include_rejected=args.rejected,
            validate=validate,
        )
    except OperatorError:
        # What was done before the failure is still reported: those messages are gone from the queue.
        _print_summary(summary, queue_url, bus_name, args.dry_run)
        raise
    if args.json:
        print_json(summary.as_json(args.dry_run))
    else:
        _print_summary(summary, queue_url, bus_name, args.dry_run)
    _warn_reappeared(reader)
    return INCOMPLETE if summary.failed or summary.not_deleted else 0


def _print_summary(summary: ReplaySummary, queue_url: str, bus_name: str, dry_run: bool) -> None:
    out = sys.stdout
    out.write(f"{queue_url}: {summary.read} message(s) read\n")
    if dry_run:
        out.write(f"  would replay  {len(summary.would_replay)} to bus {bus_name!r} (dry run: nothing published, ")
        out.write("nothing deleted)\n")
        _print_ids(summary.would_replay)
    else:
        out.write(f"  replayed      {len(summary.replayed)} (accepted by bus {bus_name!r}; messages deleted)\n")
    skipped = sum(len(ids) for ids in summary.skipped.values())
    out.write(f"  skipped       {skipped}\n")
    for reason, ids in summary.skipped.items():
        out.write(f"    {len(ids):>4}  {reason}\n")
        _print_ids(ids, indent="          ")
    if summary.failed:
        codes = Counter(summary.failed.values())
        shown = ", ".join(f"{code} x{count}" for code, count in codes.most_common())
        out.write(f"  failed        {len(summary.failed)} (PutEvents kept rejecting them: {shown})\n")
        _print_ids(list(summary.failed))
    if summary.not_deleted:
        out.write(
            f"  not deleted   {len(summary.not_deleted)} (replayed, but DeleteMessage failed: a later replay sends "
            "them again, which the fan-out's idempotency absorbs)\n"
        )
    out.write(f"  left          {summary.left} in the queue (visible again)\n")


def _print_ids(ids: list[str], indent: str = "                ") -> None:
    if ids:
        more = f" (+{len(ids) - SHOWN_IDS} more)" if len(ids) > SHOWN_IDS else ""
        sys.stdout.write(f"{indent}{', '.join(ids[:SHOWN_IDS])}{more}\n")
