"""``sales-pipeline errors list | reprocess`` against a moto_server bucket holding each type of error object."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fanout_lambda.sale import Sale, firehose_record
from operations.aws import AwsOptions
from operations.error_records import read_record
from operations.outputs import load as load_outputs
from operations.outputs import write as write_outputs
from operations.streams import stream_index
from pipeline_config import sale_record
from tests.integration.recovery_stack import BUCKET, LAKE_PREFIX, STREAM, Stack, stack, valid_events
from transform_lambda.handler import normaliser

pytestmark = pytest.mark.integration
__all__ = ["stack"]  # the module-scoped moto stack fixture

DAY = "year=2026/month=01/day=15/"
ARRIVAL = 1_768_467_600_000  # 2026-01-15 09:00:00 UTC
KEYS = {
    "good": f"errors/processing-failed/{DAY}carousel-sales-1-2026-01-15-09-10-00-aaaa",
    "mixed": f"errors/processing-failed/{DAY}carousel-sales-1-2026-01-15-09-11-00-bbbb",
    "converted": f"errors/format-conversion-failed/{DAY}carousel-sales-1-2026-01-15-09-12-00-cccc",
    "partitions": f"errors/activePartitionExceeded/{DAY}carousel-sales-1-2026-01-15-09-13-00-dddd",
    "unreadable": f"errors/processing-failed/{DAY}carousel-sales-1-2026-01-15-09-14-00-eeee",
}
FUNCTION_ERROR = "The Lambda function was successfully invoked but it returned an error result."


def record_of(event: dict[str, Any]) -> bytes:
    """The record the fan-out sends Firehose for ``event`` (the compact form)."""
    return firehose_record(Sale(event_id=event["id"], event_time=event["time"], detail=event["detail"]))


def envelope(data: bytes, code: str, message: str, offset_s: int, *, capitalised: bool = False) -> dict[str, Any]:
    """One error envelope as Firehose writes it (ErrorCode/ErrorMessage for format conversion)."""
    code_key, message_key = ("ErrorCode", "ErrorMessage") if capitalised else ("errorCode", "errorMessage")
    return {
        "attemptsMade": 4,
        "arrivalTimestamp": ARRIVAL + offset_s * 1000,
        code_key: code,
        message_key: message,
        "attemptEndingTimestamp": ARRIVAL + offset_s * 1000 + 60_000,
        "rawData": base64.b64encode(data).decode(),
    }


def lines(*envelopes: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in envelopes)


@pytest.fixture
def error_objects(stack: Stack) -> dict[str, Any]:
    """An empty lake bucket, then one object of each error type (and one that is not JSON)."""
    return seed_error_objects(stack)


def seed_error_objects(stack: Stack) -> dict[str, Any]:
    """Empty the lake bucket, then write one object of each error type (and one that is not JSON)."""
    s3 = stack.client("s3")
    for key in stack.bucket():
        s3.delete_object(Bucket=BUCKET, Key=key)
    events = valid_events(6, seed=5)
    bad = json.loads(json.dumps(events[5]))
    bad["detail"]["tenantId"] = "../x"  # the transform refuses it: it would escape its partition
    # Format conversion and the partition limit fail after the transform: their records are lake rows, which
    # carry no tenant_id (a partition key). events[4]'s tenant has a folder in the lake; events[3]'s has none.
    rows = [normaliser.normalise(read_record(record_of(event)))[0] for event in events[3:5]]
    partition_row, converted_row = (json.dumps(row).encode() + b"\n" for row in rows)
    s3.put_object(Bucket=BUCKET, Key=f"{LAKE_PREFIX}tenant_id={events[4]['detail']['tenantId']}/year=2025/x.parquet")
    good = [record_of(event) for event in events[:3]]
    bodies = {
        "good": lines(
            envelope(good[0], "Lambda.FunctionError", FUNCTION_ERROR, 0),
            envelope(good[1], "Lambda.FunctionError", FUNCTION_ERROR, 5),
        ),
        "mixed": lines(
            envelope(good[2], "Lambda.FunctionError", FUNCTION_ERROR, 10),
            envelope(
                record_of(bad),
                "Lambda.ProcessingFailedStatus",
                "The Lambda function returned the ProcessingFailed status for the record.",
                11,
            ),
        ),
        "converted": lines(
            envelope(converted_row, "DataFormatConversion.MalformedData", "bad value", 20, capitalised=True)
        ),
        # Newline-less concatenation is accepted too.
        "partitions": json.dumps(
            envelope(partition_row, "PartitionCountExceeded", "The number of active partitions has exceeded", 30)
        ).encode(),
        "unreadable": b"this is not an error envelope",
    }
    for name, body in bodies.items():
        s3.put_object(Bucket=BUCKET, Key=KEYS[name], Body=body)
    return {"events": events, "good": good, "bad": record_of(bad), "bodies": bodies, "rows": rows}


def lake_data(stack: Stack) -> bytes:
    """Everything moto's Firehose delivered to the lake prefix, concatenated."""
    return b"".join(body for key, body in sorted(stack.bucket().items()) if key.startswith(LAKE_PREFIX))


