"""Parsing, grouping and checking Firehose error envelopes (no network)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

import pytest

from fanout_lambda.sale import Sale, firehose_record
from operations.error_records import (
    TransformCheck,
    UnreadableObject,
    error_type_of,
    group,
    parse_object,
    read_record,
    split_s3_url,
)
from pipeline_config import sale_record
from tests.support import load_event

ROOT = "errors/"
KEY = "errors/processing-failed/year=2026/month=01/day=15/stream-1-x"


def envelope(data: bytes, code: str = "Lambda.FunctionError", arrival: int = 1_000, **extra: Any) -> dict[str, Any]:
    return {
        "errorCode": code,
        "errorMessage": "m",
        "arrivalTimestamp": arrival,
        "rawData": base64.b64encode(data).decode(),
        **extra,
    }


def test_split_s3_url_and_error_type() -> None:
    assert split_s3_url("s3://lake/errors/") == ("lake", "errors/")
    with pytest.raises(ValueError, match="not an s3://"):
        split_s3_url("lake/errors/")
    assert error_type_of(KEY, ROOT) == "processing-failed"
    assert error_type_of("errors/loose-object", ROOT) == "(no type folder)"


def test_newline_separated_and_concatenated_envelopes_both_parse() -> None:
    body = json.dumps(envelope(b'{"a":1}')) + "\n" + json.dumps(envelope(b'{"a":2}')) + json.dumps(envelope(b"x"))

    records = parse_object(KEY, body.encode(), ROOT)

    assert [r.data for r in records] == [b'{"a":1}', b'{"a":2}', b"x"]
    assert [r.index for r in records] == [0, 1, 2]
    assert {r.error_type for r in records} == {"processing-failed"}


def test_gzip_objects_are_decompressed() -> None:
    body = gzip.compress(json.dumps(envelope(b"data")).encode())

    assert [r.data for r in parse_object(KEY, body, ROOT)] == [b"data"]


def test_format_conversion_envelopes_use_capitalised_keys() -> None:
    body = json.dumps({"ErrorCode": "DataFormatConversion.X", "ErrorMessage": "bad", "rawData": "eA=="}).encode()

    (record,) = parse_object("errors/format-conversion-failed/k", body, ROOT)

    assert (record.error_type, record.code, record.message, record.data) == (
        "format-conversion-failed",
        "DataFormatConversion.X",
        "bad",
        b"x",
    )


def test_bad_raw_data_is_kept_with_the_problem() -> None:
    body = json.dumps({"errorCode": "c", "rawData": "***"}) + json.dumps({"errorCode": "c"})

    first, second = parse_object(KEY, body.encode(), ROOT)

    assert first.data is None and "not base64" in str(first.data_problem)
    assert second.data is None and second.data_problem == "the envelope has no rawData"


@pytest.mark.parametrize(
    ("body", "message"), [(b"nope", "envelope 1 is not JSON"), (b"[1]", "not a JSON object"), (b"\xff", "not UTF-8")]
)
def test_an_unreadable_object_says_why(body: bytes, message: str) -> None:
    with pytest.raises(UnreadableObject, match=message):
        parse_object(KEY, body, ROOT)


def test_groups_by_type_code_and_message_with_time_range_and_event_ids() -> None:
    event = load_event("product_sold")
    data = firehose_record(Sale(event["id"], event["time"], event["detail"]))
    body = "".join(
        json.dumps(e) + "\n"
        for e in (envelope(data, arrival=3_000), envelope(b"{}", arrival=1_000), envelope(b"{}", code="Other"))
    )
    records = parse_object(KEY, body.encode(), ROOT)

    groups = group(records)

    assert [(g.code, len(g.records)) for g in groups] == [("Lambda.FunctionError", 2), ("Other", 1)]
    assert groups[0].arrival_range() == (1_000, 3_000)
    assert groups[0].as_json()["eventIds"] == [event["id"]]
    assert groups[0].objects == [KEY]


def test_the_transform_check_uses_the_transforms_own_rules() -> None:
    event = load_event("product_sold")
    good = firehose_record(Sale(event["id"], event["time"], event["detail"]))
    bad_event = load_event("escaping_tenant")
    bad = firehose_record(Sale(bad_event["id"], bad_event["time"], bad_event["detail"]))
    check = TransformCheck()
    records = parse_object(KEY, "".join(json.dumps(envelope(d)) for d in (good, bad, b"{no", b"NaN")).encode(), ROOT)

    problems = [check.problem(record) for record in records]

    assert problems[0] is None
    assert problems[1] is not None and problems[1].startswith("the transform rejects it: tenantId: must match")
    assert problems[2] is not None and problems[2].startswith("not JSON")
    assert problems[3] is not None and problems[3].startswith("not JSON")  # orjson, like the transform, refuses NaN
    assert sale_record.is_compact(good), "the fan-out's records are compact"


def test_the_transform_check_refuses_records_over_firehoses_size_limit() -> None:
    check = TransformCheck(normalise=lambda _record: None, max_record_bytes=10)
    (record,) = parse_object(KEY, json.dumps(envelope(b'{"a": "0123456789"}')).encode(), ROOT)

    assert check.problem(record) == "record of 19 bytes exceeds Firehose's 10-byte limit"


def lake_row(event: dict[str, Any]) -> bytes:
    from transform_lambda.handler import normaliser

    row, _ = normaliser.normalise(read_record(firehose_record(Sale(event["id"], event["time"], event["detail"]))))
    return json.dumps(row).encode() + b"\n"


def test_a_lake_row_gets_back_the_tenant_its_sale_id_names() -> None:
    event = load_event("product_sold")
    (record,) = parse_object(KEY, json.dumps(envelope(lake_row(event))).encode(), ROOT)
    check = TransformCheck(tenants=["someone-else", event["detail"]["tenantId"]])

    prepared = check.prepare(record)

    assert prepared.problem is None and prepared.tenant_restored
    assert json.loads(prepared.data or b"")["tenant_id"] == event["detail"]["tenantId"]


def test_a_lake_row_whose_tenant_is_unknown_stays_with_the_reason() -> None:
    event = load_event("product_sold")
    (record,) = parse_object(KEY, json.dumps(envelope(lake_row(event))).encode(), ROOT)

    prepared = TransformCheck(tenants=["someone-else"]).prepare(record)

    assert prepared.data is None
    assert prepared.problem == (
        "the transform rejects it: tenantId: is required (a lake row: none of the 1 known tenant(s) reproduces "
        "its sale_id; name its tenant with --tenant)"
    )


def test_a_record_that_is_not_a_lake_row_is_never_given_a_tenant() -> None:
    event = load_event("product_sold")
    detail = {key: value for key, value in event["detail"].items() if key != "tenantId"}
    (record,) = parse_object(KEY, json.dumps(envelope(json.dumps(detail).encode())).encode(), ROOT)

    prepared = TransformCheck(tenants=[event["detail"]["tenantId"]]).prepare(record)

    assert prepared.data is None and prepared.problem == "the transform rejects it: tenantId: is required"


# -- compact records (pipeline_config.sale_record) -----------------------------------------------------------


def compact(event: dict[str, Any]) -> bytes:
    return firehose_record(Sale(event["id"], event["time"], event["detail"]))


def json_form(event: dict[str, Any]) -> bytes:
    """The same record as the fan-out put it before the compact form: one JSON line."""
    return json.dumps(sale_record.decode(compact(event))).encode() + b"\n"


#: Malformed compact records and the start of the reason MalformedRecord gives.
MALFORMED = [
    (b"\x00SR9" + b"\x00" * 8, "malformed compact record: unknown version"),
    (sale_record.MAGIC + b"\x01", "malformed compact record: 5 bytes, shorter than"),
    (sale_record.MAGIC + (200).to_bytes(4, "little") + b"{}", "malformed compact record: header of 200 bytes"),
    (sale_record.MAGIC + (2).to_bytes(4, "little") + b"{}" + b"\x01\x02", "malformed compact record: embedding of 2"),
    (sale_record.MAGIC + (2).to_bytes(4, "little") + b"{x", "malformed compact record: header is not JSON"),
    (sale_record.MAGIC + (2).to_bytes(4, "little") + b"[]", "malformed compact record: header is JSON list"),
]


def test_a_compact_record_reads_as_its_json_form() -> None:
    event = load_event("product_sold")
    body = "".join(json.dumps(envelope(data)) + "\n" for data in (compact(event), json_form(event)))
    from_compact, from_json = parse_object(KEY, body.encode(), ROOT)

    assert from_compact.decoded() == (json.loads(json_form(event)), None)
    assert from_compact.event_id() == from_json.event_id() == event["id"]
    assert from_compact.sale_id() == from_json.sale_id() is not None
    shown = json.loads(from_compact.display())
    assert shown == json.loads(from_json.display()), "--records shows a compact record as the JSON form would"
    (only,) = group([from_compact, from_json])
    assert only.as_json()["eventIds"] == [event["id"], event["id"]]
    assert only.as_json()["malformed"] == {}


def test_a_compact_record_passes_the_check_and_goes_back_compact() -> None:
    event = load_event("product_sold")
    data = compact(event)
    (record,) = parse_object(KEY, json.dumps(envelope(data)).encode(), ROOT)

    prepared = TransformCheck().prepare(record)

    assert prepared.problem is None
    assert prepared.data == data, "put back byte for byte: Firehose's quota and bill count these bytes"
    assert prepared.sale_id == sale_record.decode(data)["saleId"]


def test_a_compact_record_the_transform_rejects_says_why() -> None:
    bad_event = load_event("escaping_tenant")
    (record,) = parse_object(KEY, json.dumps(envelope(compact(bad_event))).encode(), ROOT)

    problem = TransformCheck().problem(record)

    assert problem is not None and problem.startswith("the transform rejects it: tenantId: must match")


@pytest.mark.parametrize(("data", "reason"), MALFORMED, ids=[r.split(": ")[1][:24] for _, r in MALFORMED])
def test_a_malformed_compact_record_is_reported_with_its_reason(data: bytes, reason: str) -> None:
    (record,) = parse_object(KEY, json.dumps(envelope(data)).encode(), ROOT)

    assert record.event_id() is None and record.sale_id() is None
    assert record.display().startswith(reason)
    assert not record.display().startswith("not JSON")
    (found,) = group([record]).pop().malformed().items()
    assert found[0] == f"{KEY}#0" and found[1].startswith(reason)
    prepared = TransformCheck().prepare(record)
    assert prepared.data is None and str(prepared.problem).startswith(reason)
