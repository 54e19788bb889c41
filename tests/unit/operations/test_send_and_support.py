"""``send``'s file check and pacing, and the shared command helpers (no network)."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from operations.command_support import Progress, aws_call, format_age
from operations.errors import OperatorError
from operations.publisher import EventPublisher
from operations.send import check_file, send
from tests.support import load_event


class AcceptAll:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        self.calls.append(len(Entries))
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "x"} for _ in Entries]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


def events_file(tmp_path: Path, count: int) -> Path:
    event = load_event("product_sold")
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps({**event, "id": f"e-{n}"}) + "\n" for n in range(count)))
    return path


def test_pacing_spreads_events_at_the_rate_in_calls_no_larger_than_the_rate(tmp_path: Path) -> None:
    client, clock = AcceptAll(), FakeClock()
    path = events_file(tmp_path, 12)

    summary = send(
        path,
        "bus",
        EventPublisher(client),
        rate=4,
        progress=Progress("t", 12, stream=io.StringIO()),
        clock=clock,
        sleep=clock.sleep,
    )

    assert client.calls == [4, 4, 4]
    assert clock.sleeps == [1.0, 1.0]  # the 2nd call is due at t+1 s, the 3rd at t+2 s
    assert (summary.sent, summary.seconds) == (12, 2.0)


def test_without_a_rate_nothing_waits(tmp_path: Path) -> None:
    client, clock = AcceptAll(), FakeClock()

    summary = send(
        events_file(tmp_path, 25),
        "bus",
        EventPublisher(client),
        rate=None,
        progress=Progress("t", 25, stream=io.StringIO()),
        clock=clock,
        sleep=clock.sleep,
    )

    assert client.calls == [10, 10, 5] and clock.sleeps == [] and summary.sent == 25


def test_check_file_counts_events_bytes_and_calls(tmp_path: Path) -> None:
    events, size, calls = check_file(events_file(tmp_path, 21), "bus")

    assert (events, calls) == (21, 3) and size > 21 * 1000


def test_check_file_names_every_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(load_event("product_sold")) + "\n\n[1]\n{\n")

    with pytest.raises(OperatorError, match=r"2 bad lines \(3, 4\), listed above; nothing was sent"):
        check_file(path, "bus")

    err = capsys.readouterr().err
    assert "line 3: event: must be a JSON object, got list" in err and "line 4: not JSON" in err


def test_a_single_bad_line_is_the_error_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(load_event("product_sold")) + "\n" + json.dumps({"source": "s"}) + "\n")

    with pytest.raises(OperatorError, match=r"line 2: detail-type: must be a non-empty string, got None; nothing was"):
        check_file(path, "bus")
    assert capsys.readouterr().err == ""


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")

    with pytest.raises(OperatorError, match="no events in the file"):
        check_file(path, "bus")


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.9, "59s"), (95, "1m35s"), (3600, "1h"), (90061, "1d1h")])
def test_format_age(seconds: float, text: str) -> None:
    assert format_age(seconds) == text


def test_progress_writes_plain_lines_at_intervals_when_not_a_terminal() -> None:
    stream = io.StringIO()
    ticks = iter([0.0, 1.0, 6.0, 7.0])
    with Progress("reading", 30, stream=stream, interval=5.0, clock=lambda: next(ticks)) as progress:
        progress.advance(10)  # t=1: too soon
        progress.advance(10)  # t=6: a line
        progress.advance(10)  # t=7: too soon

    assert stream.getvalue() == "reading: 20/30\n"


def test_aws_call_turns_sdk_errors_into_one_line() -> None:
    error = ClientError(
        {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "no queue"}}, "ReceiveMessage"
    )

    with (
        pytest.raises(OperatorError, match=r"^reading q: AWS.SimpleQueueService.NonExistentQueue: no queue$"),
        aws_call("reading q"),
    ):
        raise error
    with pytest.raises(OperatorError, match="Could not connect"), aws_call("reading q"):
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1")


class MeetingEvents(AcceptAll):
    """put_events that returns only once ``parties`` calls are in flight together (a barrier, no timing)."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.barrier = threading.Barrier(parties, timeout=10)

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3 parameter names
        self.barrier.wait()  # raises BrokenBarrierError unless `parties` calls overlap
        return super().put_events(Entries)


def test_calls_overlap_up_to_the_concurrency(tmp_path: Path) -> None:
    client = MeetingEvents(parties=3)

    summary = send(
        events_file(tmp_path, 30),
        "bus",
        EventPublisher(client),
        rate=None,
        progress=Progress("t", 30, stream=io.StringIO()),
        concurrency=3,
    )

    assert sorted(client.calls) == [10, 10, 10] and summary.sent == 30 and summary.events == 30


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    with Progress("reading", 20, stream=stream) as progress:
        for _ in range(4):
            progress.advance(5)

    assert "reading" in stream.getvalue() and "20/20" in stream.getvalue()
