"""Lambda as the local run plays it: asynchronous retries on the simulated clock, metrics (no moto)."""

from __future__ import annotations

from typing import Any

from local_pipeline.clock import SimulatedClock
from local_pipeline.lambda_service import ASYNC_RETRY_DELAYS_MS, AsyncInvoker, LambdaFunction
from local_pipeline.metrics import MetricsRecorder

T0 = 1_768_467_600_000


def drive(invoker: AsyncInvoker, clock: SimulatedClock) -> None:
    while (due := invoker.next_due()) is not None:
        clock.advance_to(due)
        invoker.step()


def test_a_failing_event_is_retried_after_one_then_two_minutes_then_goes_to_the_destination() -> None:
    clock = SimulatedClock(T0)
    moments: list[int] = []
    failures: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        moments.append(clock.now_ms)
        raise RuntimeError("down")

    function = LambdaFunction("fanout", handler, clock=clock)
    invoker = AsyncInvoker(function, clock=clock, on_failure=failures.append)
    invoker.invoke({"id": "e1"})
    drive(invoker, clock)
    assert ASYNC_RETRY_DELAYS_MS == (60_000, 120_000)
    assert moments == [T0, T0 + 60_000, T0 + 180_000]
    [record] = failures
    assert record["requestPayload"] == {"id": "e1"}
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert (invoker.stats.retried_events, invoker.stats.failed_events, invoker.stats.attempts) == (1, 1, 3)


def test_an_event_that_succeeds_on_a_retry_is_not_retried_again() -> None:
    clock = SimulatedClock(T0)
    calls: list[int] = []
    results: list[Any] = []
    settled: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, str]:
        calls.append(clock.now_ms)
        if len(calls) == 1:
            raise RuntimeError("throttled")
        return {"outcome": "processed"}

    metrics = MetricsRecorder()
    function = LambdaFunction("fanout", handler, clock=clock, metrics=metrics)
    invoker = AsyncInvoker(
        function,
        clock=clock,
        on_failure=lambda record: None,
        on_result=lambda event, result: results.append(result),
        on_settled=settled.append,
    )
    invoker.invoke({"id": "e1"})
    drive(invoker, clock)
    assert calls == [T0, T0 + 60_000]
    assert results == [{"outcome": "processed"}] and settled == [{"id": "e1"}]
    assert metrics.total("AWS/Lambda", "Invocations", FunctionName="fanout") == 2
    assert metrics.total("AWS/Lambda", "Errors", FunctionName="fanout") == 1
