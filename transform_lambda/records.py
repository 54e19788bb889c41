"""Pure record logic of the transform: normalise one sale to the lake row and its partition keys.

Driven by ``glue_schemas/sales_history.json``: the output keys are exactly its data columns, each value
converted to the column's type. No AWS, no base64, no I/O.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline_config import EMBEDDING_VALUE_LIMIT

Converter = Callable[[Any], Any]

_MISSING: Any = object()
_CAMEL_BOUNDARY = re.compile(r"_([a-z0-9])")
_DATE = re.compile(r"^([0-9]{4})-([0-9]{2})-([0-9]{2})")
_CONDITION_SEPARATORS = re.compile(r"[\s-]+")
#: Columns whose values are lower-cased so dashboards do not split "Handbags" from "handbags".
_LOWERCASE_COLUMNS = frozenset({"category", "condition"})
#: Below this hypot() of the embedding, every item is certainly within EMBEDDING_VALUE_LIMIT (3.4e38).
_SURELY_INSIDE_FLOAT32 = 1e38
_OUTSIDE_FLOAT32 = f"items must be within +/-{EMBEDDING_VALUE_LIMIT!r} (float32's finite range)"
#: Columns computed from the (already validated) sale date, never converted again from the input.
_FROM_SOLD_DATE = frozenset({"season", "sold_date"})


class _BadValue(ValueError):
    """A value that does not fit its column; the caller names the field."""


class RecordRejected(ValueError):
    """The record cannot be normalised; it goes back to Firehose as ``ProcessingFailed``."""

    def __init__(self, field: str, reason: str, value: Any = _MISSING) -> None:
        self.field = field
        self.reason = reason
        shown = "" if value is _MISSING else f" (got {_preview(value)})"
        super().__init__(f"{field}: {reason}{shown}")


@dataclass(frozen=True)
class Column:
    """One data column and how to read it from a record."""

    name: str
    keys: tuple[str, ...]
    required: bool
    convert: Converter


def season(sold: dt.date) -> str:
    """Calendar quarter of a date: ``Q1`` (Jan-Mar) to ``Q4`` (Oct-Dec)."""
    return f"Q{(sold.month - 1) // 3 + 1}"


def camel_case(snake: str) -> str:
    """``image_s3_key`` -> ``imageS3Key``: the fan-out's field names."""
    return _CAMEL_BOUNDARY.sub(lambda match: match.group(1).upper(), snake)


class SaleNormaliser:
    """Normalises sale records to the lake table's columns; one instance per container."""

    def __init__(self, table: Mapping[str, Any], embedding_dimension: int, tenant_id_pattern: str) -> None:
        self.embedding_dimension = embedding_dimension
        self._tenant_id = re.compile(tenant_id_pattern)
        self._tenant_keys = ("tenantId", "tenant_id")
        self.columns = tuple(
            Column(
                name=column["name"],
                keys=tuple(dict.fromkeys((camel_case(column["name"]), column["name"]))),
                required=bool(column.get("required", False)),
                convert=self._converter(column["name"], column["type"]),
            )
            for column in table["columns"]
        )
        self.column_names = tuple(column["name"] for column in table["columns"])
        # A compact record's embedding is read from float32 bytes: floats by construction, so only its length and
        # finiteness (NaN or infinity bytes) are left to check.
        compact_columns = tuple(
            Column(c.name, c.keys, c.required, self._float32_embedding) if c.convert == self._embedding else c
            for c in self.columns
        )
        # What the per-record loop reads, as flat tuples (unpacked in one step, no attribute lookups: the loop
        # runs 17 times a record and was a third of the transform's own time).
        self._plan = tuple(_step(c) for c in self.columns)
        self._compact_plan = tuple(_step(c) for c in compact_columns)

    def normalise(self, record: Any, *, float32_embedding: bool = False) -> tuple[dict[str, Any], dict[str, str]]:
        """Return ``(row, partition_keys)`` or raise :class:`RecordRejected` naming the field.
        ``float32_embedding``: the embedding was decoded from float32 bytes (a compact record)."""
        if not isinstance(record, dict):
            raise RecordRejected("record", "must be a JSON object", type(record).__name__)
        tenant_id = self._tenant(record)
        sold = self._sold_date(record)
        row: dict[str, Any] = {}
        for name, key, alternatives, required, convert in self._compact_plan if float32_embedding else self._plan:
            if convert is None:  # computed from the sale date
                row[name] = season(sold) if name == "season" else sold.isoformat()
                continue
            value = record.get(key, _MISSING)
            if value is _MISSING:
                value = _lookup(record, alternatives)
            if value is _MISSING or value is None:
                if required:
                    raise RecordRejected(key, "is required")
                row[name] = None
                continue
            try:
                converted = convert(value)
            except _BadValue as exc:
                raise RecordRejected(key, str(exc), value) from None
            if converted is None and required:
                raise RecordRejected(key, "must not be blank", value)
            row[name] = converted
        keys = {"tenant_id": tenant_id, "year": f"{sold.year:04d}", "month": f"{sold.month:02d}"}
        return row, keys

    def _tenant(self, record: dict[str, Any]) -> str:
        value = _lookup(record, self._tenant_keys)
        if value is _MISSING:
            raise RecordRejected("tenantId", "is required")
        if not isinstance(value, str) or not self._tenant_id.fullmatch(value):
            # The tenant id becomes an S3 prefix: anything outside the pattern could escape its partition.
            raise RecordRejected("tenantId", f"must match {self._tenant_id.pattern}", value)
        return value

    @staticmethod
    def _sold_date(record: dict[str, Any]) -> dt.date:
        value = _lookup(record, ("soldDate", "sold_date"))
        if value is _MISSING or value is None:
            raise RecordRejected("soldDate", "is required")
        try:
            return _to_date(value)
        except _BadValue as exc:
            raise RecordRejected("soldDate", str(exc), value) from None

    def _converter(self, name: str, glue_type: str) -> Converter:
        if glue_type == "string":
            if name == "condition":
                return _condition
            return _lower_string if name in _LOWERCASE_COLUMNS else _string
        simple: dict[str, Converter] = {
            "double": _cents,
            "int": _non_negative_int,
            "date": lambda value: _to_date(value).isoformat(),
            "timestamp": _timestamp,
            "array<float>": self._embedding,
        }
        if glue_type not in simple:
            raise ValueError(f"column {name!r}: Glue type {glue_type!r} has no converter")
        return simple[glue_type]

    def _embedding(self, value: Any) -> list[float]:
        if type(value) is not list:
            raise _BadValue("must be an array of numbers")
        if len(value) != self.embedding_dimension:
            raise _BadValue(f"must have {self.embedding_dimension} items, has {len(value)}")
        # The fan-out always sends floats: confirm with one C-speed pass (twice as fast as set(map(type, ...))).
        items: list[float] = value
        if list(map(type, items)).count(float) != len(items):
            if not set(map(type, items)) <= {float, int}:
                raise _BadValue("items must be numbers")
            try:
                items = [float(x) for x in items]
            except OverflowError:
                raise _BadValue(_OUTSIDE_FLOAT32) from None
        # Every item within float32's finite range (Parquet would store a larger one as infinity). hypot() is one
        # C pass (~3 us for 1024 floats, a fifth of max() and min()) and never less than the largest |item| by
        # more than a rounding error: far below the bound, every item is inside it; only near or above it are
        # the items compared exactly, the rule the fan-out's schema applies.
        if not math.hypot(*items) < _SURELY_INSIDE_FLOAT32 and (
            max(items) > EMBEDDING_VALUE_LIMIT or min(items) < -EMBEDDING_VALUE_LIMIT
        ):
            raise _BadValue(_OUTSIDE_FLOAT32)
        return items

    def _float32_embedding(self, value: Any) -> list[float]:
        # Floats read from float32 bytes: finite ones are within float32's range by construction, and hypot()
        # is infinity or NaN exactly when one of them is (one C pass).
        if len(value) != self.embedding_dimension:
            raise _BadValue(f"must have {self.embedding_dimension} items, has {len(value)}")
        if not math.isfinite(math.hypot(*value)):
            raise _BadValue("items must be finite numbers (the record holds NaN or infinity)")
        items: list[float] = value
        return items


