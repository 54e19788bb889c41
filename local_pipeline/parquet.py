"""JSON records to Parquet, driven by the Glue table schema, with the OpenX JSON SerDe's rules.

What Firehose's record format conversion does and this module reproduces:
- keys match columns case-insensitively (OpenX ``case_insensitive`` defaults to true); unknown keys are ignored
  and a missing key is a null;
- a value that does not fit its column's type fails the whole record, which Firehose then writes under the
  error prefix as ``format-conversion-failed``; its neighbours are converted normally;
- timestamps are accepted as ``yyyy-MM-dd'T'HH:mm:ss[.S]Z``, ``yyyy-MM-dd HH:mm:ss[.S]`` or epoch seconds/millis.

The Parquet file keeps one large row group and does not dictionary-encode the embedding column: random
floats do not repeat, so a dictionary only adds size (REFERENCE.md measured ~50% growth on small files).
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline_config import EMBEDDING_VALUE_LIMIT

__all__ = ["ConversionFailure", "Converted", "ParquetConverter", "arrow_schema", "arrow_type"]

#: Error code Firehose writes for records that do not match the table schema.
MALFORMED_DATA = "DataFormatConversion.MalformedData"

_INT32 = (-(2**31), 2**31 - 1)
#: ``yyyy-MM-dd'T'HH:mm:ss[.S][Z]`` and Hive's ``yyyy-[M]M-[d]d HH:mm:ss[.S]`` (one-digit month and day allowed).
_TIMESTAMP = re.compile(
    r"^(?P<y>\d{4})-(?:(?P<M>\d{2})-(?P<d>\d{2})T|(?P<sM>\d{1,2})-(?P<sd>\d{1,2}) )"
    r"(?P<H>\d{2}):(?P<m>\d{2}):(?P<s>\d{2})(?P<f>\.\d{1,9})?Z?$"
)
_EPOCH_MILLIS_THRESHOLD = 10**11  # larger magnitudes are milliseconds (year 5138 in seconds)

_SCALAR_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "double": pa.float64(),
    "float": pa.float32(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "boolean": pa.bool_(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
}
_ARRAY = re.compile(r"^array<(\w+)>$")


def arrow_type(glue_type: str) -> pa.DataType:
    """The Arrow type Firehose's Parquet serializer writes for a Glue/Hive column type."""
    found = _ARRAY.match(glue_type)
    if found:
        return pa.list_(arrow_type(found.group(1)))
    try:
        return _SCALAR_TYPES[glue_type]
    except KeyError:
        raise ValueError(f"Glue type {glue_type!r} is not supported by the local Parquet writer") from None


def arrow_schema(glue_table: Mapping[str, Any]) -> pa.Schema:
    """The Arrow schema of the data columns of a Glue table declaration (partition keys live in the path)."""
    return pa.schema([pa.field(col["name"], arrow_type(col["type"]), nullable=True) for col in glue_table["columns"]])


@dataclass(frozen=True)
class ConversionFailure:
    """One record that could not be converted, and why."""

    index: int
    error_code: str
    message: str


@dataclass(frozen=True)
class Converted:
    """The outcome of converting one buffer: a Parquet body (or None if no row survived) and the failures."""

    parquet: bytes | None
    rows: int
    failures: list[ConversionFailure]


class _MisfitError(ValueError):
    pass