def test_list_groups_by_type_code_and_message_with_counts_and_times(
    stack: Stack, error_objects: dict[str, Any]
) -> None:
    status, out, _ = stack.run("errors", "list", "--json")

    assert status == 0
    listing = json.loads(out)
    assert listing["objects"] == 5 and listing["records"] == 6
    groups = {(g["errorType"], g["errorCode"]): g for g in listing["groups"]}
    function_error = groups[("processing-failed", "Lambda.FunctionError")]
    assert function_error["records"] == 3
    assert function_error["objects"] == [KEYS["good"], KEYS["mixed"]]
    assert function_error["errorMessage"] == FUNCTION_ERROR
    assert (function_error["firstArrival"], function_error["lastArrival"]) == (ARRIVAL, ARRIVAL + 10_000)
    assert function_error["eventIds"] == [event["id"] for event in error_objects["events"][:3]]
    assert groups[("processing-failed", "Lambda.ProcessingFailedStatus")]["records"] == 1
    converted = groups[("format-conversion-failed", "DataFormatConversion.MalformedData")]
    assert converted["errorMessage"] == "bad value"  # read from the capitalised keys
    assert converted["eventIds"] == [error_objects["events"][4]["id"]]  # event_id of the transformed row
    assert groups[("activePartitionExceeded", "PartitionCountExceeded")]["records"] == 1
    assert list(listing["unreadable"]) == [KEYS["unreadable"]]


def test_list_text_for_one_type_shows_decoded_records(stack: Stack, error_objects: dict[str, Any]) -> None:
    status, out, _ = stack.run("errors", "list", "--type", "activePartitionExceeded", "--records")

    assert status == 0
    assert f"s3://{BUCKET}/errors/activePartitionExceeded/: 1 object(s), 1 record(s)" in out
    assert "arrived 2026-01-15 09:00:30 .. 2026-01-15 09:00:30 UTC" in out
    assert error_objects["events"][3]["detail"]["productId"] in out  # the decoded rawData (a lake row)
    assert "processing-failed" not in out


def test_reprocess_dry_run_changes_nothing(stack: Stack, error_objects: dict[str, Any]) -> None:
    before = stack.bucket()

    status, out, _ = stack.run("errors", "reprocess", "--dry-run")

    assert status == 1  # records would be left behind
    assert "records would be sent to 'carousel-sales-test': 4 (1 lake row(s) with the tenant" in out
    assert "(dry run: nothing sent, moved or written)" in out
    assert f"objects would be moved to s3://{BUCKET}/reprocessed/: 2" in out
    assert stack.bucket() == before


def sent_rows(stack: Stack) -> list[dict[str, Any]]:
    """The lake rows (records with a sale_id and a tenant_id) the delivery stream received.

    Read object by object: moto writes each batch as one object, and the compact records' batches (binary, no
    newline) would run into a row's line if the objects were concatenated."""
    bodies = [body for key, body in sorted(stack.bucket().items()) if key.startswith(LAKE_PREFIX)]
    lines = [json.loads(line) for body in bodies if body.startswith(b"{") for line in body.splitlines()]
    return [line for line in lines if "sale_id" in line]


