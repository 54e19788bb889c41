"""The dead-letter queue in-process: SendMessage(Batch) straight into moto's queue, bodies kept in a file.

moto's SendMessage and SendMessageBatch compute every attribute of the queue (counting its messages) on each
call, so filling a DLQ with the thousands of messages a throttled burst leaves there took quadratic time
(minutes for 10,000). :class:`InProcessDeadLetterQueue` makes the same moto messages (id, body, MD5, message
attributes, sent timestamp) and adds them to moto's queue directly. Also here: reading a DLQ body back.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from botocore.exceptions import ClientError

from fanout_lambda.dead_letter_body import unpack
from local_pipeline.aws.limits import SEND_MESSAGE_BATCH_MAX_ENTRIES
from local_pipeline.client_errors import client_error
from local_pipeline.context import ACCOUNT_ID
from local_pipeline.spill import BodyFile

__all__ = ["InProcessDeadLetterQueue", "dead_letter_body"]

_BATCH_ENTRY_ID = re.compile(r"^[\w-]{1,80}$")


def dead_letter_body(body: str) -> dict[str, Any]:
    """A DLQ message body parsed, its event restored: the fan-out gzips an event too large for one message."""
    return unpack(json.loads(body))


class InProcessDeadLetterQueue:
    """moto's dead-letter queue ``name`` in ``region``, written without moto's per-call queue attributes.

    A throttled burst leaves tens of thousands of events in the DLQ, ~11 KB each: 44,508 of them held ~0.5 GB
    as moto's strings (the 50,000-event burst, direct trigger, 1,000 requests/s), and nothing in a run reads
    them back but a receive (the run keeps its own copy in ``dead_letters.jsonl``). So each message is moto's
    own class with its ``body`` in a file (:class:`~local_pipeline.spill.BodyFile`); :meth:`close` frees it.
    """

    def __init__(self, region: str, name: str) -> None:
        self._region = region
        self._name = name
        self._message_class = _message_with_filed_body(BodyFile())

    def close(self) -> None:
        """Release the file holding the bodies (the run is over)."""
        self._message_class.store.close()

    def moto_queue(self) -> Any:
        """moto's queue object itself."""
        from moto.sqs.models import sqs_backends  # noqa: PLC0415 - moto's in-process backend

        return sqs_backends[ACCOUNT_ID][self._region].get_queue(self._name)

    def send_batch(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """SendMessageBatch: the request is checked as SQS checks it (moto's checks, in moto's order: entry ids,
        total size, distinct ids, at most 10, each body within the queue's maximum size), then each message is
        the one SendMessage makes (id, body, message attributes, sent now) added to moto's queue."""
        from moto.sqs.models import MAXIMUM_MESSAGE_LENGTH  # type: ignore[attr-defined]  # noqa: PLC0415

        queue = self.moto_queue()
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
        if len(entries) > SEND_MESSAGE_BATCH_MAX_ENTRIES:
            raise _sqs_error(
                "TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are {SEND_MESSAGE_BATCH_MAX_ENTRIES}. "
                f"You have sent {len(entries)}.",
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
            message = self.send(entry["MessageBody"], entry.get("MessageAttributes"))
            successful.append({"Id": entry["Id"], "MessageId": message.id, "MD5OfMessageBody": message.body_md5})
        return {"Successful": successful, "Failed": []}

    def send(self, body: str, attributes: dict[str, Any] | None = None) -> Any:
        """Add to moto's queue the message SendMessage would make (id, body, message attributes, sent now)."""
        message = self._message_class(str(uuid.uuid4()), body)
        if attributes:
            message.message_attributes = attributes
        queue = self.moto_queue()
        message.mark_sent(delay_seconds=queue.delay_seconds)
        queue.add_message(message)
        return message


def _message_with_filed_body(bodies: BodyFile) -> Any:
    """moto's SQS ``Message`` class, with each message's body written to ``bodies`` instead of held."""
    from moto.sqs.models import Message  # noqa: PLC0415 - moto's in-process backend

    class FiledMessage(Message):
        #: Where the bodies are (closed by InProcessDeadLetterQueue.close when the run ends).
        store = bodies

        @property
        def body(self) -> str:
            return self.store.get(self._body_at).decode("utf-8")

        @body.setter
        def body(self, value: str) -> None:
            self._body_at = self.store.put(value.encode("utf-8"))

    return FiledMessage


def _sqs_error(code: str, message: str) -> ClientError:
    """The error SQS (and moto) answers SendMessageBatch with: batch errors carry the service's prefix."""
    prefixed = code if code == "InvalidParameterValue" else f"AWS.SimpleQueueService.{code}"
    return client_error(prefixed, message, "SendMessageBatch", QueryErrorCode=code, Type="Sender")
