"""The lake table contract: ``sales_history.json`` is the one declaration of the table's columns.

Read by the transform Lambda (output keys and types), the local Parquet writer, Terraform's Glue table and
the tests. It is packaged into the transform Lambda's zip.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["sales_history"]


@cache
def sales_history() -> dict[str, Any]:
    """Return the parsed ``sales_history.json`` (cached; treat it as read-only)."""
    text = resources.files(__package__).joinpath("sales_history.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
