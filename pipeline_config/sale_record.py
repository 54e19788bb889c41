"""The Firehose record on the wire, declared once: the fan-out encodes it, the transform decodes it.

Firehose's Direct PUT byte quota counts the bytes put and its bill rounds each record up to 5 KB, so the record
is compact: a 1024-float embedding as JSON text is ~10 KB (~20 KB at full float32 precision), as little-endian
float32 bytes exactly 4 KB. Layout (all integers little-endian)::

    MAGIC (4 bytes, b"\\x00SR1")  header length (uint32)  header (UTF-8 JSON object)  embedding (float32 x n)

The header holds every other field the fan-out forwards (the event detail's declared fields plus ``eventId``,
``eventTime`` and ``saleId``), with the detail's own camelCase names; the embedding's dimension is what is left
after the header, 4 bytes a value. ``MAGIC`` starts with a NUL byte, which no JSON text can start with, so a
reader tells the two forms apart by the first byte: the transform still accepts today's JSON records (records in
flight during a deploy, the error prefix, other producers).

A float32 widened to a Python float and written back to float32 is the same value, so the lake row built from a
compact record holds exactly the float32 values the JSON form gives it (Parquet stores ``array<float>``).

Standard library and orjson only: this module ships in both Lambda zips.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

__all__ = ["MAGIC", "MalformedRecord", "decode", "encode", "is_compact"]

#: The first four bytes of a compact record (version 1).
MAGIC = b"\x00SR1"
_HEADER_LENGTH = struct.Struct("<I")
_PREFIX = len(MAGIC) + _HEADER_LENGTH.size
_LITTLE_ENDIAN = sys.byteorder == "little"


class MalformedRecord(ValueError):
    """A record that starts as a compact record but cannot be read as one; says what is wrong."""


def is_compact(data: bytes) -> bool:
    """Whether ``data`` is a compact record (anything else is read as JSON)."""
    return data[:1] == b"\x00"


def encode(header: Mapping[str, Any], embedding: Sequence[float]) -> bytes:
    """The compact record of ``header`` (every field but the embedding) and the embedding as float32."""
    text = orjson.dumps(header)
    values = array("f", embedding)
    if not _LITTLE_ENDIAN:  # pragma: no cover - Lambda's x86_64 and arm64 are little-endian
        values.byteswap()
    return b"".join((MAGIC, _HEADER_LENGTH.pack(len(text)), text, values.tobytes()))


def decode(data: bytes) -> dict[str, Any]:
    """The record as the JSON form would parse: the header's fields plus ``embedding`` as a list of floats.

    Raises :class:`MalformedRecord` naming what is wrong (version, lengths, header)."""
    if data[: len(MAGIC)] != MAGIC:
        raise MalformedRecord(f"compact record: unknown version {data[:4]!r} (expected {MAGIC!r})")
    if len(data) < _PREFIX:
        raise MalformedRecord(f"compact record: {len(data)} bytes, shorter than its {_PREFIX}-byte prefix")
    (length,) = _HEADER_LENGTH.unpack_from(data, len(MAGIC))
    end = _PREFIX + length
    if end > len(data):
        raise MalformedRecord(f"compact record: header of {length} bytes runs past the record's {len(data)}")
    if (len(data) - end) % 4:
        raise MalformedRecord(f"compact record: embedding of {len(data) - end} bytes is not whole float32 values")
    try:
        record = orjson.loads(data[_PREFIX:end])
    except orjson.JSONDecodeError as exc:
        raise MalformedRecord(f"compact record: header is not JSON: {exc}") from None
    if type(record) is not dict:
        raise MalformedRecord(f"compact record: header is JSON {type(record).__name__}, not an object")
    values = array("f")
    values.frombytes(data[end:])
    if not _LITTLE_ENDIAN:  # pragma: no cover
        values.byteswap()
    record["embedding"] = values.tolist()
    return record
