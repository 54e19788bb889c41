"""Transform throughput: the handler beside the classic blueprint and the orjson floor, in one run.

The records are the fan-out's: compact (``pipeline_config.sale_record``: the embedding as float32 bytes), and the
same sales as JSON (records put before the compact form, reprocessed error records, other producers). Each form
has its floor, the least any transform must do with it: base64-decode, parse (orjson; for the compact form the
header with orjson and the float32 values with ``array``), serialise with orjson, base64-encode, nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

import pipeline_config
from pipeline_config import sale_record as wire
from transform_lambda import handler as transform

Approach = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Throughput:
    name: str
    records_per_second: float
    mb_per_second: float


class _Context:
    function_name = "bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    memory_limit_in_mb = 1024
    aws_request_id = "bench"


def sale_record(rng: random.Random, n: int, dimension: int, *, compact: bool = False) -> bytes:
    """A realistic fan-out record: float32 embedding values (as JSON: 17-digit reprs, ~20 KB; compact: ~4.5 KB)."""
    embedding = [struct.unpack("f", struct.pack("f", rng.uniform(-1, 1)))[0] for _ in range(dimension)]
    body = {
        "productId": f"PROD-{n:06d}",
        "tenantId": rng.choice(["carousel-labs", "resale-co", "vintage-hub"]),
        "category": rng.choice(["handbags", "shoes", "watches"]),
        "brand": rng.choice(["Louis Vuitton", "Gucci", "Hermes"]),
        "condition": rng.choice(["like_new", "good", "fair"]),
        "listedPrice": round(rng.uniform(50, 5000), 2),
        "salePrice": round(rng.uniform(40, 4500), 2),
        "soldDate": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "imageS3Key": f"s3://carousel-images/products/PROD-{n:06d}.jpg",
        "embeddingId": f"emb-{n:06d}",
        "embedding": embedding,
        "description": "Pre-owned item in great condition",
        "vendorId": f"VENDOR-{n % 97}",
        "daysToSell": rng.randint(0, 120),
        "eventId": f"00000000-0000-4000-8000-{n:012d}",
        "eventTime": "2025-12-30T10:15:00Z",
        "saleId": f"{n:020x}",
    }
    if compact:
        return wire.encode({k: v for k, v in body.items() if k != "embedding"}, embedding)
    return orjson.dumps(body) + b"\n"


def firehose_batch(buffer_mib: float, dimension: int, seed: int = 7, *, compact: bool = False) -> dict[str, Any]:
    """As many records as one processor-buffer-sized invocation carries."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    size = 0
    while size < buffer_mib * 1024 * 1024:
        data = sale_record(rng, len(records), dimension, compact=compact)
        size += len(data)
        records.append(
            {
                "recordId": f"{len(records):0>56}",
                "approximateArrivalTimestamp": 1_767_000_000_000,
                "data": base64.b64encode(data).decode(),
            }
        )
    return {"invocationId": "bench", "deliveryStreamArn": "arn", "region": "eu-west-1", "records": records}


def same_sales_as_json(event: dict[str, Any]) -> dict[str, Any]:
    """``event`` with each compact record replaced by its JSON form (the same sales, the same float32 values)."""
    records = [
        dict(r, data=base64.b64encode(orjson.dumps(wire.decode(base64.b64decode(r["data"]))) + b"\n").decode())
        for r in event["records"]
    ]
    return dict(event, records=records)


def blueprint(event: dict[str, Any]) -> dict[str, Any]:
    """The classic Firehose Python blueprint: stdlib json and base64 per record, with the same output shape."""
    output = []
    for record in event["records"]:
        payload = json.loads(base64.b64decode(record["data"]))
        row = {_snake(key): value for key, value in payload.items() if key != "tenantId"}
        year, month, _ = payload["soldDate"].split("-")
        row["season"] = f"Q{(int(month) - 1) // 3 + 1}"
        data = base64.b64encode((json.dumps(row) + "\n").encode()).decode()
        keys = {"tenant_id": payload["tenantId"], "year": year, "month": month}
        output.append(
            {"recordId": record["recordId"], "result": "Ok", "data": data, "metadata": {"partitionKeys": keys}}
        )
    return {"records": output}


def floor_compact(event: dict[str, Any]) -> dict[str, Any]:
    """The least any transform must do with compact records: base64-decode, read the header (orjson) and the
    float32 values (``array``), serialise with orjson, base64-encode, nothing else."""
    return {
        "records": [
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": binascii.b2a_base64(
                    orjson.dumps(wire.decode(binascii.a2b_base64(record["data"]))), newline=False
                ).decode(),
            }
            for record in event["records"]
        ]
    }


def floor(event: dict[str, Any]) -> dict[str, Any]:
    """The least any transform must do: base64-decode, parse, serialise, base64-encode (orjson), no other work."""
    return {
        "records": [
            {
                "recordId": record["recordId"],
                "result": "Ok",
                "data": binascii.b2a_base64(
                    orjson.dumps(orjson.loads(binascii.a2b_base64(record["data"]))), newline=False
                ).decode(),
            }
            for record in event["records"]
        ]
    }


def handler(event: dict[str, Any]) -> dict[str, Any]:
    # Powertools' log_metrics decorator leaves the handler typed loosely; the result is the Firehose response.
    result: dict[str, Any] = transform.lambda_handler(event, _Context())
    return result


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def measure(approaches: dict[str, tuple[Approach, dict[str, Any]]], rounds: int) -> list[Throughput]:
    """Interleave the approaches (each with its input) round by round, fair under machine noise; report the
    median round. MB/s count each approach's own input bytes."""
    timings: dict[str, list[float]] = {name: [] for name in approaches}
    for _ in range(rounds):
        for name, (approach, event) in approaches.items():
            start = time.perf_counter()
            result = approach(event)
            timings[name].append(time.perf_counter() - start)
            assert len(result["records"]) == len(event["records"])
    results = []
    for name, t in timings.items():
        event = approaches[name][1]
        raw_bytes = sum(len(base64.b64decode(r["data"])) for r in event["records"])
        median = statistics.median(t)
        results.append(Throughput(name, len(event["records"]) / median, raw_bytes / median / 1e6))
    return results


def run(rounds: int = 30) -> tuple[dict[str, Any], list[Throughput]]:
    """Benchmark on one processor-buffer batch of the configured size and dimension, in the fan-out's compact
    form, and on the same sales as JSON."""
    logging.getLogger("sales-transform").setLevel(logging.WARNING)  # per-batch INFO line off, as at LOG_LEVEL=WARNING
    config = pipeline_config.load()
    compact = firehose_batch(
        config["firehose"]["processor_buffer_size_mib"], config["embedding_dimension"], compact=True
    )
    as_json = same_sales_as_json(compact)
    results = measure(
        {
            "blueprint (JSON)": (blueprint, as_json),
            "floor (JSON)": (floor, as_json),
            "handler (JSON)": (handler, as_json),
            "floor (compact)": (floor_compact, compact),
            "handler (compact)": (handler, compact),
        },
        rounds,
    )
    return compact, results
