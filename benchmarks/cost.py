"""``python -m benchmarks.cost``: what a million new sales cost on the default (queue) path, by embedding encoding.

Measured on the project's own code against in-process moto: a batch of the local generator's sales goes through
the fan-out handler as the event source mapping delivers it (an SQS batch), with every AWS call counted and the
DynamoDB write units computed from the items the requests carry (a GSI2 copy at pipeline.json's projection);
the Firehose records it sent then go through the transform handler in processor-buffer-sized invocations, and
the transform's rows through the local Parquet writer. Sizes, calls, durations and log bytes come from that
run; only the prices and the billing rules (cited beside each price) are AWS's.

Not in the table, because they do not grow with the number of sales: S3 objects and PUTs of Firehose deliveries
(at most one object per active partition per buffer), storage, the KMS key, alarms and the dashboard
(terraform/README.md has them), and the empty receives of the event source mapping's pollers while the queue is
idle. Lambda's own START/END/REPORT log lines are left out too (a few hundred bytes per invocation of 500 sales).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto import mock_aws

import glue_schemas
import pipeline_config
from benchmarks import fanout_batch
from benchmarks.fixtures import IDEMPOTENCY_TABLE, REGION, SALES_TABLE, STREAM, create_resources, sqs_event
from benchmarks.fixtures import context as lambda_context
from fanout_lambda import handler as fanout
from fanout_lambda.sale import item_size_bytes
from fanout_lambda.settings import FanoutSettings
from local_pipeline.generator import BurstSpec, generate
from local_pipeline.parquet import ParquetConverter
from pipeline_config import embedding_codec
from transform_lambda import handler as transform

BENCHMARKS_MD = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
START, END = "<!-- cost:start -->", "<!-- cost:end -->"
KIB, GIB = 1024, 1024**3
#: Terraform's defaults (terraform/variables.tf: fanout_memory_mb, transform_memory_mb).
FANOUT_MEMORY_GB, TRANSFORM_MEMORY_GB = 0.5, 1.0


@dataclass(frozen=True)
class Price:
    usd: float
    per: str
    source: str

    @property
    def each(self) -> float:
        """The price of one unit (a request, a write unit, a GB, a GB-second)."""
        return self.usd / 1_000_000 if self.per.startswith("million") else self.usd


#: us-east-1 on-demand list prices. Reused from terraform/README.md's estimate (2025 pricing pages) unless noted;
#: this machine cannot reach the pages to re-check them: confirm with the AWS Pricing Calculator before budgeting.
PRICES = {
    "eventbridge": Price(1.00, "million custom events (64 KB chunks)", "https://aws.amazon.com/eventbridge/pricing/"),
    "sqs": Price(0.40, "million requests (64 KB chunks)", "https://aws.amazon.com/sqs/pricing/"),
    "lambda_requests": Price(0.20, "million requests", "https://aws.amazon.com/lambda/pricing/"),
    "lambda_gb_second": Price(0.0000166667, "GB-second (x86)", "https://aws.amazon.com/lambda/pricing/"),
    "dynamodb_write": Price(0.625, "million write request units", "https://aws.amazon.com/dynamodb/pricing/on-demand/"),
    "firehose_ingest": Price(0.029, "GB ingested (records in 5 KB steps)", "https://aws.amazon.com/firehose/pricing/"),
    "firehose_conversion": Price(0.018, "GB ingested (5 KB steps)", "https://aws.amazon.com/firehose/pricing/"),
    "firehose_partitioning": Price(0.020, "GB delivered to S3", "https://aws.amazon.com/firehose/pricing/"),
    "logs": Price(0.50, "GB ingested", "https://aws.amazon.com/cloudwatch/pricing/"),
}


@dataclass(frozen=True)
class Measured:
    """Everything the cost table needs, per new sale (one batch of ``sales``)."""

    encoding: str
    sales: int
    event_bytes_max: int
    event_chunks: float  # 64 KB chunks per event (EventBridge and SQS bill by them)
    batch_size: int  # sales per fan-out invocation: pipeline.json's batch size or the 6 MB payload, the smaller
    fanout_seconds: float  # wall time of the batch (moto in-process, 5 ms added per call)
    fanout_calls: dict[str, int]
    write_units: dict[str, int]
    item_bytes: float
    record_bytes: float
    billed_record_bytes: float  # Firehose's 5 KB steps
    transform_invocations: int
    transform_seconds: float
    parquet_bytes_per_row: float
    log_bytes: float  # fan-out and transform output per sale (CloudWatch Logs ingests stdout)
    worst_cosine: float  # of a decoded item embedding to the sale's own

    def per_sale(self, units: float) -> float:
        return units / self.sales


def _events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    spec = BurstSpec(events=count, seed=seed, retry_share=0, republish_share=0, invalid_share=0, unmatched_share=0)
    return [generated.event for generated in generate(spec)]


class _CostHooks(fanout_batch.Hooks):
    """The batch benchmark's call and write-unit counting, plus the Firehose records the fan-out sends."""

    def __init__(self, log: fanout_batch.CallLog, latency: float) -> None:
        super().__init__(log, latency)
        self.records: list[bytes] = []

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-parameter-build.firehose.PutRecordBatch", self._firehose_params)
        return super().attach(client)

    def _firehose_params(self, params: dict[str, Any], **_kwargs: Any) -> None:
        self.records.extend(record["Data"] for record in params["Records"])


