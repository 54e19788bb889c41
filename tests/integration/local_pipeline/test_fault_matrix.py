"""The fault matrix: a seeded burst under each fault alone and all together, for both triggers, audited.

Nothing may be lost and nothing may be twice in the lake after deduplication; a sale may be parked (DLQ or error
prefix) only with its reason. Each run also has to show that its fault fired and that something answered it,
so a fault that never triggers cannot pass for resilience. RELIABILITY.md tabulates the same matrix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fault_matrix import MATRIX, TRIGGERS, retries, run_cell

pytestmark = pytest.mark.integration

EVENTS = 200
SEED = 7
BURST_SECONDS = 60


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("fault", list(MATRIX))
def test_under_the_fault_nothing_is_lost_and_nothing_is_twice_after_dedup(
    fault: str, trigger: str, tmp_path: Path
) -> None:
    # WHEN a seeded burst runs under the fault
    cell = run_cell(fault, trigger, events=EVENTS, seed=SEED, burst_seconds=BURST_SECONDS, out=tmp_path)  # type: ignore[arg-type]
    summary, audit = cell.summary, cell.summary.audit
    assert audit is not None

    # THEN every event is accounted for
    assert audit.lost == 0, audit.lines()
    assert audit.duplicated_after_dedup == 0, audit.lines()
    assert audit.unexpected_in_lake == 0, audit.lines()
    assert audit.in_lake + audit.in_dead_letters + audit.in_error_prefix == audit.sales
    assert audit.rejected_in_dead_letters == audit.invalid_events > 0
    # AND whatever is parked says why
    assert sum(audit.parked_reasons.values()) == audit.in_dead_letters + audit.in_error_prefix
    # AND a crashed invocation's claim lapses before its sale comes again: no sale ends in the DLQ for meeting a
    # live claim on its last delivery (a sale whose every delivery failed on a throttle may park, with that reason)
    assert not any("InProgress" in r or "still held" in r for r in audit.parked_reasons), audit.lines()
    assert "unknown" not in audit.parked_reasons
    # AND the fault really fired and was answered (sqs-redelivery needs the buffer queue)
    if fault == "sqs-redelivery" and trigger == "direct":
        assert summary.faults_injected == {}
        return
    assert sum(summary.faults_injected.values()) > 0, f"{fault} never fired: choose another rate or seed"
    assert retries(summary) != "none needed"
    # AND the summary.json keys are there
    fields = summary.as_json()
    assert fields["audit_lost"] == 0 and fields["audit_duplicated_after_dedup"] == 0
    assert {"audit_in_dead_letters", "audit_in_error_prefix", "faults_injected"} <= set(fields)


def test_the_process_clock_follows_the_simulation_only_while_the_handlers_run(tmp_path: Path) -> None:
    # GIVEN a run whose metrics put and fan-out invocations note the process clock they see
    import io
    import time

    from local_pipeline.faults import FaultSpec
    from local_pipeline.runner import RunOptions, Services, run

    seen: dict[str, list[float]] = {"invocation": [], "metrics": []}

    def spy(services: Services) -> Services:
        put, invoke = services.metrics.put, services.fanout._handler

        def metrics_put(*args: object, **kwargs: object) -> int:
            seen["metrics"].append(time.time())
            return put(*args, **kwargs)  # type: ignore[arg-type]

        def fanout(event: object, context: object) -> object:
            result = invoke(event, context)
            seen["invocation"].append(time.time())
            return result

        services.metrics.put = metrics_put  # type: ignore[method-assign]
        services.fanout._handler = fanout
        return services

    # WHEN it runs (a crash fault, so the claims' clock matters)
    options = RunOptions(events=60, seed=3, out=tmp_path / "lake", burst_seconds=60, dashboards=False,
                         trigger="direct", faults=FaultSpec.parse("fanout-crash=0.2"))  # fmt: skip
    run(options, out=io.StringIO(), wrap=spy)

    # THEN the handlers saw the burst's simulated time (January 2026), the metrics were put on the real clock
    # (CloudWatch readers look at the last hours of wall-clock time)
    burst_start = 1_768_467_600  # 2026-01-15T09:00:00Z, the generator's default start
    assert seen["invocation"] and all(burst_start <= t < burst_start + 3600 for t in seen["invocation"])
    assert seen["metrics"] and all(t > burst_start + 30 * 86400 for t in seen["metrics"])
