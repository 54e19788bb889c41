"""Pure sale logic: ids, keys, the DynamoDB item and the Firehose record. No AWS, no I/O.

Cost note: DynamoDB bills a write unit per started 1 KB of item, and GSI2's copy again at its projected size.
A 1024-float embedding stored as a list of Numbers is ~10-20 KB (11-21 units); as bytes it is 4 KB in float32,
2 KB in float16 and 1 KB in int8 (:mod:`pipeline_config.embedding_codec`, chosen by pipeline.json's
``dynamodb.embedding_encoding``). With the string bounds of the event schema the whole item stays within
5 KB (float32), 3 KB (float16) or 2 KB (int8) write units (see the ``worst_case`` tests). The full record,
description and image key included, lives in the lake at float32.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pipeline_config
from pipeline_config import embedding_codec, sale_record

from .schemas import sale_event_schema

#: DynamoDB's TTL horizon for a sale item.
TTL_SECONDS = 2 * 365 * 24 * 60 * 60
#: Number of GSI2 shards (``TENANT#{tenantId}#EMBEDDING#{0..n-1}``): pipeline.json's ``dynamodb.embedding_shards``.
EMBEDDING_SHARDS = pipeline_config.dynamodb_embedding_shards()
#: Length of the deterministic sale id in hex characters (80 bits).
SALE_ID_HEX_CHARS = 20
#: The Firehose record's camelCase fields beyond the event detail.
ENVELOPE_FIELDS = ("eventId", "eventTime", "saleId")

#: The detail fields the sale event schema declares (the transform ignores anything else).
FORWARDED_FIELDS = frozenset(sale_event_schema()["properties"]["detail"]["properties"])

_SEP = "\x1f"  # unit separator: cannot occur in validated ids, so field boundaries stay unambiguous


@dataclass(frozen=True)
class Sale:
    """A validated sale: the EventBridge envelope fields plus the event detail as received."""

    event_id: str
    event_time: str
    detail: dict[str, Any]

    @property
    def tenant_id(self) -> str:
        return str(self.detail["tenantId"])

    @property
    def product_id(self) -> str:
        return str(self.detail["productId"])

    @property
    def sold_date(self) -> str:
        return str(self.detail["soldDate"])

    @cached_property
    def sale_id(self) -> str:
        return sale_id(self.tenant_id, self.product_id, self.sold_date)

    @cached_property
    def shard(self) -> int:
        return embedding_shard(self.tenant_id, self.product_id)


def sale_id(tenant_id: str, product_id: str, sold_date: str) -> str:
    """Deterministic id of a sale: the same tenant, product and date always give the same id."""
    digest = hashlib.blake2b(_SEP.join((tenant_id, product_id, sold_date)).encode(), digest_size=10)
    return digest.hexdigest()


def embedding_shard(tenant_id: str, product_id: str) -> int:
    """Stable GSI2 shard (0 to ``EMBEDDING_SHARDS`` - 1) of a product. Not ``hash()``: that is salted per process."""
    digest = hashlib.blake2b(_SEP.join((tenant_id, product_id)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % EMBEDDING_SHARDS


def idempotency_key(sale: Sale) -> list[str]:
    """What makes two events the same sale: tenant, product and sale date (not the EventBridge id)."""
    return [sale.tenant_id, sale.product_id, sale.sold_date]


def sales_item(sale: Sale, now_epoch: float, encoding: str | None = None) -> dict[str, dict[str, Any]]:
    """The sales-table item in DynamoDB's attribute-value form (client API, no resource layer).

    The embedding is written in ``encoding`` (None: pipeline.json's ``dynamodb.embedding_encoding``) with the
    attributes that say how to decode it (:func:`pipeline_config.embedding_codec.decode` reads any item).
    Deterministic except for ``ttl``: a retried write rewrites the same item, so the plain put is idempotent.
    """
    detail = sale.detail
    item: dict[str, dict[str, Any]] = {
        "PK": {"S": f"TENANT#{sale.tenant_id}#PRODUCT#{sale.product_id}"},
        "SK": {"S": f"SALE#{sale.sold_date}#{sale.sale_id}"},
        "GSI2PK": {"S": f"TENANT#{sale.tenant_id}#EMBEDDING#{sale.shard}"},
        "GSI2SK": {"S": f"DATE#{sale.sold_date}"},
        "ttl": {"N": str(int(now_epoch) + TTL_SECONDS)},
        "saleId": {"S": sale.sale_id},
        "eventId": {"S": sale.event_id},
        "category": {"S": detail["category"].strip()},
        "brand": {"S": detail["brand"].strip()},
        "condition": {"S": detail["condition"].strip()},
        "listedPrice": {"N": _number(detail["listedPrice"])},
        "salePrice": {"N": _number(detail["salePrice"])},
        "daysToSell": {"N": str(int(detail["daysToSell"]))},
        **embedding_codec.encode(detail["embedding"], encoding or pipeline_config.dynamodb_embedding_encoding()),
    }
    for optional in ("vendorId", "embeddingId"):
        value = detail.get(optional)
        if value:
            item[optional] = {"S": value}
    return item


def firehose_record(sale: Sale) -> bytes:
    """The record forwarded to Firehose, in the compact form of :mod:`pipeline_config.sale_record`: the detail
    plus event id, event time and sale id, the embedding as float32 bytes (~4.5 KB for 1024 dimensions against
    ~10 KB as JSON text: Firehose's byte quota and its 5 KB billing steps both count these bytes).

    Only the schema's fields are forwarded (an unknown 200 KB field would cost Firehose ingestion and be
    dropped by the transform anyway). float32 is the lake's own precision (``array<float>``).
    """
    header = {key: value for key, value in sale.detail.items() if key in FORWARDED_FIELDS and key != "embedding"}
    header["eventId"] = sale.event_id
    header["eventTime"] = sale.event_time
    header["saleId"] = sale.sale_id
    return sale_record.encode(header, sale.detail["embedding"])


def item_size_bytes(item: dict[str, dict[str, Any]]) -> int:
    """DynamoDB's item size: attribute name bytes plus value bytes (strings UTF-8, numbers ~1 byte/2 digits)."""
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        ((kind, raw),) = value.items()
        if kind == "S":
            size += len(raw.encode())
        elif kind == "B":
            size += len(raw)
        elif kind == "N":
            size += _number_size(raw)
        else:  # pragma: no cover - the item above uses S, N and B only
            raise ValueError(f"unsupported attribute type {kind!r} for {name!r}")
    return size


def write_units(item: dict[str, dict[str, Any]]) -> int:
    """Write capacity units one put of ``item`` consumes (1 per started KB)."""
    return max(1, math.ceil(item_size_bytes(item) / 1024))


def _number_size(raw: str) -> int:
    """Bytes DynamoDB stores for a Number: digit pairs aligned on the decimal point, plus one.

    AWS documents "approximately 1 byte per two significant digits + 1"; pairing the integer and fraction
    digits separately ("1.5" -> 3 bytes, not 2) never undercounts.
    """
    integer, _, fraction = raw.lstrip("-").partition(".")
    integer, fraction = integer.lstrip("0"), fraction.rstrip("0")
    return math.ceil(len(integer) / 2) + math.ceil(len(fraction) / 2) + 1


def _number(value: float) -> str:
    # Prices are rounded to cents, as in the lake; repr keeps integers short ("450" not "450.0").
    rounded = round(float(value), 2)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)
