"""The transform handler: the Firehose data-transformation contract, end to end through base64 and JSON."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import orjson
import pytest

import glue_schemas
import pipeline_config
from fanout_lambda.sale import firehose_record
from fanout_lambda.validation import validator
from pipeline_config import sale_record
from tests.support import FakeLambdaContext, firehose_event, load_event, read_record
from transform_lambda.handler import lambda_handler

CONTEXT = FakeLambdaContext(function_name="sales-transform-test")
DATA_COLUMNS = [column["name"] for column in glue_schemas.sales_history()["columns"]]
# Lambda caps a synchronous response at 6 MB; use the decimal reading, the stricter one.
LAMBDA_RESPONSE_LIMIT = 6_000_000


def _fanout_record(name: str = "product_sold", **detail: Any) -> bytes:
    """The exact bytes the fan-out forwards for a sample event (with detail overrides)."""
    event = load_event(name)
    event["detail"].update(detail)
    return firehose_record(validator(1024).validate(event))


def _decode(record: dict[str, Any]) -> bytes:
    return base64.b64decode(record["data"])


def test_ok_record_has_exactly_the_schema_columns_and_partition_keys_from_the_sale_date() -> None:
    # GIVEN a record that arrived in 2023 for a sale made on 2025-12-30
    event = firehose_event([_fanout_record()], arrival_ms=1_690_000_000_000)

    (out,) = lambda_handler(event, CONTEXT)["records"]

    assert out["recordId"] == "r0"
    assert out["result"] == "Ok"
    payload = _decode(out)
    assert payload.endswith(b"\n") and payload.count(b"\n") == 1
    row = orjson.loads(payload)
    assert list(row) == DATA_COLUMNS
    assert out["metadata"]["partitionKeys"] == {"tenant_id": "carousel-labs", "year": "2025", "month": "12"}
    assert row["sold_date"] == "2025-12-30"
    assert row["event_time"] == "2025-12-30 10:15:00.000"


@pytest.mark.parametrize(
    ("sold_date", "season", "month"),
    [("2025-01-01", "Q1", "01"), ("2025-03-31", "Q1", "03"), ("2025-04-01", "Q2", "04"),
     ("2025-09-30", "Q3", "09"), ("2025-10-01", "Q4", "10"), ("2025-12-31", "Q4", "12")],
)  # fmt: skip
def test_season_is_the_calendar_quarter_of_the_sale_date(sold_date: str, season: str, month: str) -> None:
    (out,) = lambda_handler(firehose_event([_fanout_record(soldDate=sold_date)]), CONTEXT)["records"]
    assert orjson.loads(_decode(out))["season"] == season
    assert out["metadata"]["partitionKeys"]["month"] == month


def test_tenants_and_dates_partition_independently() -> None:
    payloads = [
        _fanout_record(),
        _fanout_record("product_sold_q1"),
        _fanout_record(tenantId="other-tenant", soldDate="2024-07-04"),
    ]
    keys = [r["metadata"]["partitionKeys"] for r in lambda_handler(firehose_event(payloads), CONTEXT)["records"]]
    assert keys == [
        {"tenant_id": "carousel-labs", "year": "2025", "month": "12"},
        {"tenant_id": "resale-co", "year": "2026", "month": "03"},
        {"tenant_id": "other-tenant", "year": "2024", "month": "07"},
    ]


def test_embedding_of_1024_dimensions_survives_as_floats() -> None:
    record = read_record(_fanout_record())
    record["embedding"] = [1] * 512 + [0.25] * 512  # integers are widened to floats
    (out,) = lambda_handler(firehose_event([orjson.dumps(record)]), CONTEXT)["records"]
    embedding = orjson.loads(_decode(out))["embedding"]
    assert len(embedding) == 1024
    assert all(type(x) is float for x in embedding)


def test_malformed_records_fail_alone_and_keep_their_original_data() -> None:
    bad_tenant = read_record(_fanout_record())
    bad_tenant["tenantId"] = "../escape"
    short = read_record(_fanout_record())
    short["embedding"] = [0.5] * 3
    payloads = [
        b"not json at all",
        _fanout_record(),
        orjson.dumps(bad_tenant),
        b"[1, 2, 3]",
        orjson.dumps(short),
        b'{"tenantId": "carousel-labs"}',
    ]
    event = firehose_event(payloads)

    out = lambda_handler(event, CONTEXT)["records"]

    assert [r["recordId"] for r in out] == [r["recordId"] for r in event["records"]]
    assert [r["result"] for r in out] == ["ProcessingFailed", "Ok", *["ProcessingFailed"] * 4]
    for original, result in zip(event["records"], out, strict=True):
        if result["result"] == "ProcessingFailed":
            assert result["data"] == original["data"]
            assert "metadata" not in result


def test_each_failed_record_is_logged_once_with_its_id_and_reason(caplog: pytest.LogCaptureFixture) -> None:
    bad = read_record(_fanout_record())
    bad["salePrice"] = "free"
    lambda_handler(firehose_event([_fanout_record(), orjson.dumps(bad)]), CONTEXT)

    failures = [r for r in caplog.records if r.getMessage() == "record processing failed"]
    assert len(failures) == 1
    assert failures[0].record_id == "r1"  # type: ignore[attr-defined]
    assert failures[0].reason == "salePrice: must be a number (got 'free')"  # type: ignore[attr-defined]


def _largest_batch(payload: bytes, buffer_bytes: int) -> list[bytes]:
    return [payload] * max(1, buffer_bytes // len(payload))


#: The largest processor buffer terraform/variables.tf accepts (processor_buffer_size_mib's validation).
TERRAFORM_MAX_PROCESSOR_BUFFER_MIB = 0.7
#: The float32 whose widened repr is longest (-1.1754942106924411e-38: 23 characters for 4 bytes in).
LONGEST_FLOAT32 = struct.unpack("<f", struct.pack("<f", -1.1754942e-38))[0]


@pytest.mark.parametrize(
    "buffer_mib", [pipeline_config.load()["firehose"]["processor_buffer_size_mib"], TERRAFORM_MAX_PROCESSOR_BUFFER_MIB]
)
def test_response_stays_under_6_mb_for_the_largest_batch_the_processor_buffer_sends(buffer_mib: float) -> None:
    """Worst cases for growth: compact records whose float32 values widen to the longest text (~7.7x out per
    byte in), the smallest valid JSON records (most per-record overhead), JSON records whose integer
    embeddings widen to floats, and records that all fail (original data comes back)."""
    buffer_bytes = int(buffer_mib * 1024 * 1024)
    smallest = read_record(_fanout_record())
    for optional in ("description", "imageS3Key", "embeddingId", "vendorId"):
        smallest.pop(optional)
    smallest.update(productId="P", tenantId="t", category="c", brand="b", condition="new", listedPrice=0,
                    salePrice=0, daysToSell=0, embedding=[0.0] * 1024, eventId="e", saleId="s")  # fmt: skip
    widening = dict(smallest, embedding=[0] * 1024)
    failing = dict(smallest, tenantId="a/b")
    header = {key: value for key, value in smallest.items() if key != "embedding"}
    compact = sale_record.encode(header, [LONGEST_FLOAT32] * 1024)
    templates = {
        "compact, longest floats": compact,
        "compact, failing": sale_record.encode(dict(header, tenantId="a/b"), [0.0] * 1024),
        "smallest JSON": orjson.dumps(smallest),
        "widening JSON": orjson.dumps(widening),
        "failing JSON": orjson.dumps(failing),
    }
    for name, payload in templates.items():
        payloads = _largest_batch(payload, buffer_bytes)
        event = firehose_event(payloads)
        # Firehose record ids are ~60 characters; use that length so overhead is not understated
        for i, record in enumerate(event["records"]):
            record["recordId"] = f"{i:0>56}"

        response = lambda_handler(event, CONTEXT)

        size = len(json.dumps(response, separators=(",", ":")))
        assert size < LAMBDA_RESPONSE_LIMIT, f"{name=} {buffer_mib=} {size=}"
        assert len(response["records"]) == len(payloads)


def test_a_compact_record_and_its_json_form_give_the_same_row() -> None:
    compact = _fanout_record()
    as_json = orjson.dumps(read_record(compact))
    out = lambda_handler(firehose_event([compact, as_json]), CONTEXT)["records"]
    assert [r["result"] for r in out] == ["Ok", "Ok"]
    assert _decode(out[0]) == _decode(out[1])
    assert out[0]["metadata"] == out[1]["metadata"]


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda data: b"\x00SR9" + data[4:], "unknown version"),
        (lambda data: data[:6], "shorter than its 8-byte prefix"),
        (lambda data: data[:8] + b"]" + data[9:], "header is not JSON"),
        (lambda data: data[:-1], "not whole float32 values"),
        (lambda data: data[:4] + struct.pack("<I", 10**6) + data[8:], "runs past the record"),
        (lambda data: data[:-4] + struct.pack("<f", float("nan")), "must be finite"),
        (lambda data: data[:-4] + struct.pack("<f", float("inf")), "must be finite"),
        (lambda data: data[:-8], "must have 1024 items"),
    ],
)
def test_a_malformed_compact_record_fails_alone_with_its_reason(
    mangle: Any, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad = mangle(_fanout_record())
    event = firehose_event([_fanout_record(), bad, _fanout_record()])
    out = lambda_handler(event, CONTEXT)["records"]
    assert [r["result"] for r in out] == ["Ok", "ProcessingFailed", "Ok"]
    assert out[1]["data"] == event["records"][1]["data"]
    (failure,) = [r for r in caplog.records if r.getMessage() == "record processing failed"]
    assert reason in failure.reason  # type: ignore[attr-defined]


def _values(value: Any) -> list[Any]:
    # EMF allows a number or an array of numbers; Powertools writes an array.
    return value if isinstance(value, list) else [value]


def _emf_blobs(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if '"_aws"' in line]


def test_failed_records_are_counted_in_one_bounded_emf_metric(capsys: pytest.CaptureFixture[str]) -> None:
    # GIVEN a batch with one good record and two that fail (a transform failure leaves Firehose's
    # ExecuteProcessing.Success at 1, so only this metric tells)
    capsys.readouterr()
    event = firehose_event([_fanout_record(), b"not json", orjson.dumps({"tenantId": "a/b"})])
    # WHEN the handler runs
    out = lambda_handler(event, CONTEXT)
    # THEN its output is unchanged and one EMF blob carries TransformRecordsFailed = 2, Count, with the
    # service dimension only (no record ids, tenants or reasons)
    assert [r["result"] for r in out["records"]] == ["Ok", "ProcessingFailed", "ProcessingFailed"]
    (blob,) = _emf_blobs(capsys.readouterr().out)
    (directive,) = blob["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "CarouselSalesPipeline"
    assert directive["Metrics"] == [{"Name": "TransformRecordsFailed", "Unit": "Count"}]
    assert directive["Dimensions"] == [["service"]]
    assert blob["service"] == "sales-transform"
    assert _values(blob["TransformRecordsFailed"]) == [2]
    assert set(blob) == {"_aws", "service", "TransformRecordsFailed"}


def test_a_clean_batch_reports_zero_failed_records(capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    lambda_handler(firehose_event([_fanout_record()]), CONTEXT)
    (blob,) = _emf_blobs(capsys.readouterr().out)
    assert _values(blob["TransformRecordsFailed"]) == [0]
