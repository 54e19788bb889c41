"""The bulk adapters: each splits into the service's batch calls and fails only what a failed call carried."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from fanout_lambda.adapters import BatchWriter, BufferQueue, DeadLetter, DeadLetterQueue, FirehoseSender, stream_index
from fanout_lambda.errors import DeadLetterNotSent, DeadLetterTooLarge, WriteIncomplete
from fanout_lambda.flow_control import is_throughput
from tests.support import FakeTime, RecordingFirehose, attempts_within, waiting_on

THROTTLED = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Call")
#: A refusal that is not about throughput: never resent in place.
DENIED = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "Call")


@pytest.fixture
def pool() -> Any:
    with ThreadPoolExecutor(max_workers=4) as executor:
        yield executor


class FakeDynamoDB:
    """BatchWriteItem that raises for chunks holding a chosen key and leaves chosen keys unprocessed."""

    def __init__(
        self, raise_for: set[str] | None = None, unprocessed: set[str] | None = None, error: Exception = DENIED
    ) -> None:
        self.error = error
        self.raise_for = raise_for or set()
        self.unprocessed = unprocessed or set()
        self.calls: list[list[str]] = []

    def batch_write_item(self, RequestItems: dict[str, list[dict[str, Any]]]) -> Any:  # noqa: N803
        ((table, requests),) = RequestItems.items()
        keys = [r["PutRequest"]["Item"]["id"]["S"] for r in requests]
        self.calls.append(keys)
        if self.raise_for & set(keys):
            raise self.error
        held = [r for r, k in zip(requests, keys, strict=True) if k in self.unprocessed]
        return {"UnprocessedItems": {table: held} if held else {}}


def _puts(n: int) -> list[dict[str, Any]]:
    return [{"PutRequest": {"Item": {"id": {"S": f"k{i}"}}}} for i in range(n)]


def test_batch_writer_sends_25_a_call_and_a_failed_call_fails_only_its_requests(pool: Any) -> None:
    client = FakeDynamoDB(raise_for={"k30"})
    report = BatchWriter(client, "t", ("id",)).submit(_puts(60), pool).result()

    assert sorted(len(call) for call in client.calls) == [10, 25, 25]
    assert sorted(report.failed) == list(range(25, 50))
    assert all(error is DENIED for error in report.failed.values())
    assert report.calls == 3


def test_batch_writer_resends_only_unprocessed_items_then_gives_up_naming_the_table(pool: Any) -> None:
    client = FakeDynamoDB(unprocessed={"k3"})
    writer = BatchWriter(client, "sales", ("id",), max_attempts=3, sleep=lambda _s: None)

    report = writer.submit(_puts(5), pool).result()

    assert client.calls == [["k0", "k1", "k2", "k3", "k4"], ["k3"], ["k3"]]
    assert list(report.failed) == [3]
    assert isinstance(report.failed[3], WriteIncomplete)
    assert "'sales'" in str(report.failed[3])
    assert report.resent == 2


def test_firehose_submit_maps_failures_back_to_positions_across_chunks(pool: Any) -> None:
    firehose = RecordingFirehose(raise_on={2}, error=DENIED)
    records = [f"r{i}".encode() for i in range(1200)]

    report = FirehoseSender(firehose, "s").submit(records, pool).result()

    assert sorted(len(call) for call in firehose.calls) == [200, 500, 500]
    failed_call = firehose.calls[1]
    assert sorted(records[i] for i in report.failed) == sorted(failed_call)


def test_firehose_submit_refuses_an_oversized_record_alone(pool: Any) -> None:
    firehose = RecordingFirehose()
    report = FirehoseSender(firehose, "s").submit([b"a", b"x" * (1000 * 1024 + 1), b"c"], pool).result()
    assert list(report.failed) == [1]
    assert firehose.calls == [[b"a", b"c"]]


class FakeSqs:
    def __init__(self, failed_ids: dict[str, bool] | None = None) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.failed_ids = failed_ids or {}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
        self.calls.append(Entries)
        failed = [
            {"Id": e["Id"], "SenderFault": self.failed_ids[e["Id"]], "Code": "X"}
            for e in Entries
            if e["Id"] in self.failed_ids
        ]
        ok = [{"Id": e["Id"], "MessageId": f"msg-{e['Id']}"} for e in Entries if e["Id"] not in self.failed_ids]
        return {"Successful": ok, "Failed": failed}


def test_dead_letters_go_10_a_call_and_within_the_size_limit(pool: Any) -> None:
    sqs = FakeSqs()
    small = [DeadLetter({"id": f"e{i}"}, {"field": "x"}, "InvalidSaleEvent") for i in range(12)]
    large = [DeadLetter({"id": f"big{i}", "notes": "n" * 100_000}, {}, "InvalidSaleEvent") for i in range(3)]

    report = DeadLetterQueue(sqs, "q").submit(small + large, pool).result()

    assert report.failed == {}
    assert sorted(report.ids) == list(range(15))
    assert all(len(call) <= 10 for call in sqs.calls)
    assert all(sum(len(e["MessageBody"].encode()) for e in call) <= 256 * 1024 for call in sqs.calls)
    assert all(e["MessageAttributes"]["errorType"]["StringValue"] == "InvalidSaleEvent" for c in sqs.calls for e in c)


def test_a_letter_sqs_refuses_is_resent_unless_the_sender_is_at_fault(pool: Any) -> None:
    sqs = FakeSqs(failed_ids={"0": True, "1": False})
    letters = [DeadLetter({"id": f"e{i}"}, {}, "InvalidSaleEvent") for i in range(3)]

    report = DeadLetterQueue(sqs, "q", max_attempts=2, sleep=lambda _s: None).submit(letters, pool).result()

    assert sorted(report.failed) == [0, 1]
    assert all(isinstance(e, DeadLetterNotSent) for e in report.failed.values())
    assert [len(call) for call in sqs.calls] == [3, 1]  # only the service-side failure was resent
    assert report.ids == {2: "msg-2"}


def test_a_letter_too_large_even_compressed_fails_alone(pool: Any) -> None:
    sqs = FakeSqs()
    notes = bytes(range(256)).hex() * 2000  # 1 MB that gzip brings to ~10 KB: still over a 1 KiB limit
    letters = [DeadLetter({"id": "big", "notes": notes}, {}, "InvalidSaleEvent"), DeadLetter({}, {}, "E")]

    report = DeadLetterQueue(sqs, "q", max_message_bytes=1024).submit(letters, pool).result()

    assert isinstance(report.failed[0], DeadLetterTooLarge)
    assert list(report.ids) == [1]


# -- flow control: throughput refusals are resent until the invocation's deadline ---------------------------------


def test_batch_writer_resends_a_throttled_call_until_the_deadline_then_reports_it_throttled(pool: Any) -> None:
    # GIVEN DynamoDB throttles every call carrying k3, and 5 s of the invocation left for resends
    client = FakeDynamoDB(raise_for={"k3"}, error=THROTTLED)
    writer = BatchWriter(client, "sales", ("id",))
    time = waiting_on(FakeTime(), writer.backoff)
    writer.backoff.start(5.0)

    report = writer.submit(_puts(5), pool).result()

    # THEN it was resent past max_attempts, as long as the deadline allowed, and failed as a throughput refusal
    assert len(client.calls) == attempts_within(5.0, writer.backoff) > writer.backoff.max_attempts
    assert time.now <= 5.0
    assert sorted(report.failed) == [0, 1, 2, 3, 4]
    assert all(is_throughput(error) for error in report.failed.values())


def test_a_refusal_that_is_not_throughput_is_not_resent(pool: Any) -> None:
    client = FakeDynamoDB(raise_for={"k3"}, error=DENIED)
    writer = BatchWriter(client, "sales", ("id",))
    waiting_on(FakeTime(), writer.backoff)
    writer.backoff.start(5.0)
    report = writer.submit(_puts(5), pool).result()
    assert len(client.calls) == 1
    assert not any(is_throughput(error) for error in report.failed.values())


class StreamThrottlingFirehose:
    """PutRecordBatch that throttles every entry sent to ``throttled`` streams; records which stream got what."""

    def __init__(self, throttled: set[str]) -> None:
        self.throttled = throttled
        self.accepted: dict[str, list[bytes]] = {}
        self.calls: list[str] = []

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:  # noqa: N803
        self.calls.append(DeliveryStreamName)
        if DeliveryStreamName in self.throttled:
            answers = [{"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."} for _ in Records]
            return {"FailedPutCount": len(Records), "RequestResponses": answers}
        self.accepted.setdefault(DeliveryStreamName, []).extend(r["Data"] for r in Records)
        return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": "x"} for _ in Records]}


def test_records_spread_over_the_streams_by_sale_id_and_a_redelivery_starts_on_the_same_stream(pool: Any) -> None:
    firehose = StreamThrottlingFirehose(throttled=set())
    sender = FirehoseSender(firehose, "a,b,c")
    keys = [f"sale-{n}" for n in range(60)]
    sender.submit([k.encode() for k in keys], pool, keys).result()
    # THEN each record went to its sale's stream, and the three streams each got a share
    for name, records in firehose.accepted.items():
        assert {sender.stream_names[stream_index(r.decode(), 3)] for r in records} == {name}
    assert len(firehose.accepted) == 3


def test_a_throttled_record_moves_to_the_next_stream(pool: Any) -> None:
    # GIVEN stream "a" refuses everything for throughput
    firehose = StreamThrottlingFirehose(throttled={"a"})
    sender = FirehoseSender(firehose, ["a", "b"])
    waiting_on(FakeTime(), sender.backoff)
    sender.backoff.start(5.0)
    keys = [f"sale-{n}" for n in range(40)]
    homed_on_a = [k for k in keys if stream_index(k, 2) == 0]
    assert homed_on_a  # the sample has sales whose first stream is "a"

    report = sender.submit([k.encode() for k in keys], pool, keys).result()

    # THEN nothing failed: what "a" refused went to "b" on its resend
    assert report.failed == {}
    assert sorted(firehose.accepted["b"]) == sorted(k.encode() for k in keys)
    assert report.resent == len(homed_on_a)


def test_the_buffer_queue_backs_off_throttled_messages_ten_a_call_and_reports_refused_entries() -> None:
    class FakeSqs:
        def __init__(self) -> None:
            self.calls: list[list[dict[str, Any]]] = []

        def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:  # noqa: N803
            self.calls.append(Entries)
            return {"Successful": [], "Failed": [{"Id": Entries[0]["Id"], "Code": "ReceiptHandleIsInvalid"}]}

    sqs = FakeSqs()
    report = BufferQueue(sqs, "https://sqs/q").back_off([(f"h{n}", 30 + n) for n in range(23)])
    assert [len(call) for call in sqs.calls] == [10, 10, 3]
    assert sqs.calls[2][0] == {"Id": "20", "ReceiptHandle": "h20", "VisibilityTimeout": 50}
    assert sorted(report.failed) == [0, 10, 20]
