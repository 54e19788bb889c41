"""``python -m benchmarks.fault_matrix``: one seeded burst under each fault alone and under all together, for both
triggers; print the audit of every run and rewrite the matrix in RELIABILITY.md.

The integration test ``tests/integration/local_pipeline/test_fault_matrix.py`` runs the same matrix (smaller)
in CI and asserts that nothing is lost and nothing is twice after deduplication.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from local_pipeline.faults import FaultSpec
from local_pipeline.runner import RunOptions, RunSummary, Trigger, run

RELIABILITY_MD = Path(__file__).resolve().parents[1] / "RELIABILITY.md"
START, END = "<!-- fault-matrix:start -->", "<!-- fault-matrix:end -->"

#: Each fault alone at a rate that makes it visible in a burst of a few hundred events, then all of them together.
MATRIX: dict[str, str] = {
    "dynamodb-throttle": "dynamodb-throttle=0.2",
    "firehose-unavailable": "firehose-unavailable=0.3",
    "firehose-partial": "firehose-partial=0.3",
    "fanout-crash": "fanout-crash=0.3",
    "transform-error": "transform-error=0.7",
    "s3-unavailable": "s3-unavailable=0.3",
    "sqs-redelivery": "sqs-redelivery=0.2",
    "all": "dynamodb-throttle=0.1,firehose-unavailable=0.1,firehose-partial=0.1,fanout-crash=0.1,"
    "transform-error=0.2,s3-unavailable=0.2,sqs-redelivery=0.1",
}
TRIGGERS: tuple[Trigger, ...] = ("queue", "direct")


@dataclass(frozen=True)
class Cell:
    """One run of the matrix: a fault (or all) under one trigger."""

    fault: str
    trigger: Trigger
    summary: RunSummary

    def row(self) -> str:
        """The Markdown table row."""
        s = self.summary
        audit = s.audit
        assert audit is not None
        injected = ", ".join(f"{name} {count}" for name, count in sorted(s.faults_injected.items())) or "0"
        if self.fault == "sqs-redelivery" and self.trigger == "direct":
            injected = "n/a (no buffer queue in direct mode)"
        parked = audit.in_dead_letters + audit.in_error_prefix
        reasons = "; ".join(f"{count} {reason}" for reason, count in sorted(audit.parked_reasons.items()))
        return (
            f"| {self.fault} | {self.trigger} | {s.events_total} | {audit.sales} | {audit.in_lake} | {audit.lost} | "
            f"{audit.duplicated_after_dedup} | {parked}{': ' + reasons if reasons else ''} | {injected} | "
            f"{retries(s)} |"
        )


def retries(summary: RunSummary) -> str:
    """What answered the faults: the fan-out's retries, redeliveries and resends, the stream's retries."""
    parts = [f"{name} {count}" for name, count in sorted(summary.fanout_retries.items()) if count]
    stats = summary.stream
    if stats.invocation_errors:
        parts.append(f"transform invocation errors {stats.invocation_errors}")
    if stats.s3_put_retries:
        parts.append(f"S3 put retries {stats.s3_put_retries}")
    return ", ".join(parts) or "none needed"


def run_cell(fault: str, trigger: Trigger, *, events: int, seed: int, burst_seconds: int, out: Path) -> Cell:
    """One seeded run under ``MATRIX[fault]`` (no dashboards), audited."""
    options = RunOptions(
        events=events,
        seed=seed,
        out=out / f"{fault}-{trigger}",
        burst_seconds=burst_seconds,
        dashboards=False,
        trigger=trigger,
        faults=FaultSpec.parse(MATRIX[fault]),
    )
    return Cell(fault, trigger, run(options, out=io.StringIO()))


def table(cells: list[Cell]) -> str:
    """The matrix as a Markdown table."""
    header = (
        "| fault | trigger | events | valid sales | in lake once | lost | twice after dedup | parked (with reason) "
        "| faults injected | retries observed |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    return "\n".join([header, *(cell.row() for cell in cells)])


def main() -> int:
    """Run the matrix; print each row as it completes; rewrite RELIABILITY.md's table unless --no-write."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fault_matrix", description=__doc__)
    parser.add_argument("--events", type=int, default=300, help="events per run (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the burst and of the faults")
    parser.add_argument("--burst-seconds", type=int, default=60, help="simulated seconds of the burst")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RELIABILITY.md as it is")
    args = parser.parse_args()
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="fault-matrix-") as tmp:
        for fault in MATRIX:
            for trigger in TRIGGERS:
                cell = run_cell(
                    fault, trigger, events=args.events, seed=args.seed, burst_seconds=args.burst_seconds, out=Path(tmp)
                )
                cells.append(cell)
                print(cell.row(), flush=True)
    lost = sum(cell.summary.audit.lost for cell in cells if cell.summary.audit is not None)
    twice = sum(cell.summary.audit.duplicated_after_dedup for cell in cells if cell.summary.audit is not None)
    command = (
        f"python -m benchmarks.fault_matrix --events {args.events} --seed {args.seed} "
        f"--burst-seconds {args.burst_seconds}"
    )
    block = (
        f"{START}\nProduced by `{command}` ({platform.python_implementation()} {platform.python_version()}, "
        f"{_cores()} cores, measured while other work loaded the machine; wall times are not part of the table). "
        f"Rates: {'; '.join(f'{name}: `{spec}`' for name, spec in MATRIX.items())}.\n\n{table(cells)}\n{END}"
    )
    if not args.no_write:
        text = RELIABILITY_MD.read_text(encoding="utf-8")
        RELIABILITY_MD.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
        print(f"wrote the matrix into {RELIABILITY_MD}")
    print(f"lost {lost}, twice after dedup {twice} over {len(cells)} runs")
    return 1 if lost or twice else 0


def _cores() -> int:
    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
