"""The sale event JSON Schema file, read once per container."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

SCHEMA_FILE = "sale_event.schema.json"


@cache
def _text() -> str:
    return resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def sale_event_schema() -> dict[str, Any]:
    """A fresh, mutable copy of the sale event JSON Schema."""
    schema: dict[str, Any] = json.loads(_text())
    return schema