@contextlib.contextmanager
def _captured(output: io.StringIO) -> Iterator[None]:
    """Everything a handler writes to stdout (what Lambda ships to CloudWatch Logs): its prints (EMF metrics) and
    its Powertools logger, whose handler holds the stream it was created with."""
    handlers = [h for name in (fanout.SERVICE, transform.SERVICE) for h in logging.getLogger(name).handlers]
    streams = [h.setStream(output) for h in handlers if isinstance(h, logging.StreamHandler)]
    try:
        with contextlib.redirect_stdout(output):
            yield
    finally:
        for handler, stream in zip(handlers, streams, strict=False):
            if stream is not None and isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)


def measure(encoding: str, sales: int = 500, latency_ms: float = 5.0) -> Measured:
    """Run one batch of ``sales`` new sales with ``encoding`` through both handlers; return what it used."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's dummy credentials, never a real account
        AWS_DEFAULT_REGION=REGION,
        AWS_REGION=REGION,
    )
    events = _events(max(sales, 800))  # enough to find where the 6 MB payload closes a batch
    sizes = [len(json.dumps(event, separators=(",", ":")).encode()) for event in events[:sales]]
    payload_batch, _ = fanout_batch.max_batch(events)
    batch_size = min(int(pipeline_config.load()["buffer_queue"]["batch_size"]), payload_batch)
    events = events[:sales]
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        names = create_resources(session)
        settings = FanoutSettings(
            SALES_TABLE, IDEMPOTENCY_TABLE, STREAM, names["queue_url"], 1024, embedding_encoding=encoding
        )
        log = fanout_batch.CallLog(Counter(), Counter())
        hooks = _CostHooks(log, latency_ms / 1000)
        config = fanout.client_config(settings.aws_call_concurrency)
        fanout.configure(
            settings=settings,
            dynamodb=hooks.attach(session.client("dynamodb", config=config)),
            firehose=hooks.attach(session.client("firehose", config=config)),
            sqs=hooks.attach(session.client("sqs", config=config)),
        )
        batch = sqs_event([(f"m-{n}", event) for n, event in enumerate(events)])
        output = io.StringIO()
        with _captured(output):
            start = time.perf_counter()
            response = fanout.lambda_handler(batch, lambda_context())
            fanout_seconds = time.perf_counter() - start
        fanout_log_bytes = len(output.getvalue().encode())
        if response["batchItemFailures"]:
            raise RuntimeError("sales of the cost batch failed: the figures would not hold")
        items = session.client("dynamodb").scan(TableName=SALES_TABLE)["Items"]
        fanout.reset()
    originals = {f"TENANT#{e['detail']['tenantId']}#PRODUCT#{e['detail']['productId']}": e for e in events}
    worst = min(_cosine(originals[i["PK"]["S"]]["detail"]["embedding"], embedding_codec.decode(i)) for i in items)
    transform_invocations, transform_seconds, transform_log_bytes, parquet = _transform(hooks.records)
    return Measured(
        encoding=encoding,
        sales=sales,
        event_bytes_max=max(sizes),
        event_chunks=sum(math.ceil(size / (64 * KIB)) for size in sizes) / sales,
        batch_size=batch_size,
        fanout_seconds=fanout_seconds,
        fanout_calls=dict(log.calls),
        write_units=dict(log.write_units),
        item_bytes=sum(item_size_bytes(item) for item in items) / len(items),
        record_bytes=sum(map(len, hooks.records)) / len(hooks.records),
        billed_record_bytes=sum(math.ceil(len(r) / (5 * KIB)) * 5 * KIB for r in hooks.records) / len(hooks.records),
        transform_invocations=transform_invocations,
        transform_seconds=transform_seconds,
        parquet_bytes_per_row=parquet,
        log_bytes=(fanout_log_bytes + transform_log_bytes) / sales,
        worst_cosine=worst,
    )


def _cosine(a: list[float], b: list[float]) -> float:
    dot = math.fsum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(math.fsum(x * x for x in a) * math.fsum(y * y for y in b))


def _transform(records: list[bytes]) -> tuple[int, float, int, float]:
    """(invocations, seconds, log bytes, Parquet bytes per row) of the transform over ``records``, in invocations
    of pipeline.json's processor buffer size, and of the Parquet object the rows make (one buffer, as Firehose)."""
    limit = float(pipeline_config.load()["firehose"]["processor_buffer_size_mib"]) * 1024 * 1024
    invocations: list[list[bytes]] = [[]]
    size = 0
    for record in records:
        if invocations[-1] and size + len(record) > limit:
            invocations.append([])
            size = 0
        invocations[-1].append(record)
        size += len(record)
    rows: list[bytes] = []
    seconds = 0.0
    output = io.StringIO()
    for number, chunk in enumerate(invocations):
        event = {
            "invocationId": f"cost-{number}",
            "deliveryStreamArn": f"arn:aws:firehose:{REGION}:123456789012:deliverystream/{STREAM}",
            "region": REGION,
            "records": [
                {"recordId": f"{n:0>56}", "approximateArrivalTimestamp": 1_767_000_000_000, "data": _b64(data)}
                for n, data in enumerate(chunk)
            ],
        }
        with _captured(output):
            start = time.perf_counter()
            answer = transform.lambda_handler(event, lambda_context())
            seconds += time.perf_counter() - start
        rows += [base64.b64decode(r["data"]) for r in answer["records"] if r["result"] == "Ok"]
    compression = str(pipeline_config.load()["firehose"]["parquet_compression"])
    converted = ParquetConverter(glue_schemas.sales_history(), compression).convert(rows)
    parquet = len(converted.parquet or b"") / max(converted.rows, 1)
    return len(invocations), seconds, len(output.getvalue().encode()), parquet


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def costs(m: Measured) -> list[tuple[str, str, float]]:
    """(line, quantity per million sales, USD per million sales) for each metered item."""
    million = 1_000_000
    calls = m.fanout_calls
    sqs_sends = m.event_chunks  # EventBridge's SendMessage to the buffer queue, one per 64 KB chunk
    sqs_polls = 2 / 10  # the mapping's ReceiveMessage and DeleteMessageBatch, at most 10 messages a call
    sqs_fanout = sum(count for name, count in calls.items() if name.startswith("sqs.")) / m.sales
    sqs_requests = sqs_sends + sqs_polls + sqs_fanout
    fanout_gb_s = FANOUT_MEMORY_GB * m.fanout_seconds / m.sales
    transform_gb_s = TRANSFORM_MEMORY_GB * m.transform_seconds / m.sales
    invocations = 1 / m.batch_size + m.transform_invocations / m.sales
    units = sum(m.write_units.values()) / m.sales
    billed_gb = m.billed_record_bytes / GIB
    lines = [
        ("EventBridge custom events", f"{m.event_chunks * million:,.0f} events", m.event_chunks, "eventbridge"),
        ("SQS requests (send, receive, delete)", f"{sqs_requests * million:,.0f}", sqs_requests, "sqs"),
        ("Lambda requests (fan-out, transform)", f"{invocations * million:,.0f}", invocations, "lambda_requests"),
        (
            "Lambda compute (fan-out 0.5 GB, transform 1 GB)",
            f"{(fanout_gb_s + transform_gb_s) * million:,.0f} GB-s",
            fanout_gb_s + transform_gb_s,
            "lambda_gb_second",
        ),
        ("DynamoDB write units", f"{units * million:,.0f} WRU", units, "dynamodb_write"),
        ("Firehose ingestion", f"{billed_gb * million:,.2f} GB", billed_gb, "firehose_ingest"),
        ("Firehose format conversion", f"{billed_gb * million:,.2f} GB", billed_gb, "firehose_conversion"),
        (
            "Firehose dynamic partitioning (data)",
            f"{m.parquet_bytes_per_row / GIB * million:,.2f} GB",
            m.parquet_bytes_per_row / GIB,
            "firehose_partitioning",
        ),
        ("CloudWatch Logs ingestion", f"{m.log_bytes / GIB * million:,.3f} GB", m.log_bytes / GIB, "logs"),
    ]
    return [(name, quantity, per_sale * million * PRICES[price].each) for name, quantity, per_sale, price in lines]


