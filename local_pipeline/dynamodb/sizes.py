"""An item's size and its write units, by DynamoDB's sizing rules, and what a GSI holds of it.

"Item sizes and formats" (Amazon DynamoDB Developer Guide, CapacityUnitCalculations.html): an item's size is the
sum of its attribute names' and values' sizes. Strings and names: UTF-8 bytes. Numbers: about one byte per two
significant digits, plus one (leading and trailing zeros are not significant). Binary: its bytes. Boolean and
null: one byte. A list or map: 3 bytes, plus each element's size and one byte per element. A set: its elements'
sizes.

A write unit covers one started KB (:data:`~local_pipeline.dynamodb.limits.WRITE_UNIT_BYTES`). A GSI write is
sized as the index entry: the table's key attributes, the index's key attributes and the projected attributes
("Provisioned throughput considerations for Global Secondary Indexes", GSI.html#GSI.ThroughputConsiderations;
the 100 bytes of overhead that page adds per index item are for storage, not write units).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from local_pipeline.dynamodb.limits import WRITE_UNIT_BYTES

__all__ = ["attribute_size", "item_size", "number_size", "project", "write_units"]

Item = Mapping[str, Mapping[str, Any]]


def number_size(text: str) -> int:
    """Bytes of a Number: one per two significant digits, plus one."""
    mantissa = text.strip().lstrip("+-").lower().partition("e")[0]
    digits = mantissa.replace(".", "").strip("0")
    return math.ceil(len(digits) / 2) + 1


def attribute_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in the client's form (``{"S": ...}``, ``{"N": ...}``, ...)."""
    ((kind, raw),) = value.items()
    sizer = _SIZERS.get(kind)
    if sizer is None:
        raise ValueError(f"unknown DynamoDB attribute type {kind!r}")
    return sizer(raw)


def _binary(raw: Any) -> int:
    return len(raw if isinstance(raw, bytes | bytearray) else str(raw).encode())


_SIZERS: dict[str, Callable[[Any], int]] = {
    "S": lambda raw: len(str(raw).encode()),
    "N": lambda raw: number_size(str(raw)),
    "B": _binary,
    "BOOL": lambda raw: 1,
    "NULL": lambda raw: 1,
    "SS": lambda raw: sum(len(str(element).encode()) for element in raw),
    "NS": lambda raw: sum(number_size(str(element)) for element in raw),
    "BS": lambda raw: sum(_binary(element) for element in raw),
    "L": lambda raw: 3 + sum(attribute_size(element) + 1 for element in raw),
    "M": lambda raw: 3 + sum(len(name.encode()) + attribute_size(element) + 1 for name, element in raw.items()),
}


def item_size(item: Item) -> int:
    """An item's size in bytes: every attribute's name and value."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def write_units(size: int) -> int:
    """Write units of one write of an item of ``size`` bytes: one per started KB, at least one."""
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def project(item: Item, names: Iterable[str] | None) -> dict[str, Mapping[str, Any]]:
    """What an index holds of ``item``: the attributes ``names`` (None: all of them, projection ``ALL``)."""
    if names is None:
        return dict(item)
    return {name: item[name] for name in names if name in item}
