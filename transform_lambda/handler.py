"""Firehose transformation Lambda: one sale record in, one lake row (plus partition keys) out.

A record is the fan-out's compact form (:mod:`pipeline_config.sale_record`) or a JSON object (records put
before the compact form, reprocessed error records, other producers): both give the same row.

The Firehose contract: one output record per input ``recordId``, in input order. ``Ok`` records carry one
newline-terminated JSON object whose keys are exactly the Glue table's data columns; a record that cannot be
normalised comes back ``ProcessingFailed`` with its ORIGINAL data (Firehose writes it under the error prefix)
and one log line names it. A bad record never fails its neighbours.

Firehose counts such an invocation as a success (``ExecuteProcessing.Success`` stays 1), so each invocation
publishes ``TransformRecordsFailed`` (EMF, 0 when none failed) for the alarm in terraform/monitoring.tf.

With ``LAKE_TABLE_FORMAT=iceberg`` (Terraform's ``lake_table_format``) the stream delivers to an Apache Iceberg
table, which ignores ``metadata.partitionKeys``: the row carries the partition keys as columns (tenant_id, year,
month: the Iceberg table's identity partitions, glue_schemas.iceberg_columns) and ``metadata.otfMetadata`` names
the table (``LAKE_DATABASE_NAME``) with operation ``update``, so the stream's unique keys (sale_id) turn a
redelivered sale into an update of its row. Amazon Data Firehose DG, "Route incoming records to different Iceberg
tables" (the Lambda method: otfMetadata with destinationDatabaseName, destinationTableName, operation) and "Route
incoming records to a single Iceberg table" (update and delete need the operation from JQ or the Lambda).
"""

from __future__ import annotations

import os
from binascii import a2b_base64, b2a_base64
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

import glue_schemas
import pipeline_config
from pipeline_config import sale_record

from .records import SaleNormaliser

Result = Literal["Ok", "Dropped", "ProcessingFailed"]

#: The metric's one dimension (service) is this constant, never a per-record value, so the alarm in
#: terraform/monitoring.tf always matches it; the namespace follows POWERTOOLS_METRICS_NAMESPACE.
SERVICE = "sales-transform"
DEFAULT_METRICS_NAMESPACE = "CarouselSalesPipeline"
FAILED_RECORDS_METRIC = "TransformRecordsFailed"

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_METRICS_NAMESPACE), service=SERVICE)


@dataclass(frozen=True)
class LakeTarget:
    """Where the stream delivers: ``parquet`` (S3 objects, dynamic partitions) or an ``iceberg`` table."""

    table_format: str = "parquet"
    database_name: str | None = None

    @classmethod
    def from_environment(cls) -> LakeTarget:
        """Read ``LAKE_TABLE_FORMAT`` (default parquet) and, for iceberg, ``LAKE_DATABASE_NAME``."""
        table_format = os.environ.get("LAKE_TABLE_FORMAT", "parquet")
        if table_format not in glue_schemas.TABLE_FORMATS:
            raise ValueError(f"LAKE_TABLE_FORMAT must be one of {glue_schemas.TABLE_FORMATS}, got {table_format!r}")
        database = os.environ.get("LAKE_DATABASE_NAME") or None
        if table_format == "iceberg" and database is None:
            raise ValueError("LAKE_DATABASE_NAME must name the Glue database when LAKE_TABLE_FORMAT is iceberg")
        return cls(table_format, database)


def configure(target: LakeTarget) -> None:
    """Set the lake target as the environment would (the local runtime's equivalent of Terraform's variables)."""
    global lake  # noqa: PLW0603 - one container, one configuration, as the environment is
    lake = target


lake = LakeTarget.from_environment()
_TABLE_NAME = glue_schemas.sales_history()["table"]

normaliser = SaleNormaliser(
    glue_schemas.sales_history(),
    embedding_dimension=pipeline_config.embedding_dimension(),
    tenant_id_pattern=pipeline_config.load()["tenant_id_pattern"],
)


def transform_record(record: dict[str, Any]) -> dict[str, Any]:
    """Transform one Firehose record into its output entry."""
    record_id = record["recordId"]
    try:
        raw = a2b_base64(record["data"])
        # A compact record (the fan-out's form) starts with a NUL byte; anything else is read as JSON.
        if raw[:1] == b"\x00":
            row, partition_keys = normaliser.normalise(sale_record.decode(raw), float32_embedding=True)
        else:
            row, partition_keys = normaliser.normalise(orjson.loads(raw))
    except Exception as exc:
        logger.warning("record processing failed", extra={"record_id": record_id, "reason": _reason(exc)})
        return {"recordId": record_id, "result": "ProcessingFailed", "data": record["data"]}
    if lake.table_format == "iceberg":
        return _iceberg_entry(record_id, row, partition_keys)
    data = b2a_base64(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE), newline=False).decode()
    return {"recordId": record_id, "result": "Ok", "data": data, "metadata": {"partitionKeys": partition_keys}}


def _iceberg_entry(record_id: str, row: dict[str, Any], partition_keys: dict[str, str]) -> dict[str, Any]:
    """The Ok entry for an Iceberg destination: partition keys as columns, routing and operation in otfMetadata."""
    row["tenant_id"] = partition_keys["tenant_id"]
    row["year"] = int(partition_keys["year"])
    row["month"] = int(partition_keys["month"])
    data = b2a_base64(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE), newline=False).decode()
    otf = {"destinationDatabaseName": lake.database_name, "destinationTableName": _TABLE_NAME, "operation": "update"}
    return {"recordId": record_id, "result": "Ok", "data": data, "metadata": {"otfMetadata": otf}}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, list[dict[str, Any]]]:
    """Firehose entry point."""
    records = [transform_record(record) for record in event["records"]]
    failed = sum(1 for record in records if record["result"] != "Ok")
    metrics.add_metric(name=FAILED_RECORDS_METRIC, unit=MetricUnit.Count, value=failed)
    logger.info("batch transformed", extra={"records": len(records), "failed": failed})
    return {"records": records}


def _reason(exc: Exception) -> str:
    if isinstance(exc, orjson.JSONDecodeError):
        return f"not JSON: {exc}"
    if isinstance(exc, ValueError) and exc.__class__.__module__ == "binascii":
        return f"not base64: {exc}"
    return f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