def table(measured: list[Measured], command: str) -> str:
    """The BENCHMARKS.md section: the cost table per encoding, what was measured, and the prices."""
    rows = [costs(m) for m in measured]
    header = " | ".join(f"{m.encoding}" for m in measured)
    lines = [
        START,
        f"Measured with `{command}` on {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work "
        "shared the machine: the Lambda durations are pessimistic); us-east-1 prices, region-independent sizes.",
        "",
        f"| per million new sales (queue path) | {header} |",
        "|---|" + "---:|" * len(measured),
    ]
    for index, (name, _, _) in enumerate(rows[0]):
        cells = " | ".join(f"{r[index][1]}: {_usd(r[index][2])}" for r in rows)
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(f"**${sum(c for _, _, c in r):.2f}**" for r in rows)
    lines.append(f"| **total** | {totals} |")
    lines += ["", f"| measured, per new sale | {header} |", "|---|" + "---:|" * len(measured)]
    lines += [f"| {label} | " + " | ".join(cell(m) for m in measured) + " |" for label, cell in _MEASURED_ROWS]
    lines += [
        "",
        "Prices (us-east-1): "
        + "; ".join(f"{name} ${p.usd:g} per {p.per} ({p.source})" for name, p in PRICES.items())
        + ".",
        END,
    ]
    return "\n".join(lines)