def test_reprocess_resends_good_records_moves_their_objects_and_keeps_every_failing_record(
    stack: Stack, error_objects: dict[str, Any]
) -> None:
    before = stack.bucket()

    status, out, _ = stack.run("errors", "reprocess")

    assert status == 1  # some records would fail again and stay
    after = stack.bucket()
    delivered = lake_data(stack)
    for record in error_objects["good"]:
        assert delivered.count(record) == 1
    assert error_objects["bad"] not in delivered
    # Fully reprocessed objects are kept whole under reprocessed/ and gone from the error prefix.
    for name in ("good", "converted", "mixed"):
        assert KEYS[name] not in after
        assert after[f"reprocessed/{KEYS[name]}"] == before[KEYS[name]]
    # The mixed object's failing record stays under the error prefix, its envelope unchanged.
    remaining = [json.loads(line) for line in after[f"{KEYS['mixed']}.still-failing"].splitlines()]
    assert [base64.b64decode(item["rawData"]) for item in remaining] == [error_objects["bad"]]
    assert remaining[0]["errorCode"] == "Lambda.ProcessingFailedStatus"
    # The conversion failure's lake row went back with its tenant (found in the lake's folders, checked against
    # its sale_id); the transform turns it into the very row and partition it would have had.
    converted_event = error_objects["events"][4]
    (row,) = sent_rows(stack)
    assert row["tenant_id"] == converted_event["detail"]["tenantId"]
    assert normaliser.normalise(row) == normaliser.normalise(read_record(record_of(converted_event)))
    # The partition-limit row's tenant has no lake folder: it stays, and the reason says how to name it.
    assert after[KEYS["partitions"]] == before[KEYS["partitions"]]
    assert "none of the 1 known tenant(s) reproduces its sale_id; name its tenant with --tenant" in out
    assert after[KEYS["unreadable"]] == before[KEYS["unreadable"]]
    assert "tenantId: must match" in out


def test_reprocess_with_a_named_tenant_restores_a_row_whose_tenant_has_no_lake_folder(
    stack: Stack, error_objects: dict[str, Any]
) -> None:
    tenant = error_objects["events"][3]["detail"]["tenantId"]

    status, out, _ = stack.run("errors", "reprocess", "--type", "activePartitionExceeded", "--tenant", tenant)

    assert status == 0
    assert "records sent to 'carousel-sales-test': 1 (1 lake row(s) with the tenant their sale_id names)" in out
    assert f"reprocessed/{KEYS['partitions']}" in stack.bucket()
    (row,) = sent_rows(stack)
    assert row["tenant_id"] == tenant and row["sale_id"] == error_objects["rows"][0]["sale_id"]


def test_reprocess_again_finds_nothing_new(stack: Stack, error_objects: dict[str, Any]) -> None:
    stack.run("errors", "reprocess")
    delivered = lake_data(stack)
    after_first = stack.bucket()

    status, out, _ = stack.run("errors", "reprocess", "--json")

    assert status == 1
    assert {item["action"] for item in json.loads(out)["objects"]} == {"left"}
    assert stack.bucket() == after_first
    assert lake_data(stack) == delivered


