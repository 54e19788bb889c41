"""The buffer queue and its event source mapping, with a fake fan-out (no moto, no network)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import orjson
import pytest

import pipeline_config
from local_pipeline.buffer_queue import INVOCATION_PAYLOAD_LIMIT, BufferQueue, BufferQueueSettings
from local_pipeline.clock import SimulatedClock
from local_pipeline.lambda_service import InvocationTiming, LambdaFunction
from local_pipeline.metrics import MetricsRecorder

T0 = 1_768_467_600_000
SETTINGS = BufferQueueSettings.from_declarations()


class Harness:
    """A queue feeding a fake function that records each event and answers with ``answer(event)``."""

    def __init__(
        self, answer: Callable[[dict[str, Any]], Any] = lambda event: {"batchItemFailures": []}, **settings: Any
    ) -> None:
        self.clock = SimulatedClock(T0)
        self.events: list[dict[str, Any]] = []
        self.moments: list[int] = []
        self.dead: list[str] = []
        self.metrics = MetricsRecorder()

        def handler(event: dict[str, Any], context: Any) -> Any:
            self.events.append(event)
            self.moments.append(self.clock.now_ms)
            return answer(event)

        self.function = LambdaFunction("fanout", handler, clock=self.clock, metrics=self.metrics)
        self.queue = BufferQueue(
            dataclasses.replace(SETTINGS, **settings),
            function=self.function,
            clock=self.clock,
            dead_letter=self.dead.append,
            metrics=self.metrics,
            dead_letter_queue_name="dlq",
            timing=InvocationTiming(base_ms=100, per_record_ms=0),
        )

    def send(self, count: int, *, at_ms: int | None = None, size: int = 10) -> None:
        self.run_until(at_ms if at_ms is not None else self.clock.now_ms)
        for _ in range(count):
            self.queue.send(json.dumps({"id": f"e{self.queue.stats.sent}", "pad": "x" * size}))

    def run_until(self, moment: int) -> None:
        while (due := self.queue.next_due()) is not None and due <= moment:
            self.clock.advance_to(due)
            self.queue.step()
        self.clock.advance_to(moment)

    def drain(self) -> None:
        while (due := self.queue.next_due()) is not None:
            self.clock.advance_to(due)
            self.queue.step()


def test_the_settings_are_pipeline_json_s() -> None:
    declared = pipeline_config.load()["buffer_queue"]
    assert dataclasses.asdict(SETTINGS) == {k: declared[k] for k in dataclasses.asdict(SETTINGS)}


def test_a_batch_closes_when_the_batching_window_ends() -> None:
    h = Harness()
    h.send(3)
    h.run_until(T0 + SETTINGS.maximum_batching_window_seconds * 1000 - 1)
    assert h.events == []
    h.drain()
    assert [len(e["Records"]) for e in h.events] == [3]
    assert h.moments == [T0 + SETTINGS.maximum_batching_window_seconds * 1000]
    assert h.queue.stats.batches_closed_by == {"window": 1}


def test_a_batch_closes_at_once_when_it_is_full() -> None:
    h = Harness(batch_size=10)
    h.send(25)
    h.run_until(T0)
    assert [len(e["Records"]) for e in h.events] == [10, 10]
    h.drain()
    assert [len(e["Records"]) for e in h.events] == [10, 10, 5]
    assert h.moments[:2] == [T0, T0]


def test_a_batch_never_exceeds_the_six_mb_invocation_payload() -> None:
    # GIVEN messages of ~50 KB whose JSON bodies escape every quote (as an EventBridge event's do)
    h = Harness()
    for index in range(300):
        h.queue.send(json.dumps({"id": f"e{index}", "embedding": ['"q"'] * 8000}))
    h.drain()
    sizes = [len(orjson.dumps(event)) for event in h.events]
    assert max(sizes) <= INVOCATION_PAYLOAD_LIMIT
    assert sum(len(e["Records"]) for e in h.events) == 300
    assert len(h.events) > 1 and h.queue.stats.batches_closed_by["payload"] >= 1
    # the closed-by-payload batches are nearly full: the next message would not have fitted
    assert max(sizes) > INVOCATION_PAYLOAD_LIMIT - 2 * sizes[-1] / len(h.events[-1]["Records"])


def test_at_most_maximum_concurrency_batches_are_in_flight() -> None:
    h = Harness(batch_size=10, maximum_concurrency=2)
    h.send(60)
    h.drain()
    # two batches at T0, the next two when the first end (100 ms later), and so on
    assert h.moments == [T0, T0, T0 + 100, T0 + 100, T0 + 200, T0 + 200]
    assert h.queue.stats.max_in_flight == 2
    assert h.function.max_concurrency == 2


def test_the_event_has_the_sqs_shape_lambda_sends() -> None:
    h = Harness()
    h.send(1)
    h.drain()
    [record] = h.events[0]["Records"]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == h.queue.arn
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["attributes"]["SentTimestamp"] == str(T0)
    assert json.loads(record["body"])["id"] == "e0"


def test_listed_failures_come_back_after_the_visibility_timeout_with_the_same_message_id() -> None:
    # GIVEN a function that fails the first message of its first batch only
    def answer(event: dict[str, Any]) -> dict[str, Any]:
        if len(h.events) == 1:
            return {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
        return {"batchItemFailures": []}

    h = Harness(answer)
    h.send(3)
    h.drain()
    first, second = h.events
    assert len(second["Records"]) == 1
    again = second["Records"][0]
    assert again["messageId"] == first["Records"][0]["messageId"]
    assert again["receiptHandle"] != first["Records"][0]["receiptHandle"]
    assert again["attributes"]["ApproximateReceiveCount"] == "2"
    received = h.moments[0]
    # visible again when the timeout (counted from the receive) ends; then a new batch gathers for its window
    visible_again = received + SETTINGS.visibility_timeout_seconds * 1000
    assert h.moments[1] == visible_again + SETTINGS.maximum_batching_window_seconds * 1000
    assert h.queue.stats.deleted == 3 and h.queue.stats.retried_messages == 1 and h.dead == []


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda event: (_ for _ in ()).throw(RuntimeError("boom")), id="handler raises"),
        pytest.param(lambda event: {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}, id="unknown id"),
        pytest.param(lambda event: "nonsense", id="not a map"),
    ],
)
def test_a_failed_invocation_fails_the_whole_batch_and_then_redrives_it(answer: Callable[..., Any]) -> None:
    h = Harness(answer)
    h.send(2)
    h.drain()
    # received max_receive_count times, then moved to the DLQ with the body unchanged
    assert len(h.events) == SETTINGS.max_receive_count
    assert sorted(json.loads(body)["id"] for body in h.dead) == ["e0", "e1"]
    assert h.queue.stats.moved_to_dlq == 2 and h.queue.stats.deleted == 0
    assert h.queue.idle()
    assert h.metrics.total("AWS/SQS", "NumberOfMessagesSent", QueueName="dlq") == 2


def test_an_empty_or_null_response_deletes_the_whole_batch() -> None:
    for answer in (lambda event: None, lambda event: {}, lambda event: {"batchItemFailures": []}):
        h = Harness(answer)
        h.send(4)
        h.drain()
        assert h.queue.stats.deleted == 4 and h.dead == []


def test_queue_and_lambda_metrics_are_recorded_per_minute() -> None:
    h = Harness(batch_size=10)
    h.send(30)
    h.drain()
    assert h.metrics.total("AWS/SQS", "NumberOfMessagesSent") == 30
    assert h.metrics.total("AWS/Lambda", "Invocations", FunctionName="fanout") == 3
    names = {(space, name) for space, name, _dims, _minute, _cell in h.metrics.cells()}
    assert {
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage"),
        ("AWS/Lambda", "ConcurrentExecutions"),
        ("AWS/Lambda", "Duration"),
        ("AWS/Lambda", "Errors"),
        ("AWS/Lambda", "Throttles"),
    } <= names
