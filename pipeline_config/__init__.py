"""The pipeline's shared declarations: event pattern, Firehose prefixes and buffering, embedding dimension,
the DynamoDB query copy (embedding encoding, GSI2 shards and projection).

`pipeline.json` beside this file is the single source; Terraform reads it with ``jsondecode(file(...))`` and
the Lambdas and the local runtime read it through :func:`load`. It is packaged into both Lambda zips.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

__all__ = [
    "EMBEDDING_DIMENSION",
    "EMBEDDING_VALUE_LIMIT",
    "ConfigurationError",
    "dynamodb_embedding_encoding",
    "dynamodb_embedding_encodings",
    "dynamodb_embedding_shards",
    "embedding_dimension",
    "gsi2_projected_attributes",
    "load",
    "sold_date_years",
]

#: The largest finite float32 (3.4028234663852886e38): the lake stores embeddings as ``array<float>``, so a
#: larger magnitude would become infinity in Parquet. The one bound for the fan-out's schema (its items'
#: minimum/maximum), the transform and the local Parquet writer.
EMBEDDING_VALUE_LIMIT: float = struct.unpack("<f", b"\xff\xff\x7f\x7f")[0]

#: Optional environment override of pipeline.json's ``embedding_dimension`` (both Lambdas read it).
EMBEDDING_DIMENSION = "EMBEDDING_DIMENSION"


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed."""


@cache
def load() -> dict[str, Any]:
    """Return the parsed ``pipeline.json`` (cached; treat it as read-only)."""
    text = resources.files(__package__).joinpath("pipeline.json").read_text(encoding="utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


def embedding_dimension(environ: Mapping[str, str] | None = None) -> int:
    """The configured embedding length: ``EMBEDDING_DIMENSION`` if set, else pipeline.json's value."""
    env = os.environ if environ is None else environ
    raw = env.get(EMBEDDING_DIMENSION, "").strip()
    if not raw:
        return int(load()["embedding_dimension"])
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigurationError(f"{EMBEDDING_DIMENSION} must be a positive integer, got {raw!r}")
    return value


def sold_date_years() -> tuple[int, int]:
    """pipeline.json's ``sold_date_years`` as ``(first, last)``: the years Athena's projection shows."""
    years = load()["sold_date_years"]
    return int(years["first"]), int(years["last"])


def fanout_timeout_seconds() -> int:
    """pipeline.json's ``fanout_timeout_seconds``: the fan-out Lambda's timeout (Terraform's default)."""
    return int(load()["fanout_timeout_seconds"])


def dynamodb_embedding_encoding() -> str:
    """pipeline.json's ``dynamodb.embedding_encoding``: how the sales item stores its embedding (the fan-out's
    ``DYNAMODB_EMBEDDING_ENCODING`` overrides it; :mod:`pipeline_config.embedding_codec` implements each)."""
    return str(load()["dynamodb"]["embedding_encoding"])


def dynamodb_embedding_encodings() -> tuple[str, ...]:
    """pipeline.json's ``dynamodb.embedding_encodings``: the encodings a stack may choose (Terraform validates
    against it; a test ties it to :data:`pipeline_config.embedding_codec.ENCODINGS`)."""
    return tuple(str(name) for name in load()["dynamodb"]["embedding_encodings"])


def dynamodb_embedding_shards() -> int:
    """pipeline.json's ``dynamodb.embedding_shards``: the GSI2 partition-key values a tenant's sales spread over."""
    return int(load()["dynamodb"]["embedding_shards"])


def gsi2_projected_attributes() -> tuple[str, ...]:
    """pipeline.json's ``dynamodb.gsi2_projected_attributes``: GSI2's INCLUDE list (Terraform's default too)."""
    return tuple(str(name) for name in load()["dynamodb"]["gsi2_projected_attributes"])
