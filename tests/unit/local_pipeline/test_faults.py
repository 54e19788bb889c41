"""Fault injection: the spec's parsing and one-line errors, reproducible draws, and each wrapper's behaviour."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local_pipeline.clock import SimulatedClock
from local_pipeline.faults import (
    FAULTS,
    FanoutCrash,
    FaultInjector,
    FaultSpec,
    FaultSpecError,
    FaultyDynamoDB,
    FaultyFirehose,
    FaultyS3,
    FaultySqs,
    ProcessClock,
    TaskTimedOut,
    crashable,
    faulty_transform,
)


class Recorder:
    """A client fake: records calls, answers as the service would on success."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            if name == "put_record_batch":
                records = kwargs["Records"]
                return {"FailedPutCount": 0, "RequestResponses": [{"RecordId": f"r{i}"} for i in range(len(records))]}
            if name == "batch_write_item":
                return {"UnprocessedItems": {}}
            return {}

        return call


def _injector(spec: str, seed: int = 7) -> FaultInjector:
    return FaultInjector(FaultSpec.parse(spec), seed)


def _records(n: int) -> list[dict[str, bytes]]:
    return [{"Data": f'{{"n":{i}}}\n'.encode()} for i in range(n)]


# -- the spec ---------------------------------------------------------------------------------------------------


def test_spec_parses_names_and_rates_and_prints_back() -> None:
    spec = FaultSpec.parse(" dynamodb-throttle=0.1, fanout-crash=0.02 ")
    assert spec.rate("dynamodb-throttle") == 0.1
    assert spec.rate("fanout-crash") == 0.02
    assert spec.rate("s3-unavailable") == 0.0
    assert str(spec) == "dynamodb-throttle=0.1,fanout-crash=0.02"
    assert spec


@pytest.mark.parametrize("text", [None, "", " , ", "s3-unavailable=0"])
def test_an_empty_spec_or_zero_rates_inject_nothing(text: str | None) -> None:
    assert not FaultSpec.parse(text)


def test_unknown_fault_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(FaultSpecError) as caught:
        FaultSpec.parse("dynamo-throttle=0.1")
    message = str(caught.value)
    assert "\n" not in message
    assert "'dynamo-throttle'" in message
    assert all(name in message for name in FAULTS)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fanout-crash=1.5", "fault 'fanout-crash': rate 1.5 is outside 0-1"),
        ("fanout-crash=-0.1", "fault 'fanout-crash': rate -0.1 is outside 0-1"),
        ("fanout-crash=nan", "fault 'fanout-crash': rate nan is outside 0-1"),
        ("fanout-crash=abc", "fault 'fanout-crash': rate 'abc' is not a number between 0 and 1"),
        ("fanout-crash", "fault 'fanout-crash' needs a rate"),
        ("fanout-crash=0.1,fanout-crash=0.2", "fault 'fanout-crash' is given twice"),
    ],
)
def test_bad_rates_are_one_line_errors_naming_the_fault(text: str, expected: str) -> None:
    with pytest.raises(FaultSpecError, match="^" + expected.replace("(", r"\(")):
        FaultSpec.parse(text)


# -- draws -----------------------------------------------------------------------------------------------------


def test_draws_are_reproducible_from_the_seed_and_follow_the_rate() -> None:
    a, b, c = _injector("transform-error=0.3"), _injector("transform-error=0.3"), _injector("transform-error=0.3", 8)
    draws_a = [a.draw("transform-error") for _ in range(2000)]
    assert draws_a == [b.draw("transform-error") for _ in range(2000)]
    assert draws_a != [c.draw("transform-error") for _ in range(2000)]
    assert 0.25 < sum(draws_a) / 2000 < 0.35
    assert a.injected["transform-error"] == sum(draws_a)