class ParquetConverter:
    """Converts newline-delimited JSON records to one Parquet object per buffer, as Firehose does."""

    def __init__(self, glue_table: Mapping[str, Any], compression: str = "SNAPPY") -> None:
        self.schema = arrow_schema(glue_table)
        self.compression = compression.lower() if compression.upper() != "UNCOMPRESSED" else "none"
        self._columns = [(col["name"], _coercer(col["type"])) for col in glue_table["columns"]]
        self._by_lower = {name.lower(): i for i, (name, _) in enumerate(self._columns)}
        self._no_dictionary = {f.name for f in self.schema if pa.types.is_list(f.type)}

    def convert(self, records: Sequence[bytes]) -> Converted:
        """Convert the records of one buffer; failing records are reported, never dropped silently."""
        rows, failures = self.rows(records)
        if not rows:
            return Converted(None, 0, failures)
        return Converted(self.to_parquet(rows), len(rows), failures)

    def rows(self, records: Sequence[bytes]) -> tuple[list[list[Any]], list[ConversionFailure]]:
        """The rows of a buffer's records (column order) and the records that do not fit the schema."""
        rows: list[list[Any]] = []
        failures: list[ConversionFailure] = []
        for index, data in enumerate(records):
            try:
                # A list, not a generator: a record whose second object fails must leave no row behind.
                rows.extend([self.row_values(obj) for obj in _json_objects(data)])
            except _MisfitError as exc:
                failures.append(ConversionFailure(index, MALFORMED_DATA, str(exc)))
        return rows, failures

    def row_values(self, obj: Mapping[str, Any]) -> list[Any]:
        """One row in column order; raise :class:`_MisfitError` naming the column whose value does not fit."""
        values: list[Any] = [None] * len(self._columns)
        for key, raw in obj.items():
            position = self._by_lower.get(key.lower())
            if position is None or raw is None:
                continue
            name, coerce = self._columns[position]
            try:
                values[position] = coerce(raw)
            except (TypeError, ValueError, OverflowError) as exc:
                raise _MisfitError(f"column {name!r}: {exc}") from exc
        return values

    def to_arrow(self, rows: Sequence[Sequence[Any]]) -> pa.Table:
        """Rows (column order of the schema) as an Arrow table of the schema."""
        arrays = [pa.array([row[i] for row in rows], type=field.type) for i, field in enumerate(self.schema)]
        return pa.Table.from_arrays(arrays, schema=self.schema)

    def to_parquet(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Serialise rows (column order of the schema) as one Parquet object with a single row group."""
        table = self.to_arrow(rows)
        sink = io.BytesIO()
        pq.write_table(
            table,
            sink,
            compression=self.compression,
            use_dictionary=[f.name for f in self.schema if f.name not in self._no_dictionary],
            row_group_size=max(len(rows), 1),
        )
        return sink.getvalue()


def _json_objects(data: bytes) -> Iterable[Mapping[str, Any]]:
    """Every JSON object of a record, as Firehose's deserializer reads them: one object, objects one per line,
    objects concatenated with nothing between them (``{"a":1}{"b":1}``) or spread over several lines."""
    try:
        single = orjson.loads(data)  # the common case, one object per record: the fast parser
    except orjson.JSONDecodeError:
        objects = _concatenated_json(data)
    else:
        objects = [single]
    if not objects:
        raise _MisfitError("record holds no JSON object")
    for obj in objects:
        if not isinstance(obj, dict):
            raise _MisfitError(f"expected a JSON object, got {type(obj).__name__}")
        yield obj


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_JSON_WHITESPACE = " \t\n\r"


def _concatenated_json(data: bytes) -> list[Any]:
    """Decode back-to-back JSON values, skipping the whitespace between them."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _MisfitError(f"not UTF-8 JSON: {exc}") from exc
    values: list[Any] = []
    position = 0
    while True:
        while position < len(text) and text[position] in _JSON_WHITESPACE:
            position += 1
        if position == len(text):
            return values
        try:
            value, position = _DECODER.raw_decode(text, position)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError, as is a rejected NaN
            raise _MisfitError(f"not JSON: {exc}") from exc
        values.append(value)


def _coercer(glue_type: str) -> Callable[[Any], Any]:
    found = _ARRAY.match(glue_type)
    if found:
        element = _coercer(found.group(1))

        def array(value: Any) -> list[Any]:
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            if element is _float and _plain_floats(value):
                return value  # the common case (an embedding), checked in C-speed passes instead of per item
            return [None if item is None else element(item) for item in value]

        return array
    try:
        return _SCALAR_COERCERS[glue_type]
    except KeyError:
        raise ValueError(f"Glue type {glue_type!r} is not supported by the local Parquet writer") from None


def _string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _double(value: Any) -> float:
    return _number(value)


def _float(value: Any) -> float:
    number = _number(value)
    if abs(number) > EMBEDDING_VALUE_LIMIT:
        raise OverflowError(f"{value!r} does not fit a float")
    return number


def _plain_floats(values: list[Any]) -> bool:
    """Whether every item is a finite int or float that fits a float32: then each item would coerce to itself.

    Equivalent to applying :func:`_float` to each item without an error (bool, None and strings take the slow
    path), in a few whole-list passes: ~50x faster on a 1024-float embedding.
    """
    if not set(map(type, values)) <= {float, int}:
        return False
    try:
        finite = math.isfinite(math.fsum(values))
    except OverflowError:  # finite items whose exact sum leaves the double range: too large for float32 anyway
        return False
    return finite and (not values or max(map(abs, values)) <= EMBEDDING_VALUE_LIMIT)


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def coerce(value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError("expected an integer, got a boolean")
        if isinstance(value, str):
            value = int(value.strip())
        if isinstance(value, float):
            if not value.is_integer():
                raise ValueError(f"{value!r} is not an integer")
            value = int(value)
        if not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        if not low <= value <= high:
            raise OverflowError(f"{value} is out of range [{low}, {high}]")
        return value

    return coerce


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise TypeError(f"expected a boolean, got {value!r}")


def _date(value: Any) -> date:
    if not isinstance(value, str):
        raise TypeError(f"expected a date string yyyy-MM-dd, got {type(value).__name__}")
    return date.fromisoformat(value.strip()[:10]) if len(value.strip()) == 10 else _bad_date(value)


def _bad_date(value: str) -> date:
    raise ValueError(f"{value!r} is not a date yyyy-MM-dd")


def _timestamp(value: Any) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value / 1000 if abs(value) >= _EPOCH_MILLIS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    if not isinstance(value, str):
        raise TypeError(f"expected a timestamp, got {type(value).__name__}")
    found = _TIMESTAMP.match(value.strip())
    if not found:
        raise ValueError(f"{value!r} is not a timestamp the OpenX SerDe accepts")
    fraction = (found["f"] or ".0")[1:7].ljust(6, "0")
    month, day = found["M"] or found["sM"], found["d"] or found["sd"]
    year, hour, minute, second = (int(found[name]) for name in ("y", "H", "m", "s"))
    # raises ValueError for month 13, hour 25...
    return datetime(year, int(month), int(day), hour, minute, second, int(fraction))


_SCALAR_COERCERS: dict[str, Callable[[Any], Any]] = {
    "string": _string,
    "double": _double,
    "float": _float,
    "int": _integer(*_INT32),
    "bigint": _integer(-(2**63), 2**63 - 1),
    "boolean": _boolean,
    "date": _date,
    "timestamp": _timestamp,
}
