"""``python -m benchmarks``: measure, print, and rewrite the core section of BENCHMARKS.md.

``python -m benchmarks --fanout-batch``: the queue-mode fan-out figures (issue 7) instead, in their own section.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
from pathlib import Path

import pipeline_config
from benchmarks import fanout, fanout_batch, transform

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- core-benchmarks:start -->", "<!-- core-benchmarks:end -->"
BATCH_START, BATCH_END = "<!-- fanout-batch:start -->", "<!-- fanout-batch:end -->"


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
    group = parser.add_argument_group("queue-mode fan-out (issue 7)")
    group.add_argument("--fanout-batch", action="store_true", help="measure SQS batches instead of the core figures")
    group.add_argument("--sales", type=int, default=500, help="sales per batch")
    group.add_argument("--latency-ms", type=float, default=5.0, help="latency added before every AWS call")
    group.add_argument("--batch-rounds", type=int, default=3, help="batches of new sales timed (fresh sales each)")
    args = parser.parse_args()
    if args.fanout_batch:
        return _fanout_batch(args)

    print(f"transform: {args.rounds} rounds of one processor-buffer batch per approach ...", flush=True)
    event, results = transform.run(args.rounds)
    by_name = {r.name: r for r in results}
    handler = by_name["handler (compact)"]
    of_floor = handler.records_per_second / by_name["floor (JSON)"].records_per_second
    of_compact_floor = handler.records_per_second / by_name["floor (compact)"].records_per_second
    json_of_floor = by_name["handler (JSON)"].records_per_second / by_name["floor (JSON)"].records_per_second
    vs_blueprint = by_name["handler (JSON)"].records_per_second / by_name["blueprint (JSON)"].records_per_second
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
        "| approach | records/s | MB/s (of its input) |",
        "|---|---:|---:|",
        *(f"| {r.name} | {r.records_per_second:,.0f} | {r.mb_per_second:,.1f} |" for r in results),
        "",
        f"Handler on the fan-out's compact records = **{of_floor:.2f}x the orjson floor** of the same sales "
        f"(target >= 0.9x): it never parses float text. Against the compact form's own floor {of_compact_floor:.2f}x; "
        f"on the same sales as JSON records {json_of_floor:.2f}x the orjson floor and **{vs_blueprint:.1f}x the "
        "blueprint** (target >= 4x). Blueprint: stdlib `json` + `base64` per record with the same output shape; "
        "orjson floor: base64-decode, orjson parse, orjson serialise, base64-encode of the JSON records, nothing "
        "else; compact floor: the same with the header read by orjson and the float32 values by `array`.",
        "",
        "### Fan-out cost per event (in-process moto)",
        "",
        "| | new event | duplicate |",
        "|---|---|---|",
        f"| API calls | {_calls(cost.calls_new)} | {_calls(cost.calls_duplicate)} |",
        f"| DynamoDB write units | sales item {cost.item_write_units} ({cost.item_bytes} bytes) + GSI2 copy "
        f"{cost.gsi2_write_units} ({cost.gsi2_bytes} bytes, pipeline.json's INCLUDE projection) + idempotency "
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


def _fanout_batch(args: argparse.Namespace) -> int:
    load = os.getloadavg()[0]
    print(
        f"fan-out batches: {args.batch_rounds} x {args.sales} new sales, then {args.sales} duplicates ...", flush=True
    )
    cost = fanout_batch.run(sales=args.sales, latency_ms=args.latency_ms, rounds=args.batch_rounds)
    new, dup = cost.new, cost.duplicate
    units = new.write_units
    total_units = sum(units.values()) / new.sales
    firehose = "firehose.PutRecordBatch"
    capped = cost.payloads[0]
    command = (
        f"python -m benchmarks --fanout-batch --sales {args.sales} --latency-ms {args.latency_ms:g} "
        f"--batch-rounds {args.batch_rounds}"
    )
    seconds = ", ".join(f"{s:.2f}" for s in new.seconds)
    cpu = ", ".join(f"{s:.2f}" for s in new.cpu_seconds)
    lines = [
        BATCH_START,
        f"Measured with `{command}` on {os.cpu_count()} cores ({_cpu()}), Python {platform.python_version()}, "
        f"moto {_version('moto')} in-process, a pool of {cost.pool_size} threads and HTTP connections; "
        f"load average {load:.1f} when it started (other work shared the machine: the times are pessimistic).",
        "",
        f"| per event | batch of {new.sales} new sales | batch of {dup.sales} duplicates | target |",
        "|---|---|---|---|",
        f"| Firehose requests | **{new.per_event(firehose):.3f}** ({new.calls.get(firehose, 0)} PutRecordBatch: "
        "the 4 MiB limit, not the 500 records, splits them) | "
        f"**{dup.per_event(firehose):.3f}** | <= 0.01 (direct mode: 1.0) |",
        f"| Lambda invocations | {1 / new.sales:.3f} (1/{new.sales}); **{1 / capped.max_batch:.4f}** "
        f"(1/{capped.max_batch}) where the 6 MB payload caps the batch (below) | {1 / dup.sales:.3f} | "
        "1 / batch size |",
        f"| AWS calls, all told | **{new.calls_per_event:.3f}** ({_calls(new.calls)}) | "
        f"**{dup.calls_per_event:.3f}** ({_calls(dup.calls)}) | <= 2.2 new, <= 1.1 duplicate, no Firehose call |",
        f"| DynamoDB write units | **{total_units:g}** (sales item {units.get('sales', 0) / new.sales:g} + GSI2 copy "
        f"{units.get('sales GSI2 copy', 0) / new.sales:g} + idempotency claim and completion "
        f"{units.get('idempotency', 0) / new.sales:g}) | {sum(dup.write_units.values()) / dup.sales:g} (the failed "
        f"conditional claim) | <= 8 ({pipeline_config.dynamodb_embedding_encoding()} item embedding, issue 19) |",
        "",
        f"Wall time of a batch of {new.sales} new sales with {args.latency_ms:g} ms added before every AWS call: "
        f"**{fanout_batch.median(new.seconds):.2f} s** median ({seconds} s; target < 1.5 s); CPU time of the whole "
        f"process (handler, botocore and moto, all threads): {cpu} s, so the wall time is bounded by moto's CPU, "
        f"not by round trips. {dup.sales} duplicates: {dup.seconds[0]:.2f} s (CPU {dup.cpu_seconds[0]:.2f} s). "
        f"The same {sum(new.calls.values())} calls one after another would wait "
        f"{sum(new.calls.values()) * args.latency_ms / 1000:.1f} s on latency alone.",
        "",
        "Calls are counted by a botocore `before-send` hook on each client (which also adds the latency); write "
        "units are computed from the items the requests carry (1 per started KB; the GSI2 copy with pipeline.json's "
        "INCLUDE projection), as in the core table: moto does not bill.",
        "",
        "Batch size the 6 MB synchronous invocation payload allows (6,000,000 bytes, measured on the JSON of an SQS "
        "event whose bodies are 1024-dimension sale events):",
        "",
        "| embedding values | bytes per SQS record | sales per invocation |",
        "|---|---:|---:|",
        *(f"| {p.embedding} | {p.record_bytes:,} | **{p.max_batch}** |" for p in cost.payloads),
        "",
        "With the default batch size of 500 (pipeline.json), Lambda's event source mapping stops filling a batch at "
        "the payload limit, so full-precision embeddings arrive in batches of about "
        f"{capped.max_batch}: the other figures per event hold whatever the batch size (Firehose: one call per "
        f"{new.sales / max(new.calls.get(firehose, 1), 1):.0f} records of this size).",
        BATCH_END,
    ]
    section = "\n".join(lines)
    print(section)
    if not args.no_write:
        _write(section, BATCH_START, BATCH_END, "## Burst-grade fan-out: SQS batches (issue 7)")
        print(f"\nwrote {BENCHMARKS_MD.name}")
    return 0


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def _write(section: str, start: str = START, end: str = END, heading: str = "") -> None:
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else "# Benchmarks\n\n## Core Lambdas\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + (f"{heading}\n\n" if heading else "") + section + "\n"
    BENCHMARKS_MD.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