class FlakyFirehose:
    """Rejects every record containing ``marker`` (FailedPutCount), passes the rest to moto."""

    def __init__(self, real: Any, marker: bytes) -> None:
        self._real = real
        self._marker = marker

    def put_record_batch(self, DeliveryStreamName: str, Records: list[dict[str, bytes]]) -> dict[str, Any]:  # noqa: N803
        failing = [self._marker in record["Data"] for record in Records]
        passed = [record for record, fails in zip(Records, failing, strict=True) if not fails]
        if passed:
            self._real.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=passed)
        responses = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "injected"} if fails else {"RecordId": "x"}
            for fails in failing
        ]
        return {"FailedPutCount": sum(failing), "RequestResponses": responses}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_object_whose_records_firehose_keeps_rejecting_stays_in_place(
    stack: Stack, error_objects: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = error_objects["events"][1]["id"].encode()  # the second record of the "good" object
    original: Callable[[AwsOptions, str], Any] = AwsOptions.client

    def client(self: AwsOptions, service: str) -> Any:
        real = original(self, service)
        return FlakyFirehose(real, marker) if service == "firehose" else real

    monkeypatch.setattr(AwsOptions, "client", client)
    before = stack.bucket()

    status, out, _ = stack.run("errors", "reprocess", "--type", "processing-failed", "--json")

    assert status == 1
    outcomes = {item["key"]: item for item in json.loads(out)["objects"]}
    assert outcomes[KEYS["good"]]["action"] == "failed"
    assert "ServiceUnavailableException" in outcomes[KEYS["good"]]["detail"]
    after = stack.bucket()
    assert after[KEYS["good"]] == before[KEYS["good"]]
    assert f"reprocessed/{KEYS['good']}" not in after
    assert outcomes[KEYS["mixed"]]["action"] == "split"  # its neighbours were not held back


class DenyingS3:
    """Refuses copy_object for one key (AccessDenied), as a bucket policy could; everything else is moto."""

    def __init__(self, real: Any, key: str) -> None:
        self._real = real
        self._key = key

    def copy_object(self, **kwargs: Any) -> Any:
        from botocore.exceptions import ClientError

        if kwargs["CopySource"]["Key"] == self._key:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "denied"}}, "CopyObject")
        return self._real.copy_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_an_object_that_cannot_be_copied_is_not_deleted_and_the_others_go_on(
    stack: Stack, error_objects: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    original: Callable[[AwsOptions, str], Any] = AwsOptions.client

    def client(self: AwsOptions, service: str) -> Any:
        real = original(self, service)
        return DenyingS3(real, KEYS["good"]) if service == "s3" else real

    monkeypatch.setattr(AwsOptions, "client", client)
    before = stack.bucket()

    status, out, _ = stack.run("errors", "reprocess", "--type", "processing-failed", "--json")

    assert status == 1
    outcomes = {item["key"]: item for item in json.loads(out)["objects"]}
    assert outcomes[KEYS["good"]]["action"] == "failed"
    assert "could not be moved: AccessDenied: denied" in outcomes[KEYS["good"]]["detail"]
    after = stack.bucket()
    assert after[KEYS["good"]] == before[KEYS["good"]]
    assert outcomes[KEYS["mixed"]]["action"] == "split" and f"reprocessed/{KEYS['mixed']}" in after


# -- compact records and several streams -------------------------------------------------------------------------

SECOND_STREAM = f"{STREAM}-1"
SECOND_PREFIX = "sales_history_stream_1/"
MIXED_FORMS = f"errors/processing-failed/{DAY}carousel-sales-1-2026-01-15-09-15-00-ffff"
#: A compact record whose header length runs past its end.
MALFORMED = sale_record.MAGIC + (500).to_bytes(4, "little") + b'{"eventId":"x"}'


def two_stream_stack(stack: Stack, folder: Path) -> Stack:
    """The stack with a second Direct PUT stream (its own lake prefix) and outputs naming both streams."""
    firehose = stack.client("firehose")
    if SECOND_STREAM not in firehose.list_delivery_streams()["DeliveryStreamNames"]:
        firehose.create_delivery_stream(
            DeliveryStreamName=SECOND_STREAM,
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose-test",
                "BucketARN": f"arn:aws:s3:::{BUCKET}",
                "Prefix": SECOND_PREFIX,
            },
        )
    values = dict(load_outputs(stack.outputs).values)
    outputs = folder / "outputs.json"
    write_outputs(outputs, {**values, "delivery_stream_names": [STREAM, SECOND_STREAM]})
    return dataclasses.replace(stack, outputs=outputs)


def delivered_to(stack: Stack, prefix: str) -> bytes:
    return b"".join(body for key, body in sorted(stack.bucket().items()) if key.startswith(prefix))


@pytest.fixture
def mixed_forms(stack: Stack, error_objects: dict[str, Any]) -> dict[str, Any]:
    """Beside the usual objects: one holding compact records, the JSON form of one, and a malformed compact one."""
    events = valid_events(8, seed=11)
    compact = [record_of(event) for event in events[:7]]
    as_json = json.dumps(sale_record.decode(record_of(events[7]))).encode() + b"\n"
    body = lines(
        *(envelope(data, "Lambda.FunctionError", FUNCTION_ERROR, 40 + n) for n, data in enumerate(compact)),
        envelope(as_json, "Lambda.FunctionError", FUNCTION_ERROR, 47),
        envelope(MALFORMED, "Lambda.FunctionError", FUNCTION_ERROR, 48),
    )
    stack.client("s3").put_object(Bucket=BUCKET, Key=MIXED_FORMS, Body=body)
    return {"events": events, "compact": compact, "json": as_json}


