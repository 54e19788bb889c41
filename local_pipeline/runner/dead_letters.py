"""The dead-letter queue as CloudWatch and a person see it: its ``AWS/SQS`` metrics, its kinds of message, and
``dead_letters.jsonl``, written as messages arrive."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

from fanout_lambda import dead_letter_body
from local_pipeline.aws import EmbeddedAws
from local_pipeline.buffer_queue import BufferQueue
from local_pipeline.firehose import SimulatedClock
from local_pipeline.metrics import MetricsRecorder

__all__ = ["DeadLetterGauge", "MeteredSqs", "dead_letter_kind"]


class DeadLetterGauge:
    """Every message the dead-letter queue receives: its ``AWS/SQS`` metrics (messages sent, visible, age of
    the oldest), its kind, and its body written to ``sink`` (``dead_letters.jsonl``), one per line.

    Nothing consumes the DLQ during a run, so what was sent is what is left in it: the visible count is every
    message sent so far, the oldest is the first one, and the file is written as messages arrive instead of
    read back at the end (moto's ReceiveMessage took minutes for a few thousand large messages).
    """

    def __init__(
        self, metrics: MetricsRecorder, clock: SimulatedClock, queue_name: str, sink: IO[str] | None = None
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._dimensions = {"QueueName": queue_name}
        self._sink = sink
        self._lock = threading.Lock()  # the fan-out sends its dead letters from its thread pool
        self.sent = 0
        self.kinds: Counter[str] = Counter()
        self._first_ms: int | None = None

    def record(self, bodies: list[str]) -> None:
        """These message bodies arrived now."""
        now = self._clock.now_ms
        with self._lock:
            for body in bodies:
                self.kinds[dead_letter_kind(body)] += 1
                if self._sink is not None:
                    # The body as the queue holds it, one per line (re-serialised only if it spans lines).
                    self._sink.write((body if "\n" not in body else json.dumps(json.loads(body))) + "\n")
            if bodies:
                self.sent += len(bodies)
                self._first_ms = now if self._first_ms is None else self._first_ms
                self._metrics.add("AWS/SQS", "NumberOfMessagesSent", len(bodies), "Count", now, self._dimensions)
        self.depth()

    def depth(self) -> None:
        """Record the queue's depth and oldest message's age at the simulated now."""
        now = self._clock.now_ms
        age = (now - self._first_ms) / 1000 if self._first_ms is not None else 0
        add = self._metrics.add
        add("AWS/SQS", "ApproximateNumberOfMessagesVisible", self.sent, "Count", now, self._dimensions)
        add("AWS/SQS", "ApproximateAgeOfOldestMessage", age, "Seconds", now, self._dimensions)


class MeteredSqs:
    """The fan-out's SQS client: it reports the messages sent to the dead-letter queue to a
    :class:`DeadLetterGauge` (what CloudWatch would count), and sends batches to that queue through
    :meth:`EmbeddedAws.send_dead_letters` (moto's own SendMessageBatch is quadratic in the queue's length);
    every other call goes to the real client unchanged."""

    def __init__(self, aws: EmbeddedAws, gauge: DeadLetterGauge) -> None:
        self._aws = aws
        self._client = aws.client("sqs")
        self._gauge = gauge
        #: The simulated buffer queue (queue trigger) and the caller's simulated now, once the run has wired them:
        #: the fan-out backs throttled messages off on it (ChangeMessageVisibilityBatch).
        self.buffer_queue: BufferQueue | None = None
        self.now_ms: Callable[[], int] = lambda: 0

    def change_message_visibility_batch(self, **kwargs: Any) -> Any:
        """ChangeMessageVisibilityBatch: on the simulated buffer queue when it names it, else the real client."""
        if self.buffer_queue is not None and kwargs.get("QueueUrl") == self._aws.buffer_queue_url:
            return self.buffer_queue.change_visibility(kwargs["Entries"], self.now_ms())
        return self._client.change_message_visibility_batch(**kwargs)

    def send_message(self, **kwargs: Any) -> Any:
        """SendMessage, recorded once it succeeded."""
        response = self._client.send_message(**kwargs)
        self._gauge.record([kwargs["MessageBody"]])
        return response

    def send_message_batch(self, **kwargs: Any) -> Any:
        """SendMessageBatch, its successful entries recorded."""
        if kwargs.get("QueueUrl") == self._aws.queue_url and set(kwargs) == {"QueueUrl", "Entries"}:
            response = self._aws.send_dead_letters(kwargs["Entries"])
        else:
            response = self._client.send_message_batch(**kwargs)
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        self._gauge.record([entry["MessageBody"] for entry in kwargs["Entries"] if entry["Id"] in sent])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


#: ``summary.json``'s names (``dead_letters_by_kind``) for the kinds of :mod:`fanout_lambda.dead_letter_body`.
#: A local run has no EventBridge delivery failures, and ``not_json`` counts what the pipeline never writes.
SUMMARY_KINDS = {
    "rejected": "rejected_by_fanout",
    "failed-after-retries": "fanout_failed_after_async_retries",
    "failed-past-receive-limit": "fanout_failed_past_max_receive_count",
    "undeliverable": "fanout_failed_past_max_receive_count",
    "unknown": "not_json",
}


def dead_letter_kind(text: str) -> str:
    """Which of the DLQ's message kinds a body is, by ``summary.json``'s name for it."""
    return SUMMARY_KINDS[dead_letter_body.decode(text).kind]