def test_keyed_draws_do_not_depend_on_the_order_calls_arrive_in() -> None:
    # GIVEN the same 200 call contents, each sent twice, arriving in two different orders (threads)
    contents = [f"call-{i}".encode() for i in range(200)] * 2
    shuffled = list(contents)
    random.Random(1).shuffle(shuffled)
    a, b = _injector("firehose-unavailable=0.5"), _injector("firehose-unavailable=0.5")

    # WHEN both decide
    hits_a = {(c, n) for n, c in _numbered(contents) if a.draw_for("firehose-unavailable", c) is not None}
    hits_b = {(c, n) for n, c in _numbered(shuffled) if b.draw_for("firehose-unavailable", c) is not None}

    # THEN the same (content, n-th send) pairs failed
    assert hits_a == hits_b
    assert 100 < len(hits_a) < 300


def _numbered(contents: list[bytes]) -> list[tuple[int, bytes]]:
    seen: dict[bytes, int] = {}
    out = []
    for content in contents:
        seen[content] = seen.get(content, 0) + 1
        out.append((seen[content], content))
    return out


# -- DynamoDB --------------------------------------------------------------------------------------------------


def test_throttled_dynamodb_call_raises_a_throttling_client_error_before_reaching_the_table() -> None:
    client = Recorder()
    dynamodb = FaultyDynamoDB(client, _injector("dynamodb-throttle=1"))

    with pytest.raises(ClientError) as caught:
        dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}})

    assert caught.value.response["Error"]["Code"] in {"ProvisionedThroughputExceededException", "ThrottlingException"}
    assert caught.value.operation_name == "PutItem"
    assert client.calls == []


def test_throttled_batch_write_either_fails_or_hands_some_requests_back_unprocessed() -> None:
    outcomes = set()
    for seed in range(40):
        client = Recorder()
        dynamodb = FaultyDynamoDB(client, _injector("dynamodb-throttle=1", seed))
        requests = [{"PutRequest": {"Item": {"id": {"S": f"k{i}"}}}} for i in range(6)]
        try:
            response = dynamodb.batch_write_item(RequestItems={"t": requests})
        except ClientError:
            outcomes.add("raised")
            assert client.calls == []
            continue
        outcomes.add("unprocessed")
        back = response["UnprocessedItems"]["t"]
        written = client.calls[0][1]["RequestItems"].get("t", []) if client.calls else []
        # every request is either written or handed back, never both, never neither
        assert sorted(map(repr, back + written)) == sorted(map(repr, requests))
        assert back
    assert outcomes == {"raised", "unprocessed"}


def test_dynamodb_without_the_fault_passes_everything_through() -> None:
    client = Recorder()
    dynamodb = FaultyDynamoDB(client, _injector("firehose-partial=1"))
    dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}})
    assert client.calls == [("put_item", {"TableName": "t", "Item": {"id": {"S": "a"}}})]


# -- Firehose and the crash -------------------------------------------------------------------------------------


def test_unavailable_firehose_fails_the_whole_call() -> None:
    stream = Recorder()
    firehose = FaultyFirehose(stream, _injector("firehose-unavailable=1"))
    with pytest.raises(ClientError) as caught:
        firehose.put_record_batch(DeliveryStreamName="s", Records=_records(3))
    assert caught.value.response["Error"]["Code"] == "ServiceUnavailableException"
    assert stream.calls == []


def test_partial_firehose_fails_some_entries_and_forwards_only_the_others() -> None:
    stream = Recorder()
    firehose = FaultyFirehose(stream, _injector("firehose-partial=1"))
    records = _records(20)

    response = firehose.put_record_batch(DeliveryStreamName="s", Records=records)

    failed = [i for i, entry in enumerate(response["RequestResponses"]) if "ErrorCode" in entry]
    assert response["FailedPutCount"] == len(failed) > 0
    assert len(response["RequestResponses"]) == 20
    forwarded = stream.calls[0][1]["Records"] if stream.calls else []
    assert forwarded == [r for i, r in enumerate(records) if i not in failed]


