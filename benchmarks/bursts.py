"""``python -m benchmarks.bursts``: the same seeded burst offered to both triggers in two quota regions, and to the
queue trigger with four streams in the region of the lower quotas.

Each cell is one ``sales-pipeline run`` (in-process, dashboards off) of the burst: ``--events`` events spread
over ``events / rate`` simulated seconds, with ``--trigger queue|direct``, ``--region`` and
``--firehose-streams``. Every figure in the table comes from that run's ``summary.json``; nothing is assumed.
The floor is the least time Firehose's byte quota allows to take what it took: ``firehose_bytes_in`` / (quota x
streams); the drain (``ingest_drain_seconds``, from the first event to the last record accepted) is compared
with it. The table is printed and written into
BENCHMARKS.md between the burst markers (``--no-write`` leaves the file alone).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- burst-benchmarks:start -->", "<!-- burst-benchmarks:end -->"
TRIGGERS = ("queue", "direct")
#: eu-west-1 has the higher Direct PUT quotas (2,000 requests/s, 5 MiB/s); ap-southeast-2 the default ones.
REGIONS = ("eu-west-1", "ap-southeast-2")


#: The extra cell: the queue trigger with this many streams in the region of the lower quotas.
EXTRA_STREAMS = 4


@dataclass
class Cell:
    """One run's figures."""

    trigger: str
    region: str
    summary: dict[str, Any]
    wall_seconds: float
    streams: int = 1

    @property
    def floor_seconds(self) -> float:
        """``firehose_bytes_in`` / (quota x streams): the least time the byte quota allows."""
        s = self.summary
        capacity = float(s["firehose_bytes_per_second_quota"]) * float(s["firehose_streams"])
        return float(s["firehose_bytes_in"]) / capacity


def run_cell(
    trigger: str,
    region: str,
    *,
    events: int,
    seed: int,
    burst_seconds: int,
    streams: int = 1,
    warm_writes: int | None = None,
) -> Cell:
    """One run of the burst, in a process of its own (its peak memory is its own); its summary.json."""
    with tempfile.TemporaryDirectory(prefix="burst-") as folder:
        out = Path(folder) / "lake"
        command = [
            sys.executable, "-m", "sales_pipeline", "run", "-n", str(events), "--seed", str(seed),
            "--burst-seconds", str(burst_seconds), "--region", region, "--trigger", trigger,
            "--firehose-streams", str(streams), "--no-dashboards", "--out", str(out),
            *(("--dynamodb-warm-writes", str(warm_writes)) if warm_writes else ()),
        ]  # fmt: skip
        started = time.perf_counter()
        # The run's progress lines go to this command's stderr; its summary is read from summary.json.
        finished = subprocess.run(command, stdout=sys.stderr, check=False)  # noqa: S603 - this interpreter
        wall = time.perf_counter() - started
        if finished.returncode != 0:
            raise SystemExit(f"{trigger} in {region}: sales-pipeline run exited with {finished.returncode}")
        summary = json.loads((out / "summary.json").read_text())
    return Cell(trigger, region, summary, wall, streams)


