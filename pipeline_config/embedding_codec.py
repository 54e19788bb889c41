"""The embedding on a DynamoDB sales item, declared once: the fan-out encodes it, any reader decodes it.

DynamoDB bills a write unit per started KB of an item, and a GSI write per started KB of the projected copy, so
the query copy of a 1024-dimension embedding is stored smaller than the lake's float32 (the Firehose record and
the lake keep float32: :mod:`pipeline_config.sale_record`). Three encodings, chosen by pipeline.json's
``dynamodb.embedding_encoding`` (the fan-out's ``DYNAMODB_EMBEDDING_ENCODING`` overrides it):

=========  ==================================  ===================  =============================================
encoding   ``embedding`` (B)                   bytes (1024 values)  bound on the decoded vector ``y`` of ``x``
=========  ==================================  ===================  =============================================
float32    little-endian IEEE binary32         4,096                exact (the lake's values)
float16    little-endian IEEE binary16         2,048                ``|y_i - x_i| <= 2^-11 max|x|``, so
                                                                    ``cos(x, y) >= sqrt(1 - n 2^-22)`` (0.99988)
int8       signed bytes ``q_i``, ``y_i = q_i   1,024 + the scale    ``|y_i - x_i| <= max|x| / 254``, so
           x scale``, scale = max|x| / 127                          ``cos(x, y) >= sqrt(1 - n / 254^2)`` (0.99203)
=========  ==================================  ===================  =============================================

Each item says how its embedding is encoded (``embeddingEncoding`` S; ``embeddingScale`` N for int8), so any
item decodes whatever the stack's setting was when it was written; an item without ``embeddingEncoding`` is
float32 (items written before the attribute existed).

float16 holds magnitudes up to 65,504 and keeps its relative precision only down to 2^-14: a vector with a value
beyond 65,504 (it would become infinity) or whose largest magnitude is below 2^-14 (every value would lose its
precision or become zero) is written as float32 instead, and says so. Such embeddings are not what an embedding
model produces; the fallback keeps them exact at the float32 item's cost.

Standard library only: this module ships in the fan-out's zip. Reading an item::

    from pipeline_config.embedding_codec import decode
    vector = decode(item)  # client form ({"embedding": {"B": ...}}) or boto3 resource form (Binary, Decimal)
"""

from __future__ import annotations

import base64
import math
import struct
import sys
from array import array
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Final

__all__ = [
    "EMBEDDING",
    "ENCODING",
    "ENCODINGS",
    "SCALE",
    "cosine_bound",
    "decode",
    "encode",
]

#: The encodings a stack may declare, in order of precision.
ENCODINGS: Final = ("float32", "float16", "int8")
#: Attribute names on the sales item (and GSI2's projection: a query needs all three to decode).
EMBEDDING: Final = "embedding"
ENCODING: Final = "embeddingEncoding"
SCALE: Final = "embeddingScale"

#: The largest finite float16, and its smallest normal magnitude (IEEE 754 binary16).
FLOAT16_MAX: Final = 65504.0
FLOAT16_MIN_NORMAL: Final = 2.0**-14
#: The largest finite float32: the lake's (and the fan-out schema's) bound on a value.
FLOAT32_MAX: Final[float] = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]
_INT8_LEVELS: Final = 127
_LITTLE_ENDIAN = sys.byteorder == "little"


def encode(values: Sequence[float], encoding: str) -> dict[str, dict[str, Any]]:
    """The embedding attributes of a sales item in DynamoDB's attribute-value form (client API).

    Returns ``embedding`` (B) and ``embeddingEncoding`` (S), plus ``embeddingScale`` (N) for int8. The encoding
    written can be float32 where float16 was asked for (see the module's notes); decode reads it from the item.
    Raises ``ValueError`` for an unknown encoding or a value that is not a finite float32.
    """
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown embedding encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")
    if not math.isfinite(sum(values)):  # NaN or infinity anywhere makes the sum non-finite
        raise ValueError("embedding values must be finite")
    largest = max(map(abs, values), default=0.0)
    if largest > FLOAT32_MAX:
        raise ValueError(f"embedding value {largest!r} is beyond float32's range")
    if encoding == "float16" and (largest > FLOAT16_MAX or 0.0 < largest < FLOAT16_MIN_NORMAL):
        encoding = "float32"
    if encoding == "float16":
        blob = _float16(len(values)).pack(*values)
    elif encoding == "int8":
        return _encode_int8(values, largest)
    else:
        packed = array("f", values)
        if not _LITTLE_ENDIAN:  # pragma: no cover - Lambda's x86_64 and arm64 are little-endian
            packed.byteswap()
        blob = packed.tobytes()
    return {EMBEDDING: {"B": blob}, ENCODING: {"S": encoding}}