def test_crash_is_uncatchable_by_except_exception_and_kills_every_later_call_of_the_invocation() -> None:
    injector = _injector("fanout-crash=1")
    firehose = FaultyFirehose(Recorder(), injector)
    dynamodb, sqs = FaultyDynamoDB(Recorder(), injector), FaultySqs(Recorder(), injector)

    with pytest.raises(FanoutCrash):
        try:
            firehose.put_record_batch(DeliveryStreamName="s", Records=_records(1))
        except Exception:  # what a handler's clean-up catches: must not see the crash
            pytest.fail("a crash must not be an Exception")
    assert not issubclass(FanoutCrash, Exception)
    with pytest.raises(FanoutCrash):
        dynamodb.delete_item(TableName="t", Key={"id": {"S": "a"}})
    with pytest.raises(FanoutCrash):
        sqs.send_message_batch(QueueUrl="q", Entries=[])

    # AND the next invocation is alive again
    injector.begin_invocation()
    dynamodb.delete_item(TableName="t", Key={"id": {"S": "a"}})


# -- the Firehose side -------------------------------------------------------------------------------------------


def test_s3_unavailable_fails_the_put_without_storing_anything() -> None:
    s3 = Recorder()
    faulty = FaultyS3(s3, _injector("s3-unavailable=1"))
    with pytest.raises(ClientError) as caught:
        faulty.put_object(Bucket="b", Key="k", Body=b"x")
    assert caught.value.response["Error"]["Code"] in {"SlowDown", "InternalError", "ServiceUnavailable"}
    assert s3.calls == []


def test_transform_error_fails_the_invocation_at_the_drawn_rate() -> None:
    calls: list[Any] = []
    transform = faulty_transform(
        lambda event, context: calls.append(event) or {"records": []}, _injector("transform-error=1")
    )
    with pytest.raises(RuntimeError):
        transform({"records": []}, None)
    assert calls == []
    passing = faulty_transform(lambda event, context: {"records": []}, _injector(""))
    assert passing({"records": []}, None) == {"records": []}


# -- the runtime's side: crashed invocations and the process clock --------------------------------------------------


def test_a_crashed_invocation_is_reported_as_a_timeout_after_the_environment_is_replaced() -> None:
    injector = _injector("fanout-crash=1")
    firehose = FaultyFirehose(Recorder(), injector)
    replaced: list[bool] = []

    def handler(event: Any, context: Any) -> Any:
        return firehose.put_record_batch(DeliveryStreamName="s", Records=_records(1))

    invoke = crashable(handler, injector, on_crash=lambda: replaced.append(True))

    with pytest.raises(TaskTimedOut, match=r"Task timed out after 30\.00 seconds") as caught:
        invoke({}, None)
    assert isinstance(caught.value, Exception) and isinstance(caught.value.__cause__, FanoutCrash)
    assert replaced == [True]
    # AND the next invocation starts alive (its own draw decides whether it crashes)
    assert injector.dead
    with pytest.raises(TaskTimedOut):
        invoke({}, None)
    assert replaced == [True, True]


def test_the_process_clock_follows_the_simulated_clock_and_stands_still_between_syncs() -> None:
    start = 1_768_467_600_000  # 2026-01-15T09:00:00Z
    clock = SimulatedClock(start)
    seen: list[float] = []
    with ProcessClock(clock) as process:
        handler = process.wrap(lambda event, context: seen.append(dt.datetime.now(dt.UTC).timestamp()))
        assert time.time() > 1_790_000_000  # real until the first sync
        handler({}, None)
        assert time.time() == start / 1000
        clock.advance_to(start + 185_000)
        assert time.time() == start / 1000  # not synced yet
        handler({}, None)
        assert time.time() == start / 1000 + 185
    assert seen == [start / 1000, start / 1000 + 185]
    assert time.time() > 1_790_000_000  # the real clock is back (later than 2026-09)
    process.sync()  # outside the run: no effect
    assert time.time() > 1_790_000_000