def table(cells: list[Cell]) -> list[str]:
    """The markdown table of the cells."""
    lines = [
        "| trigger | region | streams | bytes per record | Firehose requests | throttled requests "
        "| peak requests/s (quota) | throttled records | fan-out invocations | events retried "
        "| valid sales in the DLQ (all dead letters) | lost | lake rows | drain | floor | drain / floor "
        "| last sale in S3 | wall time | peak memory |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        s = cell.summary
        per_record = s["firehose_bytes_in"] / max(1, s["firehose_records_in"])
        drain, floor = s["ingest_drain_seconds"], cell.floor_seconds
        lines.append(
            f"| {cell.trigger} | {cell.region} | {s['firehose_streams']} | {per_record:,.0f} "
            f"| {s['firehose_put_requests']:,} | {s['firehose_throttled_requests']:,} "
            f"| {s['firehose_peak_requests_per_second']:,} ({s['firehose_requests_per_second_quota']:,}) "
            f"| {s['firehose_throttled_records']:,} | {s['fanout_invocations']:,} | {s['events_retried']:,} "
            f"| {s.get('audit_in_dead_letters', 0):,} ({s['dead_letters']:,}) | {s.get('audit_lost', 0):,} "
            f"| {s['lake_rows']:,} | {drain:,.1f} s | {floor:,.1f} s | {drain / floor if floor else 0:,.2f} "
            f"| {s['last_sale_in_lake_seconds']:,.0f} s | {cell.wall_seconds:,.0f} s "
            f"| {s.get('peak_memory_mb', 0):,.0f} MB |"
        )
    return lines


def dynamodb_table(cells: list[Cell]) -> list[str]:
    """Each cell's DynamoDB figures by table and index (summary.json's ``dynamodb_tables``)."""
    lines = [
        "| trigger | region | streams | table or index | write units | per new sale | peak units/s | capacity/s "
        "| throttle events | throttled requests |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for cell in cells:
        s = cell.summary
        processed = max(1, s["processed"])
        for name, row in s.get("dynamodb_tables", {}).items():
            per_sale = (row["write_units"] - row["failed_condition_write_units"]) / processed
            lines.append(
                f"| {cell.trigger} | {cell.region} | {s['firehose_streams']} | {name} | {row['write_units']:,} "
                f"| {per_sale:.2f} | {row['peak_write_units_per_second']:,} | {row['write_capacity_per_second']:,} "
                f"| {row['throttle_events']:,} | {row['throttled_requests']:,} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure every cell, print the table, write it to BENCHMARKS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bursts", description=__doc__)
    parser.add_argument("--events", type=int, default=50_000, help="events in the burst (default: %(default)s)")
    parser.add_argument("--rate", type=int, default=5_000, help="events per simulated second (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the burst (default: %(default)s)")
    parser.add_argument("--trigger", choices=TRIGGERS, action="append", help="only this trigger (repeatable)")
    parser.add_argument("--region", action="append", help="only this region (repeatable)")
    parser.add_argument(
        "--no-extra-streams", action="store_true", help=f"leave out the queue cell with {EXTRA_STREAMS} streams"
    )
    parser.add_argument(
        "--dynamodb-warm-writes",
        type=int,
        default=None,
        help="each table's and index's starting write capacity (default: a new on-demand table's 4,000/s)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args(argv)
    burst_seconds = max(1, round(args.events / args.rate))
    plan = [(trigger, region, 1) for region in args.region or REGIONS for trigger in args.trigger or TRIGGERS]
    if not args.no_extra_streams and "queue" in (args.trigger or TRIGGERS):
        plan.append(("queue", (args.region or REGIONS)[-1], EXTRA_STREAMS))
    cells = []
    for trigger, region, streams in plan:
        print(
            f"{trigger} in {region}, {streams} stream(s): {args.events:,} events over {burst_seconds} s ...", flush=True
        )
        cell = run_cell(
            trigger,
            region,
            events=args.events,
            seed=args.seed,
            burst_seconds=burst_seconds,
            streams=streams,
            warm_writes=args.dynamodb_warm_writes,
        )
        print("\n".join(table([cell])[2:]), flush=True)
        cells.append(cell)
    command = "python -m benchmarks.bursts" + "".join(
        f" {flag} {value}"
        for flag, value, default in (
            ("--events", args.events, 50_000),
            ("--rate", args.rate, 5_000),
            ("--seed", args.seed, 7),
            ("--dynamodb-warm-writes", args.dynamodb_warm_writes, None),
        )
        if value != default
    )
    section = [
        START,
        f"Measured with `{command}` on {os.cpu_count()} cores, Python {platform.python_version()}: the seeded "
        f"burst of {args.events:,} events at {args.rate:,} events/s ({burst_seconds} simulated seconds), each "
        "cell one `sales-pipeline run` of it in its own process, one after the other; every figure from that "
        "run's summary.json (peak memory: the run's and its embedded DynamoDB's peak resident sets added).",
        "",
        *table(cells),
        "",
        "DynamoDB in the same runs, by table and index (write units consumed; per new sale: all but the failed "
        "conditional claims of duplicates, over the sales processed; the busiest second against the capacity in "
        "that second; throttle events count each refused table or index write):",
        "",
        *dynamodb_table(cells),
        END,
    ]
    print("\n".join(section))
    if not args.no_write:
        _write("\n".join(section))
        print(f"\nwrote {BENCHMARKS_MD.name}")
    return 0


def _write(section: str) -> None:
    text = BENCHMARKS_MD.read_text()
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n## Bursts (issue 8)\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