def _usd(value: float) -> str:
    return f"${value:.2f}" if value >= 0.01 else f"${value:.4f}"


def _units(m: Measured) -> str:
    parts = [m.write_units.get(k, 0) / m.sales for k in ("sales", "sales GSI2 copy", "idempotency")]
    return f"**{sum(parts):g}** ({' + '.join(f'{p:g}' for p in parts)})"


_MEASURED_ROWS: list[tuple[str, Callable[[Measured], str]]] = [
    ("DynamoDB write units (item + GSI2 copy + claim and completion)", _units),
    ("sales item (bytes)", lambda m: f"{m.item_bytes:,.0f}"),
    ("worst cosine, decoded item embedding vs the sale's", lambda m: f"{m.worst_cosine:.8f}"),
    ("Firehose record (bytes; billed)", lambda m: f"{m.record_bytes:,.0f}; {m.billed_record_bytes:,.0f}"),
    ("Parquet in the lake (bytes a row)", lambda m: f"{m.parquet_bytes_per_row:,.0f}"),
    ("largest event (bytes)", lambda m: f"{m.event_bytes_max:,}"),
    ("sales per fan-out invocation", lambda m: f"{m.batch_size}"),
    ("fan-out batch wall time (s)", lambda m: f"{m.fanout_seconds:.2f}"),
    ("transform invocations; seconds", lambda m: f"{m.transform_invocations}; {m.transform_seconds:.2f}"),
    ("log bytes (fan-out + transform)", lambda m: f"{m.log_bytes:,.1f}"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--encoding", action="append", choices=embedding_codec.ENCODINGS, help="repeatable; default: all three"
    )
    parser.add_argument("--sales", type=int, default=500, help="sales in the measured batch")
    parser.add_argument("--write", action="store_true", help="also rewrite the cost section of BENCHMARKS.md")
    args = parser.parse_args(argv)
    encodings = args.encoding or list(embedding_codec.ENCODINGS)
    measured = []
    for encoding in encodings:
        print(f"{encoding}: one batch of {args.sales} new sales through the fan-out and the transform ...", flush=True)
        measured.append(measure(encoding, args.sales))
    command = "python -m benchmarks.cost" + "".join(f" --encoding {e}" for e in args.encoding or [])
    section = table(measured, command + (f" --sales {args.sales}" if args.sales != 500 else ""))
    print(section)
    if args.write:
        text = BENCHMARKS_MD.read_text()
        if START in text and END in text:
            text = text[: text.index(START)] + section + text[text.index(END) + len(END) :]
        else:
            text = text.rstrip("\n") + "\n\n## Cost per million new sales (issue 19)\n\n" + section + "\n"
        BENCHMARKS_MD.write_text(text)
        print(f"\nwrote {BENCHMARKS_MD.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
