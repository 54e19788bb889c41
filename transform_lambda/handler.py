"""Firehose transformation Lambda: one sale record in, one lake row (plus partition keys) out.

A record is the fan-out's compact form (:mod:`pipeline_config.sale_record`) or a JSON object (records put
before the compact form, reprocessed error records, other producers): both give the same row.

The Firehose contract: one output record per input ``recordId``, in input order. ``Ok`` records carry one
newline-terminated JSON object whose keys are exactly the Glue table's data columns; a record that cannot be
normalised comes back ``ProcessingFailed`` with its ORIGINAL data (Firehose writes it under the error prefix)
and one log line names it. A bad record never fails its neighbours.

Firehose counts such an invocation as a success (``ExecuteProcessing.Success`` stays 1), so each invocation
publishes ``TransformRecordsFailed`` (EMF, 0 when none failed) for the alarm in terraform/monitoring.tf.
"""

from __future__ import annotations

import os
from binascii import a2b_base64, b2a_base64
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
    data = b2a_base64(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE), newline=False).decode()
    return {"recordId": record_id, "result": "Ok", "data": data, "metadata": {"partitionKeys": partition_keys}}


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
