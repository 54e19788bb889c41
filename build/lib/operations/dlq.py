"""``dlq``'s library: read the dead-letter queue and re-publish what can succeed now.

Reading changes nothing: every message is received with a visibility timeout (hidden from other readers of
the queue meanwhile) and made visible again when done. :func:`replay` re-publishes events to the stack's bus
(:mod:`operations.publisher`) and deletes a message only once the bus accepted its event; every message it does
not replay is made visible again. Printing is the CLI's (``sales_pipeline.commands.dlq``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from operations.command_support import Progress, aws_call
from operations.dead_letters import DeadLetter, QueueReader, find
from operations.publisher import EventPublisher, InvalidEvent, entry_from_event

__all__ = ["ReplayPlan", "ReplaySummary", "label", "plan_replay", "read_letters", "replay", "validator"]


def read_letters(reader: QueueReader, wanted: str | None = None) -> list[DeadLetter]:
    """Read every message (or until one with id ``wanted`` is found), then make them all visible again."""
    letters: list[DeadLetter] = []
    try:
        with aws_call(f"reading the dead-letter queue {reader.queue_url}"):
            total = reader.approximate_count()
            with Progress("reading the dead-letter queue", total) as progress:
                for batch in reader.batches():
                    letters.extend(batch)
                    progress.advance(len(batch), total=max(total, len(letters)))
                    if wanted is not None and find(batch, wanted) is not None:
                        break
    finally:
        with aws_call(f"making messages visible again in {reader.queue_url}"):
            reader.release()
    return letters


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


def label(letter: DeadLetter) -> str:
    """How a message is named in output: its event id, else its SQS message id."""
    return letter.event_id or f"message {letter.message_id}"


def replay(
    reader: QueueReader,
    *,
    publisher: EventPublisher | None,
    summary: ReplaySummary,
    bus_name: str,
    include_rejected: bool,
    validate: Callable[[Any], object] | None,
) -> None:
    """Re-publish every replayable message's event (none with ``publisher`` None: a dry run, which only fills
    ``summary.would_replay``), delete the messages the bus accepted, and make every other one visible again.

    ``summary`` is filled as the work goes, so that what was done before an error is still known."""
    try:
        _replay_all(
            reader,
            publisher=publisher,
            summary=summary,
            bus_name=bus_name,
            include_rejected=include_rejected,
            validate=validate,
        )
    finally:
        with aws_call(f"making messages visible again in {reader.queue_url}"):
            reader.release()


def _replay_all(
    reader: QueueReader,
    *,
    publisher: EventPublisher | None,
    summary: ReplaySummary,
    bus_name: str,
    include_rejected: bool,
    validate: Callable[[Any], object] | None,
) -> None:
    with aws_call(f"replaying {reader.queue_url} to bus {bus_name!r}"):
        total = reader.approximate_count()
        with Progress("replaying dead letters", total) as progress:
            for batch in reader.batches():
                plans = [
                    plan_replay(letter, bus_name=bus_name, include_rejected=include_rejected, validate=validate)
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
            summary.skipped.setdefault(str(plan.skip), []).append(label(plan.letter))
        else:
            sendable.append(plan)
    if publisher is None:
        summary.would_replay.extend(label(plan.letter) for plan in sendable)
        return
    by_id = {plan.letter.message_id: plan.letter for plan in sendable}
    result = publisher.publish([(plan.letter.message_id, plan.entry) for plan in sendable if plan.entry])
    for message_id, code in result.failed.items():
        summary.failed[label(by_id[str(message_id)])] = code
    accepted = [by_id[str(message_id)] for message_id in result.accepted]
    undeleted = reader.delete(accepted)
    for letter in accepted:
        if letter.message_id in undeleted:
            summary.not_deleted[label(letter)] = undeleted[letter.message_id]
        else:
            summary.replayed.append(label(letter))


def validator() -> Callable[[Any], object]:
    """The fan-out's own validator at the configured embedding dimension (``EMBEDDING_DIMENSION`` honoured)."""
    from fanout_lambda.validation import validator  # noqa: PLC0415 - compiling the schema costs ~10 ms
    from pipeline_config import embedding_dimension  # noqa: PLC0415

    return validator(embedding_dimension()).validate
