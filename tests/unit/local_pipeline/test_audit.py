"""The end-of-run audit over a small hand-built lake, error prefix and dead-letter list."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import glue_schemas
import pipeline_config
from fanout_lambda.sale import firehose_record
from fanout_lambda.validation import validator
from local_pipeline.audit import Audit, AuditReport
from local_pipeline.parquet import ParquetConverter
from tests.support import FakeLambdaContext, firehose_event, load_event
from transform_lambda.handler import lambda_handler as transform

TABLE = glue_schemas.sales_history()
CONFIG = pipeline_config.load()
PREFIX = CONFIG["lake"]["table_prefix"]
VALIDATOR = validator(pipeline_config.embedding_dimension())


def sale(n: int, **detail: Any) -> dict[str, Any]:
    """A valid sale event, the n-th product."""
    event = load_event("product_sold")
    event["id"] = f"event-{n}"
    event["detail"].update(productId=f"PROD-{n}", **detail)
    return event


def invalid(n: int) -> dict[str, Any]:
    event = sale(n)
    event["detail"]["listedPrice"] = -1
    return event


def record(event: dict[str, Any]) -> bytes:
    """The fan-out's Firehose record of ``event``."""
    return firehose_record(VALIDATOR.validate(event))


def row(event: dict[str, Any]) -> bytes:
    """The lake row the transform makes of ``event``."""
    (out,) = transform(firehose_event([record(event)]), FakeLambdaContext())["records"]
    return base64.b64decode(out["data"])


def write_lake(root: Path, name: str, rows: list[bytes]) -> None:
    folder = root / PREFIX / "tenant_id=carousel-labs" / "year=2025" / "month=12"
    folder.mkdir(parents=True, exist_ok=True)
    converted = ParquetConverter(TABLE).convert(rows)
    assert converted.parquet is not None and not converted.failures
    (folder / f"{name}.parquet").write_bytes(converted.parquet)


def write_errors(root: Path, error_type: str, lines: list[dict[str, Any]]) -> None:
    folder = root / "errors" / error_type / "year=2026" / "month=01" / "day=15"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "object").write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")


def run_audit(
    root: Path,
    events: list[tuple[dict[str, Any], str | None]],
    dead_letters: list[dict[str, Any]],
    claim_status: Any = None,
) -> AuditReport:
    audit = Audit(VALIDATOR, CONFIG["event_pattern"])
    for event, kind in events:
        audit.expect(copy.deepcopy(event), kind)
    return audit.finish(
        lake_dir=root,
        table_name=TABLE["table"],
        table_prefix=PREFIX,
        partition_keys=TABLE["partition_keys"],
        error_prefix_root="errors",
        dead_letters=dead_letters,
        claim_status=claim_status,
    )


def test_every_sale_in_the_lake_once_and_every_invalid_event_in_the_dlq_is_a_clean_audit(tmp_path: Path) -> None:
    # GIVEN three sales (one retried, one re-published) in the lake, Firehose having delivered one object twice
    s0, s1, s2 = sale(0), sale(1), sale(2)
    republished = {**copy.deepcopy(s2), "id": "event-2-again"}
    write_lake(tmp_path, "a", [row(s0), row(s1)])
    write_lake(tmp_path, "a-again", [row(s0), row(s1)])
    write_lake(tmp_path, "b", [row(s2), row(republished)])
    bad = invalid(9)
    dlq = [{"errorType": "InvalidSaleEvent", "error": {"field": "detail.listedPrice", "reason": "<0"}, "event": bad}]
    events = [(s0, "valid"), (s0, "retry"), (s1, "valid"), (s2, "valid"), (republished, "republish"), (bad, "invalid")]

    # WHEN audited
    report = run_audit(tmp_path, events, dlq)

    # THEN nothing is lost or twice
    assert report.ok
    assert (report.sales, report.in_lake, report.lost, report.duplicated_after_dedup) == (3, 3, 0, 0)
    assert (report.invalid_events, report.rejected_in_dead_letters) == (1, 1)
    assert report.summary_fields()["audit_lost"] == 0


def test_without_the_generator_kind_the_validator_classifies(tmp_path: Path) -> None:
    s0, bad = sale(0), invalid(1)
    write_lake(tmp_path, "a", [row(s0)])
    report = run_audit(tmp_path, [(s0, None), (bad, None), ({"source": "other"}, None)], [])
    assert (report.sales, report.in_lake, report.invalid_events, report.not_matched) == (1, 1, 1, 1)
    assert report.lost == 1  # the invalid event never reached the DLQ
    assert report.lost_examples and report.lost_examples[0].startswith("invalid event")


