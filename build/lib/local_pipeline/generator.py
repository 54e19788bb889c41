"""Seeded bursts of ``carousel.product.sold`` events, or events read from a JSONL file.

A burst mixes what production sends: unique sales across several tenants with sale dates spanning a year
boundary, retried deliveries (the same EventBridge event again, same ``id``), re-published duplicates (the
same sale under a new ``id``), invalid events (each with the field that makes it invalid) and events of
another type that the rule's pattern must not deliver. Field names and bounds come from the sale event
JSON Schema the fan-out validates with, so a valid generated event is valid by construction.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy
import orjson

import pipeline_config
from fanout_lambda.schemas import sale_event_schema

__all__ = [
    "BadEventsFile",
    "BurstSpec",
    "GeneratedEvent",
    "GeneratorOutOfDateError",
    "Kind",
    "count_events",
    "events_from_file",
    "generate",
    "write_jsonl",
]

Kind = Literal["valid", "retry", "republish", "invalid", "unmatched", "file"]

TENANTS = ("carousel-labs", "north-threads", "vintage-vault", "luxe-resale")
CATEGORIES = ("handbags", "shoes", "watches", "jewellery", "outerwear", "dresses")
BRANDS = ("Louis Vuitton", "Chanel", "Hermes", "Gucci", "Prada", "Rolex", "Burberry", "Dior")
CONDITIONS = ("new", "like_new", "excellent", "good", "fair")
# Conditions realise different shares of the listed price; the dashboard shows it.
_REALISATION = {"new": 0.95, "like_new": 0.9, "excellent": 0.82, "good": 0.72, "fair": 0.6}

#: The invalid events a burst carries, each with the field the fan-out must name in its DLQ message.
INVALID_CASES: tuple[tuple[str, Callable[[dict[str, Any]], None]], ...] = (
    ("detail.listedPrice", lambda d: d.update(listedPrice=-5)),
    ("detail.soldDate", lambda d: d.update(soldDate="2025-02-30")),
    ("detail.category", lambda d: d.pop("category")),
    ("detail.tenantId", lambda d: d.update(tenantId="../other")),
    ("detail.tenantId", lambda d: d.update(tenantId="a/b")),
    ("detail.tenantId", lambda d: d.update(tenantId="x=y")),
    ("detail.embedding", lambda d: d.update(embedding=d["embedding"][:7])),
)


#: How many earlier originals a burst remembers to duplicate from: memory stays flat however long the burst.
RESERVOIR_SIZE = 256


class GeneratorOutOfDateError(RuntimeError):
    """The sale event schema gained or lost a field the generator does not produce."""


class BadEventsFile(ValueError):
    """An events file line that is not one EventBridge event (a JSON object): names the file and line."""


@dataclass(frozen=True)
class BurstSpec:
    """What to generate. Shares are fractions of ``events``; the rest are valid unique sales."""

    events: int = 3000
    seed: int = 7
    start: dt.datetime = dt.datetime(2026, 1, 15, 9, 0, tzinfo=dt.UTC)
    burst_seconds: int = 900
    retry_share: float = 0.04
    republish_share: float = 0.04
    invalid_share: float = 0.03
    unmatched_share: float = 0.01
    first_sale_date: dt.date = dt.date(2025, 7, 1)
    sale_date_days: int = 365  # July to June: two calendar years, every season
    tenants: tuple[str, ...] = TENANTS


@dataclass
class GeneratedEvent:
    """One event as the bus receives it, with what the generator meant it to be."""

    event: dict[str, Any]
    kind: Kind
    arrival_ms: int
    invalid_field: str | None = None
    of_event_id: str | None = field(default=None)  # for retries and re-publishes: the original's id


def generate(spec: BurstSpec) -> Iterator[GeneratedEvent]:
    """A deterministic burst for ``spec`` (same seed, same events), yielded in arrival order.

    Produced one event at a time: a duplicate copies an original drawn from a bounded reservoir of earlier
    sales (reservoir sampling over everything sent so far), so memory does not grow with the burst.
    """
    rng = random.Random(spec.seed)  # noqa: S311 - reproducible test data, not secrets
    pattern = pipeline_config.load()["event_pattern"]
    dimension = pipeline_config.embedding_dimension()
    kinds = _kinds(spec, rng)
    schema_fields = set(sale_event_schema()["properties"]["detail"]["properties"])
    start_ms = int(spec.start.timestamp() * 1000)
    step = spec.burst_seconds * 1000 / max(len(kinds), 1)
    reservoir: list[GeneratedEvent] = []
    originals = 0
    for index, kind in enumerate(kinds):
        arrival = start_ms + int(index * step)
        if kind in {"retry", "republish"} and reservoir:
            yield _duplicate(rng.choice(reservoir), kind, arrival, rng)
            continue
        detail = _detail(index, spec, rng, dimension)
        if set(detail) != schema_fields:
            raise GeneratorOutOfDateError(f"schema fields {sorted(schema_fields ^ set(detail))} differ")
        generated = GeneratedEvent(_envelope(detail, arrival, rng, pattern), "valid", arrival)
        if kind == "invalid":
            invalid_field, corrupt = INVALID_CASES[index % len(INVALID_CASES)]
            corrupt(generated.event["detail"])
            generated.kind, generated.invalid_field = "invalid", invalid_field
        elif kind == "unmatched":
            generated.event["detail-type"] = "carousel.product.listed"
            generated.kind = "unmatched"
        else:
            originals += 1
            if len(reservoir) < RESERVOIR_SIZE:
                reservoir.append(generated)
            else:
                slot = rng.randrange(originals)
                if slot < RESERVOIR_SIZE:
                    reservoir[slot] = generated
        yield generated


def _kinds(spec: BurstSpec, rng: random.Random) -> list[Kind]:
    shares: list[tuple[Kind, float]] = [
        ("retry", spec.retry_share),
        ("republish", spec.republish_share),
        ("invalid", spec.invalid_share),
        ("unmatched", spec.unmatched_share),
    ]
    kinds: list[Kind] = []
    for kind, share in shares:
        kinds += [kind] * round(spec.events * share)
    kinds += ["valid"] * (spec.events - len(kinds))
    # Duplicates need an original before them: keep the first tenth valid, shuffle the rest.
    head = min(len(kinds), max(1, spec.events // 10))
    valid_head: list[Kind] = ["valid"] * head
    rest = kinds[: len(kinds) - head]
    rng.shuffle(rest)
    return valid_head + rest


def _detail(index: int, spec: BurstSpec, rng: random.Random, dimension: int) -> dict[str, Any]:
    tenant = spec.tenants[index % len(spec.tenants)]
    condition = rng.choice(CONDITIONS)
    listed = round(rng.uniform(40, 4000), 2)
    sale = round(listed * _REALISATION[condition] * rng.uniform(0.85, 1.1), 2)
    sold = spec.first_sale_date + dt.timedelta(days=rng.randrange(spec.sale_date_days))
    product = f"PROD-{index:07d}"
    return {
        "productId": product,
        "tenantId": tenant,
        "category": rng.choice(CATEGORIES),
        "brand": rng.choice(BRANDS),
        "condition": condition,
        "listedPrice": listed,
        "salePrice": sale,
        "soldDate": sold.isoformat(),
        "daysToSell": rng.randrange(0, 180),
        "imageS3Key": f"s3://carousel-images/{tenant}/{product}.jpg",
        "embeddingId": f"emb-{product.lower()}",
        "embedding": _embedding(rng, dimension),
        "description": f"{rng.choice(BRANDS)} item {index}",
        "vendorId": f"VENDOR-{rng.randrange(1, 400):03d}",
    }


def _embedding(rng: random.Random, dimension: int) -> list[float]:
    """``dimension`` values in [-1, 1] with six decimals, from one draw of random bytes (a per-value
    ``rng.uniform`` made generating a 1024-float embedding the slowest part of a run).

    Each 32-bit word ``w`` (native byte order) becomes ``(w % 2,000,001 - 1,000,000) / 1,000,000``, computed
    over the whole array at once: the same correctly rounded doubles as Python's ``int / int``, in a third of
    the time of a per-value loop (0.05 ms an embedding against 0.10 ms).
    """
    words = numpy.frombuffer(rng.randbytes(4 * dimension), dtype=numpy.uint32).astype(numpy.int64)
    values: list[float] = ((words % 2_000_001 - 1_000_000) / 1_000_000).tolist()
    return values


def _envelope(detail: dict[str, Any], arrival_ms: int, rng: random.Random, pattern: dict[str, Any]) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(arrival_ms / 1000, dt.UTC)
    return {
        "version": "0",
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "detail-type": pattern["detail-type"][0],
        "source": pattern["source"][0],
        "account": "123456789012",
        "time": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    }


def _duplicate(original: GeneratedEvent, kind: Kind, arrival_ms: int, rng: random.Random) -> GeneratedEvent:
    event = orjson.loads(orjson.dumps(original.event))  # a deep copy, ~20x faster than copy.deepcopy
    if kind == "republish":
        event["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        event["time"] = dt.datetime.fromtimestamp(arrival_ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return GeneratedEvent(event, kind, arrival_ms, of_event_id=original.event["id"])


def count_events(path: Path) -> int:
    """Check every non-blank line of a JSONL events file is a JSON object; return how many there are.

    A first pass over the file, so bad input is reported (with its line number) before anything is created,
    and so the events can then be streamed evenly over the burst window without holding them in memory.
    """
    count = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                _parse_line(path, number, line)
                count += 1
    return count


def events_from_file(
    path: Path, *, start: dt.datetime, burst_seconds: int, total: int | None = None
) -> Iterator[GeneratedEvent]:
    """Events from a JSONL file (one EventBridge event per line), spread evenly over the burst window.

    ``total`` is the number of events (from :func:`count_events`); without it the file is counted first.
    """
    count = count_events(path) if total is None else total
    start_ms = int(start.timestamp() * 1000)
    step = burst_seconds * 1000 / max(count, 1)
    index = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            yield GeneratedEvent(_parse_line(path, number, line), "file", start_ms + int(index * step))
            index += 1


def _parse_line(path: Path, number: int, line: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise BadEventsFile(f"{path}:{number}: not a JSON event: {exc}") from exc
    if not isinstance(event, dict):
        raise BadEventsFile(
            f"{path}:{number}: not an event: a JSON {_JSON_TYPES.get(type(event), 'value')} where an EventBridge "
            "event object was expected"
        )
    return event


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def write_jsonl(events: Iterator[GeneratedEvent], target: IO[bytes]) -> int:
    """Write each event as one JSON line (the file ``run --events`` and ``send`` read); return the count."""
    count = 0
    for generated in events:
        target.write(orjson.dumps(generated.event) + b"\n")
        count += 1
    return count
