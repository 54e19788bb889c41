"""FirehoseSender: PutRecordBatch limits and partial-failure resends."""

from __future__ import annotations

import pytest

from fanout_lambda.adapters import MAX_BATCH_BYTES, FirehoseSender, chunked
from fanout_lambda.errors import DeliveryIncomplete
from tests.support import RecordingFirehose


def _sender(client: RecordingFirehose, sleeps: list[float], attempts: int = 4) -> FirehoseSender:
    return FirehoseSender(client, "s", max_attempts=attempts, sleep=sleeps.append, jitter=lambda _lo, hi: hi)


def test_only_failed_entries_are_resent_with_backoff() -> None:
    client = RecordingFirehose(fail_entries={1: {1, 3}, 2: {1}})
    sleeps: list[float] = []
    records = [b"a", b"b", b"c", b"d"]

    report = _sender(client, sleeps).send(records)

    assert client.calls == [[b"a", b"b", b"c", b"d"], [b"b", b"d"], [b"d"]]
    assert sorted(client.delivered) == sorted(records)
    assert report.resent == 3
    assert sleeps == [0.05, 0.1]


def test_backoff_is_capped() -> None:
    client = RecordingFirehose(fail_entries={n: {0} for n in range(1, 20)})
    sleeps: list[float] = []
    with pytest.raises(DeliveryIncomplete) as caught:
        FirehoseSender(client, "s", max_attempts=10, max_delay=0.3, sleep=sleeps.append, jitter=lambda _a, b: b).send(
            [b"x"]
        )
    assert max(sleeps) == 0.3
    assert caught.value.failed == 1
    assert "ServiceUnavailableException" in str(caught.value)


def test_chunks_respect_500_records_and_4_mib() -> None:
    assert [len(c) for c in chunked([b"x"] * 1201)] == [500, 500, 201]
    big = b"y" * (1000 * 1024)
    chunks = list(chunked([big] * 9))
    assert all(sum(map(len, c)) <= MAX_BATCH_BYTES for c in chunks)
    assert sum(len(c) for c in chunks) == 9


def test_oversized_record_is_refused_before_any_call() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        list(chunked([b"z" * (1000 * 1024 + 1)]))


class _CountWithoutCodes:
    """A response that claims failures but marks no entry: nothing identifiable to resend."""

    def __init__(self) -> None:
        self.calls = 0

    def put_record_batch(self, **_kwargs: object) -> dict[str, object]:
        self.calls += 1
        return {"FailedPutCount": 1, "RequestResponses": [{"RecordId": "1"}]}


def test_failed_count_without_marked_entries_sends_no_empty_batch() -> None:
    client = _CountWithoutCodes()
    FirehoseSender(client, "s", sleep=lambda _s: None).send([b"a"])
    assert client.calls == 1