def _step(column: Column) -> tuple[str, str, tuple[str, ...], bool, Converter | None]:
    """A column as the loop reads it; no converter for the columns computed from the sale date."""
    convert = None if column.name in _FROM_SOLD_DATE else column.convert
    return column.name, column.keys[0], column.keys, column.required, convert


def _lookup(record: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = record.get(key, _MISSING)
        if value is not _MISSING:
            return value
    return _MISSING


def _string(value: Any) -> str | None:
    if type(value) is not str:
        raise _BadValue("must be a string")
    return value.strip() or None


def _lower_string(value: Any) -> str | None:
    text = _string(value)
    return text.lower() if text else text


def _condition(value: Any) -> str | None:
    text = _lower_string(value)
    return _CONDITION_SEPARATORS.sub("_", text) if text else text


def _cents(value: Any) -> float:
    # bool is an int subclass; JSON true is not a price. orjson never yields NaN/Infinity.
    if type(value) not in (int, float):
        raise _BadValue("must be a number")
    if value < 0:
        raise _BadValue("must not be negative")
    return round(float(value), 2)


#: Largest value of a Glue ``int`` column (32-bit signed).
_INT32_MAX = 2**31 - 1


def _non_negative_int(value: Any) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise _BadValue("must be an integer")
    if value < 0:
        raise _BadValue("must not be negative")
    if value > _INT32_MAX:  # the Glue column is int (32-bit): Parquet conversion would fail the record
        raise _BadValue(f"must be at most {_INT32_MAX}")
    return value


def _to_date(value: Any) -> dt.date:
    match = _DATE.match(value) if type(value) is str else None
    # A bare date, or the date part of a whole ISO timestamp ("2025-12-30T10:00:00Z").
    if match is None or (len(value) > 10 and not _is_iso_timestamp(value)):
        raise _BadValue("must be an ISO date YYYY-MM-DD")
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise _BadValue("is not a calendar date") from None


def _is_iso_timestamp(value: str) -> bool:
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _timestamp(value: Any) -> str:
    """ISO 8601 (or epoch seconds/millis) -> ``yyyy-MM-dd HH:mm:ss.SSS`` UTC, a format the OpenX SerDe reads."""
    if type(value) in (int, float):
        seconds = value / 1000 if value > 10**11 else value
        moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    elif type(value) is str:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise _BadValue("must be an ISO 8601 timestamp") from None
        if len(value) == 20 and value[19] == "Z":
            # EventBridge's own form, yyyy-MM-ddTHH:mm:ssZ (already UTC, validated above): slicing is the same
            # result as the general path below at a third of its cost, which keeps the transform near the floor.
            return f"{value[:10]} {value[11:19]}.000"
        moment = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    else:
        raise _BadValue("must be an ISO 8601 timestamp")
    # The year formatted by hand: glibc's strftime("%Y") does not zero-pad years below 1000 ("27-06-17 ..."),
    # which no Hive timestamp reader accepts.
    return f"{moment.year:04d}-" + moment.strftime("%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _preview(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
