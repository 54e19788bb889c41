"""``sales-pipeline dlq list | show | replay``: read the dead-letter queue and re-publish what can succeed now.

``list`` and ``show`` change nothing: they receive every message with a visibility timeout (hidden from other
readers of the queue meanwhile) and make each visible again when done. ``replay`` re-publishes events to the
stack's bus (:mod:`operations.publisher`) and deletes a message only once the bus accepted its event; every
message it does not replay is made visible again.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from operations.aws import add_arguments
from operations.command_support import INCOMPLETE, Progress, add_dry_run, aws_call, format_age, print_json, stack
from operations.dead_letters import (
    KIND_TITLES,
    REPLAYABLE_KINDS,
    DeadLetter,
    QueueReader,
    abbreviate,
    find,
    group,
    now,
)
from operations.errors import OperatorError
from operations.publisher import EventPublisher, InvalidEvent, entry_from_event

__all__ = ["ReplayPlan", "plan_replay", "register"]

#: Event ids shown per group in text output (``--json`` lists them all).
SHOWN_IDS = 5


def register(subparsers: Any) -> None:
    """Add ``dlq`` and its subcommands to the ``sales-pipeline`` parser."""
    dlq = subparsers.add_parser(
        "dlq",
        help="list, show and replay the dead-letter queue",
        description="Read the stack's dead-letter queue (output dead_letter_queue_url): rejected events, events "
        "EventBridge could not deliver, and events the fan-out failed on after every retry.",
    )
    commands = dlq.add_subparsers(dest="dlq_command", required=True, metavar="SUBCOMMAND")

    listing = commands.add_parser(
        "list",
        help="messages grouped by kind and reason, with counts, oldest age and event ids",
        description="Group the queue's messages by kind and reason. Read-only in effect: each message is hidden "
        "for --visibility-timeout while the listing runs (other readers of the queue do not see it meanwhile), "
        "then made visible again.",
    )
    listing.add_argument("--json", action="store_true", help="print the groups as JSON")
    _reader_options(listing, default_timeout=60)
    add_arguments(listing)
    listing.set_defaults(handler=list_command)

    show = commands.add_parser(
        "show",
        help="one message with its decoded event",
        description="Print one message (by SQS message id or event id) with its kind, reason, attributes and "
        "decoded event (gzip+base64 bodies included). Long arrays are abbreviated unless --json.",
    )
    show.add_argument("id", metavar="ID", help="SQS message id or the event's id")
    show.add_argument("--json", action="store_true", help="print the message and its full event as JSON")
    _reader_options(show, default_timeout=60)
    add_arguments(show)
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
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_dry_run(replay, "replay")
    _reader_options(replay, default_timeout=300)
    add_arguments(replay)
    replay.set_defaults(handler=replay_command)


def _reader_options(parser: argparse.ArgumentParser, default_timeout: int) -> None:
    parser.add_argument(
        "--visibility-timeout",
        type=_seconds,
        default=default_timeout,
        metavar="SECONDS",
        help="how long each received message stays hidden while this command works (default: %(default)s); "
        "messages are made visible again as soon as it is done",
    )
    parser.add_argument(
        "--max-messages",
        type=_positive,
        metavar="N",
        help="read at most N messages (default: all; SQS hides at most 120,000 in-flight messages at once)",
    )


# -- list ------------------------------------------------------------------------------------------------------


def _read_all(args: argparse.Namespace, wanted: str | None = None) -> tuple[str, list[DeadLetter], QueueReader]:
    """Read every message (or until one with id ``wanted`` is found), then make them all visible again."""
    outputs, aws = stack(args)
    queue_url = str(outputs.require("dead_letter_queue_url"))
    reader = QueueReader(
        aws.client("sqs"), queue_url, visibility_timeout=args.visibility_timeout, limit=args.max_messages
    )
    letters: list[DeadLetter] = []
    try:
        with aws_call(f"reading the dead-letter queue {queue_url}"):
            total = reader.approximate_count()
            with Progress("reading the dead-letter queue", total) as progress:
                for batch in reader.batches():
                    letters.extend(batch)
                    progress.advance(len(batch), total=max(total, len(letters)))
                    if wanted is not None and find(batch, wanted) is not None:
                        break
    finally:
        with aws_call(f"making messages visible again in {queue_url}"):
            reader.release()
    return queue_url, letters, reader


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


# -- replay ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplayPlan:
    """What replay does with one message: publish ``entry``, or skip it for ``skip``."""

    letter: DeadLetter
    entry: dict[str, Any] | None = None
    skip: str | None = None


def plan_replay(
    letter: DeadLetter,
    *,
    bus_name: str,
    include_rejected: bool,
    validate: Callable[[Any], object] | None,
) -> ReplayPlan:
    """Decide one message: unknown and (by default) rejected messages are skipped; a rejected event that
    ``validate`` still refuses is skipped with the reason it would be rejected again."""
    if letter.kind == "unknown":
        return ReplayPlan(letter, skip=f"not a message this pipeline writes ({letter.reason})")
    if letter.kind == "rejected" and not include_rejected:
        return ReplayPlan(letter, skip="rejected by validation: replayed only with --rejected")
    try:
        entry = entry_from_event(letter.event, bus_name)
    except InvalidEvent as exc:
        return ReplayPlan(letter, skip=f"cannot be re-published: {exc}")
    if letter.kind == "rejected" and validate is not None:
        from fanout_lambda.errors import InvalidSaleEvent  # noqa: PLC0415

        try:
            validate(letter.event)
        except InvalidSaleEvent as exc:
            return ReplayPlan(letter, skip=f"would be rejected again: {exc.field}: {exc.reason}")
    return ReplayPlan(letter, entry=entry)


@dataclass
class ReplaySummary:
    """Counts and ids of one replay."""

    read: int = 0
    replayed: list[str] = field(default_factory=list)
    not_deleted: dict[str, str] = field(default_factory=dict)  # accepted but DeleteMessage failed: id -> code
    skipped: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids
    failed: dict[str, str] = field(default_factory=dict)  # id -> PutEvents error code
    would_replay: list[str] = field(default_factory=list)

    @property
    def left(self) -> int:
        """Messages still in the queue after the replay."""
        return self.read - len(self.replayed)

    def as_json(self, dry_run: bool) -> dict[str, Any]:
        """The summary as ``dlq replay --json`` prints it."""
        return {
            "dryRun": dry_run,
            "read": self.read,
            "replayed": len(self.replayed),
            "replayedIds": self.replayed,
            "wouldReplay": self.would_replay,
            "acceptedButNotDeleted": self.not_deleted,
            "skipped": dict(self.skipped),
            "failed": self.failed,
            "left": self.left,
        }


def _label(letter: DeadLetter) -> str:
    return letter.event_id or f"message {letter.message_id}"


def replay_command(args: argparse.Namespace) -> int:
    """``dlq replay``: re-publish replayable events, delete their messages once accepted, release the rest."""
    outputs, aws = stack(args)
    queue_url = str(outputs.require("dead_letter_queue_url"))
    bus_name = str(outputs.require("event_bus_name"))
    validate = _validator() if args.rejected else None
    reader = QueueReader(
        aws.client("sqs"), queue_url, visibility_timeout=args.visibility_timeout, limit=args.max_messages
    )
    publisher = None if args.dry_run else EventPublisher(aws.client("events"))
    summary = ReplaySummary()
    try:
        _replay_all(args, reader, publisher=publisher, summary=summary, bus_name=bus_name, validate=validate)
    except OperatorError:
        # What was done before the failure is still reported: those messages are gone from the queue.
        _print_summary(summary, queue_url, bus_name, args.dry_run)
        raise
    finally:
        with aws_call(f"making messages visible again in {queue_url}"):
            reader.release()
    if args.json:
        print_json(summary.as_json(args.dry_run))
    else:
        _print_summary(summary, queue_url, bus_name, args.dry_run)
    _warn_reappeared(reader)
    return INCOMPLETE if summary.failed or summary.not_deleted else 0


def _replay_all(
    args: argparse.Namespace,
    reader: QueueReader,
    *,
    publisher: EventPublisher | None,
    summary: ReplaySummary,
    bus_name: str,
    validate: Callable[[Any], object] | None,
) -> None:
    with aws_call(f"replaying {reader.queue_url} to bus {bus_name!r}"):
        total = reader.approximate_count()
        with Progress("replaying dead letters", total) as progress:
            for batch in reader.batches():
                plans = [
                    plan_replay(letter, bus_name=bus_name, include_rejected=args.rejected, validate=validate)
                    for letter in batch
                ]
                _replay_batch(plans, reader, publisher, summary)
                progress.advance(len(batch), total=max(total, summary.read))


def _replay_batch(
    plans: list[ReplayPlan], reader: QueueReader, publisher: EventPublisher | None, summary: ReplaySummary
) -> None:
    summary.read += len(plans)
    sendable = []
    for plan in plans:
        if plan.entry is None:
            summary.skipped.setdefault(str(plan.skip), []).append(_label(plan.letter))
        else:
            sendable.append(plan)
    if publisher is None:
        summary.would_replay.extend(_label(plan.letter) for plan in sendable)
        return
    by_id = {plan.letter.message_id: plan.letter for plan in sendable}
    result = publisher.publish([(plan.letter.message_id, plan.entry) for plan in sendable if plan.entry])
    for message_id, code in result.failed.items():
        summary.failed[_label(by_id[str(message_id)])] = code
    accepted = [by_id[str(message_id)] for message_id in result.accepted]
    undeleted = reader.delete(accepted)
    for letter in accepted:
        if letter.message_id in undeleted:
            summary.not_deleted[_label(letter)] = undeleted[letter.message_id]
        else:
            summary.replayed.append(_label(letter))


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


def _validator() -> Callable[[Any], object]:
    """The fan-out's own validator at the configured embedding dimension (``EMBEDDING_DIMENSION`` honoured)."""
    from fanout_lambda.validation import validator  # noqa: PLC0415 - compiling the schema costs ~10 ms
    from pipeline_config import embedding_dimension  # noqa: PLC0415

    return validator(embedding_dimension()).validate


def _seconds(text: str) -> int:
    value = _positive(text)
    if value > 43200:
        raise argparse.ArgumentTypeError(f"must be at most 43200 (SQS's 12-hour limit), got {text}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value