def test_a_missing_sale_is_lost_and_named(tmp_path: Path) -> None:
    s0, s1 = sale(0), sale(1)
    write_lake(tmp_path, "a", [row(s0)])

    report = run_audit(tmp_path, [(s0, "valid"), (s1, "valid")], [])

    assert report.lost == 1 and not report.ok
    assert report.lost_examples == [f"sale {VALIDATOR.validate(s1).sale_id}"]
    assert "lost" in "\n".join(report.lines())


def test_sales_parked_in_the_error_prefix_or_the_dlq_are_counted_with_their_reason(tmp_path: Path) -> None:
    # GIVEN one sale delivered, one in processing-failed, one in format-conversion-failed, one parked in the DLQ
    s0, s1, s2, s3 = sale(0), sale(1), sale(2), sale(3)
    write_lake(tmp_path, "a", [row(s0)])
    raw = base64.b64encode(record(s1)).decode()
    write_errors(tmp_path, "processing-failed", [{"errorCode": "Lambda.FunctionError", "rawData": raw}])
    converted = base64.b64encode(row(s2)).decode()
    write_errors(tmp_path, "format-conversion-failed", [{"ErrorCode": "MalformedData", "rawData": converted}])
    destination = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": s3,
                   "responsePayload": {"errorType": "FanoutCrash"}}  # fmt: skip

    # WHEN audited
    report = run_audit(tmp_path, [(s, "valid") for s in (s0, s1, s2, s3)], [destination])

    # THEN nothing is lost; each parked sale has its place and reason
    assert report.ok
    assert (report.in_lake, report.in_error_prefix, report.in_dead_letters, report.lost) == (1, 2, 1, 0)
    assert report.parked_reasons == {
        "error prefix processing-failed: Lambda.FunctionError": 1,
        "error prefix format-conversion-failed: MalformedData": 1,
        "DLQ: fan-out failed every attempt (RetriesExhausted: FanoutCrash)": 1,
    }


def test_a_redriven_buffer_queue_message_parks_its_sale(tmp_path: Path) -> None:
    s0 = sale(0)
    report = run_audit(tmp_path, [(s0, "valid")], [copy.deepcopy(s0)])  # body = the event itself
    assert report.in_dead_letters == 1 and report.lost == 0
    (reason,) = report.parked_reasons
    assert "receive limit" in reason


def test_one_event_id_under_two_sales_is_a_duplicate_after_dedup(tmp_path: Path) -> None:
    s0, s1 = sale(0), sale(1)
    s1["id"] = s0["id"]  # a mixed-up record: two different sales under one event id
    write_lake(tmp_path, "a", [row(s0), row(s1)])
    report = run_audit(tmp_path, [(s0, "valid"), (s1, "valid")], [])
    assert report.duplicated_after_dedup == 1 and not report.ok


def test_a_row_nobody_sent_is_reported(tmp_path: Path) -> None:
    s0, stranger = sale(0), sale(5)
    write_lake(tmp_path, "a", [row(s0), row(stranger)])
    report = run_audit(tmp_path, [(s0, "valid")], [])
    assert report.unexpected_in_lake == 1 and not report.ok


def test_an_empty_lake_loses_every_sale(tmp_path: Path) -> None:
    report = run_audit(tmp_path, [(sale(0), "valid"), (sale(1), "valid")], [])
    assert report.lost == 2


def test_a_parked_sale_says_what_its_idempotency_claim_held(tmp_path: Path) -> None:
    s0, s1 = sale(0), sale(1)
    held = {"PROD-0": "INPROGRESS, still held at the end of the run", "PROD-1": None}
    report = run_audit(
        tmp_path,
        [(s0, "valid"), (s1, "valid")],
        [copy.deepcopy(s0), copy.deepcopy(s1)],
        claim_status=lambda event: held[event["detail"]["productId"]],
    )
    assert report.in_dead_letters == 2 and report.lost == 0
    assert sorted(report.parked_reasons) == [
        "DLQ: event moved by a redrive (receive limit reached) or undeliverable by EventBridge; "
        "idempotency claim INPROGRESS, still held at the end of the run",
        "DLQ: event moved by a redrive (receive limit reached) or undeliverable by EventBridge; "
        "idempotency claim absent (released)",
    ]
