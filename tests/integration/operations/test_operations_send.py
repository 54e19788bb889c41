"""``sales-pipeline send --events FILE`` against a moto_server's default bus with a rule and a probe queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.flaky_events import inject
from tests.integration.recovery_stack import Stack, stack, valid_events

pytestmark = pytest.mark.integration
__all__ = ["stack"]  # the module-scoped moto stack fixture


@pytest.fixture
def burst(stack: Stack, tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """A JSONL file of 25 events (and a blank line), and an empty probe queue."""
    stack.drain(stack.probe_url)
    events = valid_events(25, seed=9)
    path = tmp_path / "burst.jsonl"
    lines = [json.dumps(event) for event in events]
    lines.insert(12, "")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, events


def line_of(path: Path, event: dict[str, Any]) -> int:
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip() and json.loads(line)["id"] == event["id"]:
            return number
    raise AssertionError("event not in file")


def test_send_publishes_every_event_in_calls_of_ten(stack: Stack, burst: tuple[Path, list[dict[str, Any]]]) -> None:
    path, events = burst

    status, out, _ = stack.run("send", "--events", str(path), "--json")

    assert status == 0
    summary = json.loads(out)
    assert (summary["events"], summary["sent"], summary["failed"], summary["calls"]) == (25, 25, 0, 3)
    delivered = stack.drain(stack.probe_url)
    assert sorted(event["detail"]["productId"] for event in delivered) == sorted(
        event["detail"]["productId"] for event in events
    )
    by_product = {event["detail"]["productId"]: event for event in events}
    for event in delivered:
        assert event["time"] == by_product[event["detail"]["productId"]]["time"]


def test_send_resends_entries_rejected_in_failed_entry_count(
    stack: Stack, burst: tuple[Path, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, events = burst
    throttled, broken = events[3]["detail"]["productId"], events[17]["detail"]["productId"]

    def rule(entry: dict[str, Any], attempt: int) -> str | None:
        product = json.loads(entry["Detail"])["productId"]
        if product == broken:
            return "InternalFailure"
        if product == throttled and attempt < 3:
            return "ThrottlingException"
        return None

    wrappers = inject(monkeypatch, rule)

    status, out, _ = stack.run("send", "--events", str(path))

    assert status == 1
    assert "25 event(s)" in out
    assert "sent      24" in out
    assert f"failed    1 (InternalFailure x1); lines {line_of(path, events[17])}" in out
    assert max(wrappers[0].calls) <= 10
    delivered = {event["detail"]["productId"] for event in stack.drain(stack.probe_url)}
    assert throttled in delivered and broken not in delivered
    assert len(delivered) == 24


def test_a_bad_line_is_reported_with_its_number_and_nothing_is_sent(stack: Stack, tmp_path: Path) -> None:
    stack.drain(stack.probe_url)
    events = valid_events(4, seed=2)
    missing = dict(events[3])
    del missing["detail-type"]
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [json.dumps(events[0]), json.dumps(events[1]), "{not json", json.dumps(events[2]), json.dumps(missing)]
        )
        + "\n"
    )

    status, out, err = stack.run("send", "--events", str(path))

    assert status == 2
    assert out == ""
    assert "line 3: not JSON" in err
    assert "line 5: detail-type: must be a non-empty string, got None" in err
    assert err.strip().splitlines()[-1] == (
        f"sales-pipeline send: error: --events {path}: 2 bad lines (3, 5), listed above; nothing was sent"
    )
    assert stack.drain(stack.probe_url) == []


def test_send_dry_run_sends_nothing(stack: Stack, burst: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = burst

    status, out, _ = stack.run("send", "--events", str(path), "--dry-run", "--rate", "50")

    assert status == 0
    assert "would send 25 event(s)" in out and "3 PutEvents call(s)" in out and "paced to 50 events/s" in out
    assert stack.drain(stack.probe_url) == []


def test_a_missing_file_is_a_one_line_error(stack: Stack, tmp_path: Path) -> None:
    status, _, err = stack.run("send", "--events", str(tmp_path / "nope.jsonl"))

    assert status == 2
    assert err.count("\n") == 1 and "cannot read it" in err
