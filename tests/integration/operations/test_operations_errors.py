"""``sales-pipeline errors list | reprocess`` against a moto_server bucket holding each type of error object."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from fanout_lambda.sale import Sale, firehose_record
from operations.aws import AwsOptions
from tests.integration.recovery_stack import BUCKET, LAKE_PREFIX, Stack, stack, valid_events
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
    """The record the fan-out sends Firehose for ``event``."""
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
    rows = [normaliser.normalise(json.loads(record_of(event)))[0] for event in events[3:5]]
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
    """The lake rows (records with a sale_id and a tenant_id) the delivery stream received."""
    lines = [json.loads(line) for line in lake_data(stack).splitlines() if line.startswith(b"{")]
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
    assert normaliser.normalise(row) == normaliser.normalise(json.loads(record_of(converted_event)))
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
