"""Delivery to an Apache Iceberg table: what a stream with ``destination = "iceberg"`` does with a full buffer.

Amazon Data Firehose DG, "Deliver data to Apache Iceberg Tables with Amazon Data Firehose" and the pages under it:
- the stream keeps one buffer (no dynamic partitioning: the table's own partition spec places the rows, and
  ``metadata.partitionKeys`` is not used), flushed on the same size and interval hints;
- each flush is one commit to the table; with unique keys configured (``sale_id``) and operation ``update`` from
  the transform (``metadata.otfMetadata``), a record replaces the row with the same key, so a redelivered sale
  stays one row ("Route incoming records to a single Iceberg table": update and delete need the operation);
- records whose JSON does not fit the table's columns go to the S3 error prefix, counted in
  ``DeliveryToIceberg.FailedRowCount``; the rest in ``DeliveryToIceberg.SuccessfulRowCount``, the commit in
  ``DeliveryToIceberg.Success``, with ``.Bytes``, ``.IncomingRowCount`` and ``.DataFreshness`` ("Monitor
  metrics", apache-iceberg-metric.html).

The table itself (catalog, schema, upsert) is :class:`local_pipeline.iceberg_table.LakeTable`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from local_pipeline.parquet import ConversionFailure, ParquetConverter

if TYPE_CHECKING:  # pyiceberg loads in ~1 s: only an Iceberg run pays for it (the runner imports the table)
    from local_pipeline.iceberg_table import LakeTable

__all__ = ["ICEBERG_FAILED", "IcebergDelivery", "IcebergOutcome"]

#: The error prefix's folder for rows the table refused. AWS names no folder for it in the pages above; this is
#: the runtime's own name, in the style of the others.
ICEBERG_FAILED = "iceberg-failed"
_MISSING_KEY = "Iceberg.MissingUniqueKey"


@dataclass
class IcebergOutcome:
    """What one flush did: rows committed, records refused (with why), bytes of the rows that were committed."""

    rows: int = 0
    bytes: int = 0
    failures: list[ConversionFailure] = field(default_factory=list)
    #: The table partitions the commit wrote to, as ``tenant_id=…/year=…/month=…`` (the summary counts them).
    partitions: set[str] = field(default_factory=set)


class IcebergDelivery:
    """Converts a buffer's JSON records with the Iceberg table's columns and upserts them in one commit."""

    def __init__(self, table: LakeTable, glue_table: Mapping[str, Any], compression: str = "SNAPPY") -> None:
        self.table = table
        columns = [field.name for field in table.table.schema().fields]
        by_name = {column["name"]: column for column in (*glue_table["columns"], *glue_table["partition_keys"])}
        self._converter = ParquetConverter({**glue_table, "columns": [by_name[name] for name in columns]}, compression)
        self._key = columns.index(table.unique_keys[0])
        self._partition_columns = [(name, columns.index(name)) for name in table.partition_fields]

    def deliver(self, records: Sequence[bytes]) -> IcebergOutcome:
        """Commit the records that fit (one transaction); report those that do not."""
        outcome = IcebergOutcome()
        rows: list[list[Any]] = []
        for index, data in enumerate(records):
            converted, failed = self._converter.rows([data])
            if failed:
                outcome.failures.append(ConversionFailure(index, failed[0].error_code, failed[0].message))
            elif any(row[self._key] is None for row in converted):
                key = self.table.unique_keys[0]
                outcome.failures.append(ConversionFailure(index, _MISSING_KEY, f"unique key {key!r} is missing"))
            else:
                rows.extend(converted)
                outcome.bytes += len(data)
        if rows:
            outcome.rows = self.table.upsert(self._converter.to_arrow(rows))
            outcome.partitions = {
                "/".join(f"{name}={row[index]}" for name, index in self._partition_columns) for row in rows
            }
        return outcome
