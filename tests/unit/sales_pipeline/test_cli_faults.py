"""``sales-pipeline run --faults``: one-line errors for a bad spec, exit 1 when the audit finds a loss."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

import pipeline_config
from fanout_lambda.validation import validator
from local_pipeline import runner
from local_pipeline.audit import Audit, AuditReport
from local_pipeline.faults import FaultSpec
from sales_pipeline import cli


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("nope=0.1", "argument --faults: unknown fault 'nope'; known faults: dynamodb-throttle, "),
        ("fanout-crash=2", "argument --faults: fault 'fanout-crash': rate 2 is outside 0-1"),
    ],
)
def test_a_bad_fault_spec_is_a_one_line_usage_error(
    spec: str, expected: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "--faults", spec, "--out", str(tmp_path / "lake")])
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert expected in last
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize(("lost", "status"), [(0, 0), (3, 1)])
def test_the_run_exits_1_when_the_audit_finds_a_loss(
    lost: int, status: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[runner.RunOptions] = []

    def fake_run(options: runner.RunOptions, **_: Any) -> runner.RunSummary:
        seen.append(options)
        return runner.RunSummary(audit=AuditReport(sales=10, in_lake=10 - lost, lost=lost))

    monkeypatch.setattr(runner, "run", fake_run)
    assert cli.main(["run", "--faults", "fanout-crash=0.1,s3-unavailable=0.2"]) == status
    assert seen[0].faults == FaultSpec.parse("fanout-crash=0.1,s3-unavailable=0.2")
    err = capsys.readouterr().err
    assert ("audit failed: 3 lost" in err) == bool(lost)


def test_the_audit_keeps_a_few_bytes_per_sale_not_the_events() -> None:
    # GIVEN an audit fed 100,000 distinct sales (and 1,000 invalid events), as a 100,000-event run feeds it
    audit = Audit(validator(pipeline_config.embedding_dimension()), pipeline_config.load()["event_pattern"])
    pattern = pipeline_config.load()["event_pattern"]
    tracemalloc.start()
    try:
        for n in range(101_000):
            event = {
                "id": f"evt-{n}",
                "source": pattern["source"][0],
                "detail-type": pattern["detail-type"][0],
                "detail": {"tenantId": "t1", "productId": f"PROD-{n:07d}", "soldDate": "2025-12-30", "n": [n] * 50},
            }
            audit.expect(event, "valid" if n < 100_000 else "invalid")
        held, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # THEN what it holds is a small multiple of 10 bytes a sale (dict slots and bytes objects; 96 measured), not
    # the events (each ~20 KB with its embedding)
    assert held < 200 * 101_000, f"{held / 101_000:.0f} bytes per event"


def test_the_help_names_every_fault_there_is(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The CLI spells the names out (importing the fault module would slow --help): this keeps them in step.
    from local_pipeline.faults import FAULTS

    monkeypatch.setenv("COLUMNS", "2000")  # no wrapping (argparse may break lines at hyphens)
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    shown = capsys.readouterr().out
    assert [name for name in FAULTS if name not in shown] == []
