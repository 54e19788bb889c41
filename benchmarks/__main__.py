"""``python -m benchmarks``: measure, print, and rewrite the core section of BENCHMARKS.md."""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

from benchmarks import fanout, transform

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- core-benchmarks:start -->", "<!-- core-benchmarks:end -->"


def _cpu() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown CPU"
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else "unknown CPU"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--rounds", type=int, default=30, help="transform rounds per approach (median reported)")
    parser.add_argument("--events", type=int, default=400, help="fan-out events timed against moto")
    parser.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md as it is")
    args = parser.parse_args()

    print(f"transform: {args.rounds} rounds of one processor-buffer batch per approach ...", flush=True)
    event, results = transform.run(args.rounds)
    by_name = {r.name: r for r in results}
    handler, floor, blueprint = by_name["handler"], by_name["floor"], by_name["blueprint"]
    of_floor = handler.records_per_second / floor.records_per_second
    vs_blueprint = handler.records_per_second / blueprint.records_per_second
    print(f"fan-out: 1 new + 1 duplicate event counted, then {args.events} new events timed ...", flush=True)
    cost = fanout.run(args.events)

    batch = len(event["records"])
    total_units = cost.item_write_units + cost.gsi2_write_units + cost.idempotency_write_units_new
    lines = [
        START,
        f"Measured with `make bench` (= `python -m benchmarks --rounds {args.rounds} --events {args.events}`) on "
        f"{os.cpu_count()} cores ({_cpu()}), Python {platform.python_version()}.",
        "",
        f"### Transform throughput (one processor-buffer batch: {batch} records of 1024-dim sales, median of "
        f"{args.rounds} interleaved rounds)",
        "",
        "| approach | records/s | MB/s (raw JSON) |",
        "|---|---:|---:|",
        *(f"| {r.name} | {r.records_per_second:,.0f} | {r.mb_per_second:,.1f} |" for r in results),
        "",
        f"Handler = **{of_floor:.0%} of the floor** (target >= 75%) and **{vs_blueprint:.1f}x the blueprint** "
        "(target >= 4x). Blueprint: stdlib `json` + `base64` per record with the same output shape; floor: "
        "base64-decode, orjson parse, orjson serialise, base64-encode, nothing else.",
        "",
        "### Fan-out cost per event (in-process moto)",
        "",
        "| | new event | duplicate |",
        "|---|---|---|",
        f"| API calls | {_calls(cost.calls_new)} | {_calls(cost.calls_duplicate)} |",
        f"| DynamoDB write units | sales item {cost.item_write_units} ({cost.item_bytes} bytes) + GSI2 copy "
        f"{cost.gsi2_write_units} ({cost.gsi2_bytes} bytes, Terraform's INCLUDE projection) + idempotency "
        f"{cost.idempotency_write_units_new} = **{total_units}** | "
        f"{_duplicate_units(cost.calls_duplicate)} |",
        "",
        f"Throughput: **{cost.events_per_second:,.0f} events/s** over {cost.events} new events, one handler call "
        "each, against in-process moto (moto's latency dominates; this bounds the Python overhead, not AWS's).",
        END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        _write(section)
        print(f"\nwrote {BENCHMARKS_MD.name}")
    return 0


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{name} x{count}" for name, count in sorted(calls.items())) or "none"


def _duplicate_units(calls: dict[str, int]) -> str:
    # A duplicate's only write is Powertools' conditional put, which fails the condition: it still costs 1 unit.
    writes = sum(count for name, count in calls.items() if name.startswith("dynamodb.put_item"))
    return f"{writes} (the failed conditional put of the idempotency record)"


def _write(section: str) -> None:
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n\n## Core Lambdas\n\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    BENCHMARKS_MD.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
