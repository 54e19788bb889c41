"""Flow control: throughput refusals are resent until the invocation's deadline; throttled messages back off."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from fanout_lambda.errors import DeliveryIncomplete, WriteIncomplete
from fanout_lambda.flow_control import Backoff, is_throughput, retry_throughput
from fanout_lambda.settings import SQS_MAX_VISIBILITY_SECONDS, FlowControl
from tests.support import FakeTime, waiting_on


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "Call")


@pytest.mark.parametrize(
    "code", ["ServiceUnavailableException", "ProvisionedThroughputExceededException", "ThrottlingException"]
)
def test_throttling_codes_are_throughput(code: str) -> None:
    assert is_throughput(_error(code)) and is_throughput(code)


@pytest.mark.parametrize("code", ["AccessDeniedException", "ResourceNotFoundException", "InternalFailure"])
def test_other_failures_are_not(code: str) -> None:
    assert not is_throughput(_error(code))


def test_incomplete_deliveries_and_writes_say_whether_they_were_throttled() -> None:
    assert is_throughput(DeliveryIncomplete("s", 1, ["ServiceUnavailableException"], throughput=True))
    assert not is_throughput(DeliveryIncomplete("s", 1, ["InternalFailure"]))
    assert is_throughput(WriteIncomplete("t", 1))
    assert not is_throughput(ValueError("a bug"))


def _backoff(max_attempts: int = 4) -> tuple[Backoff, FakeTime]:
    backoff = Backoff(max_attempts, 0.05, 1.0, sleep=lambda _s: None, jitter=lambda _lo, hi: hi)
    return backoff, waiting_on(FakeTime(), backoff)


def test_a_throughput_refusal_is_resent_until_the_deadline_not_a_fixed_number_of_times() -> None:
    backoff, time = _backoff()
    backoff.start(10.0)
    attempt = 1
    while backoff.retry(attempt + 1, throughput=True):
        attempt += 1
    # pauses of 0.05 + 0.1 + 0.2 + 0.4 + 0.8 + 8 x 1 = 9.55 s fit in 10 s: 14 attempts, far past max_attempts (4)
    assert attempt == 14
    assert time.now <= 10.0 < time.now + 1.0


def test_other_transient_failures_keep_max_attempts() -> None:
    backoff, _ = _backoff(max_attempts=3)
    backoff.start(10.0)
    assert [backoff.retry(n, throughput=False) for n in (2, 3, 4)] == [True, True, False]


def test_without_a_deadline_throughput_is_resent_max_attempts_times() -> None:
    backoff, _ = _backoff(max_attempts=3)
    assert [backoff.retry(n, throughput=True) for n in (2, 3, 4)] == [True, True, False]


def test_retry_throughput_resends_a_throttled_call_and_raises_anything_else_at_once() -> None:
    backoff, _ = _backoff()
    backoff.start(5.0)
    answers: list[object] = [_error("ThrottlingException"), _error("ThrottlingException"), "done"]

    def call() -> object:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retry_throughput(call, backoff) == "done"
    denied = [_error("AccessDeniedException")]
    with pytest.raises(ClientError, match="AccessDenied"):
        retry_throughput(lambda: (_ for _ in ()).throw(denied.pop()), backoff)


def test_throttled_messages_back_off_exponentially_in_their_receive_count_with_jitter() -> None:
    flow = FlowControl(margin_seconds=3, base_seconds=30, max_seconds=900)
    # d = min(900, 30 x 2^(n-1)); the visibility is d/2 + draw x d/2
    assert [flow.visibility_seconds(n, 0.0) for n in (1, 2, 3, 4, 5, 6, 7)] == [15, 30, 60, 120, 240, 450, 450]
    assert [flow.visibility_seconds(n, 0.999) for n in (1, 6)] == [30, 900]
    assert FlowControl(3, 30, 10**9).visibility_seconds(60, 0.5) == SQS_MAX_VISIBILITY_SECONDS


def test_the_declared_receive_budget_covers_the_longest_declared_backlog() -> None:
    import pipeline_config

    queue = pipeline_config.load()["buffer_queue"]
    flow = FlowControl.from_declarations()
    guaranteed = sum(flow.visibility_seconds(n, 0.0) for n in range(1, queue["max_receive_count"]))
    assert guaranteed >= queue["longest_backlog_seconds"]
    assert queue["message_retention_seconds"] > queue["longest_backlog_seconds"]