def test_list_reads_compact_records_as_their_json_form_and_names_a_malformed_one(
    stack: Stack, mixed_forms: dict[str, Any]
) -> None:
    status, out, _ = stack.run("errors", "list", "--type", "processing-failed", "--json")

    assert status == 0
    groups = {g["errorCode"]: g for g in json.loads(out)["groups"]}
    function_error = groups["Lambda.FunctionError"]
    assert [event["id"] for event in mixed_forms["events"]] == function_error["eventIds"][-8:]
    assert function_error["malformed"] == {
        f"{MIXED_FORMS}#8": "malformed compact record: header of 500 bytes runs past the record's 23"
    }

    status, out, _ = stack.run("errors", "list", "--type", "processing-failed", "--records")

    assert status == 0
    shown = next(line for line in out.splitlines() if line.startswith(f"  {MIXED_FORMS}#0: "))
    assert shown.startswith(f'  {MIXED_FORMS}#0: {{"productId":')  # the JSON form, not the bytes
    assert f'"eventId":"{mixed_forms["events"][0]["id"]}"' in shown or shown.endswith("chars)")
    assert f"{MIXED_FORMS}#8: malformed compact record: header of 500 bytes" in out
    assert not [line for line in out.splitlines() if line.startswith(f"  {MIXED_FORMS}") and "not JSON" in line]

    status, out, _ = stack.run("errors", "list", "--type", "processing-failed")

    assert "unreadable data: 1 record(s)" in out
    assert f"{MIXED_FORMS}#8: malformed compact record: header of 500 bytes" in out


def test_reprocess_puts_compact_records_back_as_they_were_spread_over_two_streams(
    stack: Stack, mixed_forms: dict[str, Any], tmp_path: Path
) -> None:
    two = two_stream_stack(stack, tmp_path)
    before = stack.bucket()

    status, out, _ = two.run("errors", "reprocess", "--type", "processing-failed", "--json")

    assert status == 1  # the malformed record (and the mixed object's bad one) stay
    document = json.loads(out)
    assert (document["stream"], document["streams"]) == (STREAM, [STREAM, SECOND_STREAM])
    outcome = next(item for item in document["objects"] if item["key"] == MIXED_FORMS)
    assert outcome["action"] == "split" and outcome["recordsSent"] == 8
    reason = "malformed compact record: header of 500 bytes runs past the record's 23"
    assert outcome["stillFailing"] == {reason: 1}
    lakes = {STREAM: delivered_to(stack, LAKE_PREFIX), SECOND_STREAM: delivered_to(stack, SECOND_PREFIX)}
    for data in [*mixed_forms["compact"], mixed_forms["json"]]:
        chosen = [STREAM, SECOND_STREAM][stream_index(read_record(data)["saleId"], 2)]
        other = SECOND_STREAM if chosen == STREAM else STREAM
        assert lakes[chosen].count(data) == 1, "put back byte for byte, into the stream its sale id names"
        assert data not in lakes[other]
    assert lakes[STREAM] and lakes[SECOND_STREAM], "eleven sales fall on both streams"
    assert sum(outcome["sentByStream"].values()) == 8
    after = stack.bucket()
    assert after[f"reprocessed/{MIXED_FORMS}"] == before[MIXED_FORMS]
    (kept,) = [json.loads(line) for line in after[f"{MIXED_FORMS}.still-failing"].splitlines()]
    assert base64.b64decode(kept["rawData"]) == MALFORMED


def test_reprocess_text_names_every_stream(stack: Stack, mixed_forms: dict[str, Any], tmp_path: Path) -> None:
    two = two_stream_stack(stack, tmp_path)

    status, out, _ = two.run("errors", "reprocess", "--type", "processing-failed", "--dry-run")

    assert status == 1
    assert f"records would be sent to 2 streams by sale id ('{STREAM}': " in out
    assert f"'{SECOND_STREAM}': " in out
