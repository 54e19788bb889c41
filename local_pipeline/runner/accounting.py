"""The audit's part of a run: account for every event offered, from what the run left behind (the mirrored lake,
its error prefix, ``dead_letters.jsonl``) and what the idempotency table holds at the run's simulated end."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pipeline_config
from fanout_lambda.claims import IdempotencyRecords
from fanout_lambda.sale import idempotency_key
from fanout_lambda.validation import validator
from local_pipeline.audit import Audit, AuditReport
from local_pipeline.aws import dead_letter_body
from local_pipeline.runner.files import DEAD_LETTERS_FILE
from local_pipeline.runner.wiring import Services

__all__ = ["audit_run"]


def audit_run(audit: Audit, services: Services, staged: Path, lake_table: Any = None) -> AuditReport:
    """Account for every event offered: the mirrored lake (or ``lake_table``, the Iceberg table's scan), its
    error prefix and ``dead_letters.jsonl``."""
    config = services.config

    def dead_letters() -> Iterator[dict[str, Any]]:
        with (staged / DEAD_LETTERS_FILE).open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield dead_letter_body(line)

    return audit.finish(
        lake_dir=staged,
        table_name=config.table_name,
        table_prefix=config.table_prefix,
        partition_keys=config.glue_table["partition_keys"],
        error_prefix_root=config.error_output_prefix.split("!", 1)[0],
        dead_letters=dead_letters(),
        claim_status=_claim_status(services),
        lake_table=lake_table,
    )


def _claim_status(services: Services) -> Callable[[Any], str | None]:
    """What the idempotency table holds for a sale (read once the run is over, at its simulated end)."""
    records = IdempotencyRecords(services.aws.client("dynamodb"), services.aws.names.idempotency_table)
    end_ms = services.clock.now_ms
    check = validator(pipeline_config.embedding_dimension())

    def status(event: Any) -> str | None:
        record_id = records.record_id(idempotency_key(check.validate(event)))
        item = (
            services.aws.client("dynamodb")
            .get_item(TableName=records.table_name, Key={"id": {"S": record_id}}, ConsistentRead=True)
            .get("Item")
        )
        if item is None:
            return None
        state = str(item["status"]["S"])
        expiry = item.get("in_progress_expiration", {}).get("N")
        if state == "INPROGRESS" and expiry is not None:
            state += ", lapsed" if int(expiry) < end_ms else ", still held at the end of the run"
        return state

    return status