def decode(item: Mapping[str, Any]) -> list[float]:
    """The embedding of a sales item (or of its GSI2 copy) as floats.

    ``item`` may be in the client's attribute-value form (``{"embedding": {"B": b"..."}, ...}``, as
    ``boto3.client("dynamodb")`` returns it; ``B`` as base64 text, as the AWS CLI prints it, works too) or in
    boto3's resource form (``boto3.resource("dynamodb")``: ``Binary``, ``str``, ``Decimal``). Raises
    ``ValueError`` for an item without an embedding, an unknown encoding or a blob of the wrong length.
    """
    if EMBEDDING not in item:
        raise ValueError(f"the item has no {EMBEDDING!r} attribute (is it projected?)")
    blob = _bytes(_plain(item[EMBEDDING], "B"))
    encoding = str(_plain(item[ENCODING], "S")) if ENCODING in item else "float32"
    if encoding == "float32":
        if len(blob) % 4:
            raise ValueError(f"a float32 embedding is whole 4-byte values, got {len(blob)} bytes")
        packed = array("f")
        packed.frombytes(blob)
        if not _LITTLE_ENDIAN:  # pragma: no cover
            packed.byteswap()
        return packed.tolist()
    if encoding == "float16":
        if len(blob) % 2:
            raise ValueError(f"a float16 embedding is whole 2-byte values, got {len(blob)} bytes")
        return list(_float16(len(blob) // 2).unpack(blob))
    if encoding == "int8":
        if SCALE not in item:
            raise ValueError(f"an int8 embedding needs {SCALE!r} (is it projected?)")
        scale = float(str(_plain(item[SCALE], "N")))
        return [q * scale for q in array("b", blob)]
    raise ValueError(f"unknown embedding encoding {encoding!r}; expected one of {', '.join(ENCODINGS)}")


def cosine_bound(encoding: str, dimension: int) -> float:
    """The lowest cosine similarity between a vector and its decoded copy that the encoding guarantees.

    From the per-value bounds in the module's table: the error vector ``e`` has ``|e| <= r |x|`` with
    ``r = sqrt(n) 2^-11`` (float16) or ``sqrt(n) / 254`` (int8), so the angle's sine is at most ``r``.
    Holds for every non-zero finite vector the encoding keeps (float16's fallbacks are exact).
    """
    if encoding == "float32":
        return 1.0
    ratio = math.sqrt(dimension) * (2.0**-11 if encoding == "float16" else 1 / (2 * _INT8_LEVELS))
    return math.sqrt(max(0.0, 1 - ratio * ratio))


def _encode_int8(values: Sequence[float], largest: float) -> dict[str, dict[str, Any]]:
    # scale = max|x| / 127 maps the largest magnitude onto +-127; each value rounds to the nearest step, so its
    # error is at most half a step. An all-zero vector has scale 0 and decodes to zeros.
    scale = largest / _INT8_LEVELS
    inverse = _INT8_LEVELS / largest if largest else 0.0
    quantised = array("b", [round(x * inverse) for x in values])
    return {
        EMBEDDING: {"B": quantised.tobytes()},
        ENCODING: {"S": "int8"},
        SCALE: {"N": repr(scale) if scale else "0"},
    }


@cache
def _float16(count: int) -> struct.Struct:
    return struct.Struct(f"<{count}e")


def _plain(value: Any, kind: str) -> Any:
    """A value in either form: ``{"B": ...}`` (client) or the bare value (resource)."""
    if isinstance(value, Mapping):
        if kind not in value:
            raise ValueError(f"expected a {kind} attribute, got {sorted(value)}")
        return value[kind]
    return value


def _bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):  # the JSON wire form (AWS CLI output): base64 text
        return base64.b64decode(value, validate=True)
    raw = getattr(value, "value", None)  # boto3.dynamodb.types.Binary, without importing boto3
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    raise ValueError(f"cannot read an embedding blob from {type(value).__name__}")
