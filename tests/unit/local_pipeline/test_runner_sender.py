"""The fan-out's Firehose sender in a local run: chunks in turn, each on its own timeline, backoff simulated."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local_pipeline.runner.sender import ChunksInTurn, InTurn, StagesInTurn


class FakeStream:
    """What the sender needs of the local delivery stream: timelines and simulated waits, noted in order."""

    def __init__(self, earlier_stages_ms: int = 0) -> None:
        self.log: list[str] = []
        self.earlier_stages_ms = earlier_stages_ms

    def longest_wait_ms(self) -> int:
        return self.earlier_stages_ms

    def new_timeline(self, after_ms: int = 0) -> None:
        self.log.append(f"timeline {after_ms}")

    def wait(self, ms: int) -> None:
        self.log.append(f"wait {ms}")


class FakeFirehose:
    """PutRecordBatch that rejects every record of its first call, then accepts; notes the calling thread."""

    def __init__(self, stream: FakeStream) -> None:
        self._stream = stream
        self.threads: set[int] = set()
        self.calls = 0

    def put_record_batch(self, *, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:  # noqa: N803 - boto3's names
        self.calls += 1
        self.threads.add(threading.get_ident())
        self._stream.log.append(f"put {len(Records)}")
        if self.calls == 1:
            return {
                "FailedPutCount": len(Records),
                "RequestResponses": [{"ErrorCode": "ServiceUnavailable"}] * len(Records),
            }
        return {"FailedPutCount": 0, "RequestResponses": [{}] * len(Records)}


def test_each_chunk_starts_its_own_timeline_and_backs_off_on_it_in_the_calling_thread() -> None:
    # GIVEN a sender whose first call is rejected, 501 records (two chunks), and an invocation whose earlier
    # stages (its DynamoDB writes) waited 1.2 s
    stream = FakeStream(earlier_stages_ms=1_200)
    client = FakeFirehose(stream)
    sender = ChunksInTurn(client, "s", stream=stream, jitter=lambda low, high: high)  # type: ignore[arg-type]

    # WHEN it is handed the fan-out's pool
    with ThreadPoolExecutor(2) as pool:
        report = sender.submit([b"{}"] * 501, pool).result()

    # THEN the chunks ran in this thread, one after the other, each from a new timeline that starts where the
    # earlier stages ended, the resend after a simulated wait (the full first backoff step, 50 ms)
    assert client.threads == {threading.get_ident()}
    assert stream.log == ["timeline 1200", "put 500", "wait 50", "put 500", "timeline 1200", "put 1"]
    assert not report.failed and report.resent == 500


def test_in_turn_runs_a_task_at_once_and_keeps_its_exception_in_the_future() -> None:
    seen: list[str] = []
    executor = InTurn(before_each=lambda: seen.append("before"))

    def boom() -> None:
        seen.append("task")
        raise ValueError("no")

    future = executor.submit(boom)
    assert seen == ["before", "task"] and future.done()
    with pytest.raises(ValueError, match="no"):
        future.result()


class TimelineStream:
    """Per-invocation timelines as the local delivery streams keep them: one caller's waits and the longest."""

    def __init__(self) -> None:
        self.now = 0
        self.longest = 0
        self.starts: list[int] = []

    def longest_wait_ms(self) -> int:
        return self.longest

    def new_timeline(self, after_ms: int = 0) -> None:
        self.now = after_ms
        self.starts.append(after_ms)

    def wait(self, ms: int) -> None:
        self.now += ms
        self.longest = max(self.longest, self.now)


def test_stages_in_turn_start_each_stage_where_the_previous_one_ended() -> None:
    # GIVEN the fan-out's executor in a local run, and calls that wait 300 ms and 500 ms (throttled resends)
    stream = TimelineStream()
    executor = StagesInTurn(stream)  # type: ignore[arg-type]

    # WHEN a stage of two calls is submitted (they run at once, in this thread) and its results collected
    first = [executor.submit(stream.wait, ms) for ms in (300, 500)]
    assert all(future.done() for future in first)
    for future in first:
        future.result()
    # and then a second stage
    second = executor.submit(stream.wait, 100)
    second.result()

    # THEN both calls of the first stage started at the invocation's start, side by side as on a pool, and the
    # second stage started after the first stage's longest call
    assert stream.starts == [0, 0, 500]
    assert stream.longest == 600


def test_stages_in_turn_begin_again_with_a_new_invocation() -> None:
    stream = TimelineStream()
    executor = StagesInTurn(stream)  # type: ignore[arg-type]
    executor.submit(stream.wait, 800).result()
    executor.submit(stream.wait, 50)  # a stage whose results nobody collected (the invocation died)
    stream.longest = 0  # the next invocation: its waits start from nothing
    executor.submit(stream.wait, 10)
    assert stream.starts == [0, 800, 0]
