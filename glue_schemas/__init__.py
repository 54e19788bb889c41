"""The lake table contract: ``sales_history.json`` is the one declaration of the table's columns.

Read by the transform Lambda (output keys and types), the local Parquet writer, Terraform's Glue table and
the tests. It is packaged into the transform Lambda's zip. Its ``iceberg`` section says how the same table is
laid out as an Apache Iceberg table (``lake_table_format = "iceberg"``): :func:`iceberg_columns` and
:func:`iceberg_partition_fields` read it for the transform, the local Iceberg writer and the tests; Terraform
reads the same file.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["TABLE_FORMATS", "iceberg_columns", "iceberg_partition_fields", "iceberg_unique_keys", "sales_history"]

#: The lake's table formats: Parquet objects under dynamic partitions (the default), or an Iceberg table.
TABLE_FORMATS = ("parquet", "iceberg")


@cache
def sales_history() -> dict[str, Any]:
    """Return the parsed ``sales_history.json`` (cached; treat it as read-only)."""
    text = resources.files(__package__).joinpath("sales_history.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def iceberg_columns(table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The Iceberg table's columns: the data columns, then the partition keys as ordinary columns (an Iceberg
    partition is a transform of a column of the table, never a folder name alone)."""
    table = table or sales_history()
    return [*table["columns"], *({**key, "required": True} for key in table["partition_keys"])]


def iceberg_partition_fields(table: dict[str, Any] | None = None) -> list[str]:
    """The columns the Iceberg table is partitioned by, each with the identity transform: the partition keys
    (tenant, then the sale's year and month), as Glue builds them from the table's partition keys."""
    table = table or sales_history()
    return [key["name"] for key in table["partition_keys"]]


def iceberg_unique_keys(table: dict[str, Any] | None = None) -> list[str]:
    """The Firehose stream's unique keys on the Iceberg table (``sale_id``)."""
    table = table or sales_history()
    return list(table["iceberg"]["unique_keys"])
