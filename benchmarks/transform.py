"""Transform throughput: the handler beside the classic blueprint and the orjson floor, in one run."""

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


def sale_record(rng: random.Random, n: int, dimension: int) -> bytes:
    """A realistic fan-out record: float32 embedding values as Python floats (17-digit reprs, ~20 KB)."""
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
    return orjson.dumps(body) + b"\n"


def firehose_batch(buffer_mib: float, dimension: int, seed: int = 7) -> dict[str, Any]:
    """As many records as one processor-buffer-sized invocation carries."""
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    size = 0
    while size < buffer_mib * 1024 * 1024:
        data = sale_record(rng, len(records), dimension)
        size += len(data)
        records.append(
            {
                "recordId": f"{len(records):0>56}",
                "approximateArrivalTimestamp": 1_767_000_000_000,
                "data": base64.b64encode(data).decode(),
            }
        )
    return {"invocationId": "bench", "deliveryStreamArn": "arn", "region": "eu-west-1", "records": records}


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


def measure(approaches: dict[str, Approach], event: dict[str, Any], rounds: int) -> list[Throughput]:
    """Interleave the approaches round by round (fair under machine noise); report the median round."""
    n = len(event["records"])
    raw_bytes = sum(len(base64.b64decode(r["data"])) for r in event["records"])
    timings: dict[str, list[float]] = {name: [] for name in approaches}
    for _ in range(rounds):
        for name, approach in approaches.items():
            start = time.perf_counter()
            result = approach(event)
            timings[name].append(time.perf_counter() - start)
            assert len(result["records"]) == n
    return [
        Throughput(name, n / statistics.median(t), raw_bytes / statistics.median(t) / 1e6)
        for name, t in timings.items()
    ]


def run(rounds: int = 30) -> tuple[dict[str, Any], list[Throughput]]:
    """Benchmark on one processor-buffer batch of the configured size and dimension."""
    logging.getLogger("sales-transform").setLevel(logging.WARNING)  # per-batch INFO line off, as at LOG_LEVEL=WARNING
    config = pipeline_config.load()
    event = firehose_batch(config["firehose"]["processor_buffer_size_mib"], config["embedding_dimension"])
    results = measure({"blueprint": blueprint, "floor": floor, "handler": handler}, event, rounds)
    return event, results
