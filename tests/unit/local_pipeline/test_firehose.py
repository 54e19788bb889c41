"""The local delivery stream's own rules, with a fake transform and an in-memory S3 (no moto, no network)."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

from fanout_lambda.adapters import FirehoseSender
from local_pipeline.config import MIB, StreamConfig
from local_pipeline.firehose import MAX_RECORD_BYTES, DirectPutQuota, LocalDeliveryStream, SimulatedClock
from tests.unit.local_pipeline.test_parquet import row

T0 = 1_768_467_600_000  # 2026-01-15T09:00:00Z
CONFIG = StreamConfig.from_declarations("stream-under-test")


class MemoryS3:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes) -> None:  # noqa: N803
        self.objects[Key] = Body

    def under(self, prefix: str) -> dict[str, bytes]:
        return {k: v for k, v in self.objects.items() if k.startswith(prefix)}

    def error_lines(self, error_type: str) -> list[dict[str, Any]]:
        return [
            orjson.loads(line) for body in self.under(f"errors/{error_type}/").values() for line in body.splitlines()
        ]


class MemoryCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:  # noqa: N803
        self.calls.append({"Namespace": Namespace, "MetricData": MetricData})


def ok_transform(keys: Callable[[dict[str, Any]], dict[str, str]] | None = None) -> Callable[..., Any]:
    """A transform that passes records through with tenant/year/month keys taken from the record."""

    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        out = []
        for record in event["records"]:
            body = orjson.loads(base64.b64decode(record["data"]))
            part = keys(body) if keys else {"tenant_id": body.get("tenant", "t1"), "year": "2025", "month": "12"}
            out.append(
                {
                    "recordId": record["recordId"],
                    "result": "Ok",
                    "data": record["data"],
                    "metadata": {"partitionKeys": part},
                }
            )
        return {"records": out}

    return transform


class Harness:
    def __init__(self, transform: Callable[..., Any], **config: Any) -> None:
        self.calls: list[dict[str, Any]] = []
        self.s3 = MemoryS3()
        self.cloudwatch = MemoryCloudWatch()
        self.clock = SimulatedClock(T0)

        def recording(event: dict[str, Any], context: Any) -> Any:
            self.calls.append(event)
            return transform(event, context)

        self.stream = LocalDeliveryStream(
            dataclasses.replace(CONFIG, **config),
            transform=recording,
            s3=self.s3,
            bucket="lake",
            clock=self.clock,
            cloudwatch=self.cloudwatch,
        )

    def put(self, *records: bytes, at_ms: int | None = None) -> dict[str, Any]:
        if at_ms is not None:
            self.clock.advance_to(at_ms)
        return self.stream.put_record_batch(
            DeliveryStreamName="stream-under-test", Records=[{"Data": r} for r in records]
        )

    def lake(self) -> dict[str, bytes]:
        return self.s3.under("sales_history/")


def record(event_id: str = "e1", tenant: str = "t1", size: int = 0, **fields: Any) -> bytes:
    body = row(event_id=event_id, **fields)
    body["tenant"] = tenant
    if size:
        body["description"] = "x" * size
    return orjson.dumps(body) + b"\n"


# -- PutRecordBatch limits ---------------------------------------------------------------------------------


def test_put_record_batch_answers_like_the_api() -> None:
    h = Harness(ok_transform())
    response = h.put(record("a"), record("b"))
    assert response["FailedPutCount"] == 0
    assert response["Encrypted"] is False
    assert len({r["RecordId"] for r in response["RequestResponses"]}) == 2


@pytest.mark.parametrize(
    ("records", "code"),
    [
        ([b"x"] * 501, "ValidationException"),
        ([b"x" * (MAX_RECORD_BYTES + 1)], "ValidationException"),
        ([b"x" * (900 * 1024)] * 5, "InvalidArgumentException"),
        ([], "ValidationException"),
    ],
)
def test_put_record_batch_enforces_the_limits_moto_ignores(records: list[bytes], code: str) -> None:
    h = Harness(ok_transform())
    with pytest.raises(ClientError) as raised:
        h.put(*records)
    assert raised.value.response["Error"]["Code"] == code
    assert h.stream.stats.incoming_records == 0


def test_an_unknown_stream_name_is_not_found() -> None:
    h = Harness(ok_transform())
    with pytest.raises(ClientError) as raised:
        h.stream.put_record_batch(DeliveryStreamName="other", Records=[{"Data": b"x"}])
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# -- the processor buffer ----------------------------------------------------------------------------------


def test_the_processor_waits_for_its_interval_then_invokes() -> None:
    h = Harness(ok_transform())
    h.put(record("a"))
    h.stream.advance_to(T0 + 59_999)
    assert h.calls == []
    h.stream.advance_to(T0 + 60_000)
    assert len(h.calls) == 1


def test_processor_batches_never_exceed_the_processor_buffer_size() -> None:
    h = Harness(ok_transform(), processor_buffer_size_bytes=64 * 1024)
    for i in range(40):
        h.put(record(f"e{i}", size=5000))
    h.stream.close()
    sizes = [sum(len(base64.b64decode(r["data"])) for r in call["records"]) for call in h.calls]
    assert len(h.calls) > 1
    assert max(sizes) <= 64 * 1024
    assert sum(len(call["records"]) for call in h.calls) == 40


def test_the_transform_event_has_the_firehose_shape() -> None:
    h = Harness(ok_transform())
    h.put(record("a"))
    h.stream.close()
    event = h.calls[0]
    assert set(event) == {"invocationId", "deliveryStreamArn", "region", "records"}
    assert event["deliveryStreamArn"].endswith(":deliverystream/stream-under-test")
    assert set(event["records"][0]) == {"recordId", "approximateArrivalTimestamp", "data"}
    assert event["records"][0]["approximateArrivalTimestamp"] == T0


# -- results by record id ----------------------------------------------------------------------------------


def test_dropped_records_are_discarded_and_processing_failed_go_to_the_error_prefix() -> None:
    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        a, b, c = event["records"]
        return {
            "records": [
                {
                    "recordId": a["recordId"],
                    "result": "Ok",
                    "data": a["data"],
                    "metadata": {"partitionKeys": {"tenant_id": "t1", "year": "2025", "month": "12"}},
                },
                {"recordId": b["recordId"], "result": "Dropped", "data": b["data"]},
                {"recordId": c["recordId"], "result": "ProcessingFailed", "data": c["data"]},
            ]
        }

    h = Harness(transform)
    h.put(record("a"), record("b"), record("c"))
    h.stream.close()
    assert h.stream.stats.records_dropped == 1
    assert h.stream.stats.rows_delivered == 1
    [line] = h.s3.error_lines("processing-failed")
    assert line["errorCode"] == "Lambda.ProcessingFailedStatus"
    assert orjson.loads(base64.b64decode(line["rawData"]))["event_id"] == "c"


def test_a_missing_record_id_fails_that_record_only() -> None:
    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"records": ok_transform()(event, context)["records"][:1]}

    h = Harness(transform)
    h.put(record("a"), record("b"))
    h.stream.close()
    assert h.stream.stats.rows_delivered == 1
    [line] = h.s3.error_lines("processing-failed")
    assert line["errorCode"] == "Lambda.MissingRecordId"
    assert orjson.loads(base64.b64decode(line["rawData"]))["event_id"] == "b"


def test_unknown_and_duplicated_record_ids_fail() -> None:
    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        a, b = ok_transform()(event, context)["records"]
        return {"records": [a, a, {**b, "recordId": "unknown"}]}

    h = Harness(transform)
    h.put(record("a"), record("b"))
    h.stream.close()
    codes = sorted(line["errorCode"] for line in h.s3.error_lines("processing-failed"))
    assert codes == ["Lambda.DuplicatedRecordId", "Lambda.MissingRecordId"]
    assert h.lake() == {}


def test_invocation_errors_are_retried_number_of_retries_times_then_fail_every_record() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    h = Harness(broken)
    h.put(record("a"), record("b"))
    h.stream.close()
    assert len(h.calls) == 1 + CONFIG.processor_number_of_retries
    lines = h.s3.error_lines("processing-failed")
    assert [line["errorCode"] for line in lines] == ["Lambda.FunctionError"] * 2
    assert {line["attemptsMade"] for line in lines} == {1 + CONFIG.processor_number_of_retries}


def test_a_transient_invocation_error_is_retried_and_nothing_is_lost() -> None:
    attempts = []

    def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) == 1:
            raise TimeoutError("cold start")
        return ok_transform()(event, context)

    h = Harness(flaky)
    h.put(record("a"))
    h.stream.close()
    assert h.stream.stats.rows_delivered == 1
    assert h.s3.under("errors/") == {}


@pytest.mark.parametrize(
    "response",
    [{"items": []}, {"records": {"recordId": "x"}}, None, "not json", ["records"]],
    ids=["no-records", "records-not-a-list", "null", "a-string", "a-list"],
)
def test_a_response_that_is_not_the_firehose_shape_is_a_function_error(response: Any) -> None:
    h = Harness(lambda event, context: response)
    h.put(record("a"))
    h.stream.close()
    lines = h.s3.error_lines("processing-failed")
    assert [line["errorCode"] for line in lines] == ["Lambda.FunctionError"]
    assert lines[0]["attemptsMade"] == CONFIG.processor_number_of_retries + 1
    assert len(h.calls) == CONFIG.processor_number_of_retries + 1


def entry_rewriter(bad: Callable[[dict[str, Any]], Any]) -> Callable[..., Any]:
    """ok_transform, with the entry of the record whose event id is "bad" replaced by ``bad(entry)``."""
    good = ok_transform()

    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = good(event, context)
        by_id = {r["recordId"]: r for r in event["records"]}
        response["records"] = [
            bad(entry)
            if orjson.loads(base64.b64decode(by_id[entry["recordId"]]["data"]))["event_id"] == "bad"
            else entry
            for entry in response["records"]
        ]
        return response

    return transform


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (lambda entry: "not an object", "Lambda.MissingRecordId"),
        (lambda entry: [entry], "Lambda.MissingRecordId"),
        (lambda entry: {**entry, "recordId": 12}, "Lambda.MissingRecordId"),
        (lambda entry: {**entry, "data": "***not base64***"}, "Lambda.InvalidResult"),
        (lambda entry: {**entry, "data": entry["data"][:-3]}, "Lambda.InvalidResult"),
        (lambda entry: {**entry, "data": None}, "Lambda.InvalidResult"),
        (lambda entry: {**entry, "metadata": {"partitionKeys": [["tenant_id", "t1"]]}}, "Lambda.InvalidResult"),
        (
            lambda entry: {**entry, "metadata": {"partitionKeys": {"tenant_id": 1, "year": "2025"}}},
            "Lambda.InvalidResult",
        ),
        (lambda entry: {**entry, "metadata": "tenant_id=t1"}, "Lambda.InvalidResult"),
    ],
    ids=[
        "entry-a-string",
        "entry-a-list",
        "record-id-not-a-string",
        "data-not-base64",
        "data-truncated-base64",
        "data-null",
        "partition-keys-a-list",
        "partition-key-not-a-string",
        "metadata-not-an-object",
    ],
)
def test_a_malformed_entry_fails_its_record_only(bad: Callable[[dict[str, Any]], Any], code: str) -> None:
    h = Harness(entry_rewriter(bad))
    h.put(record("good"), record("bad"), record("also-good"))
    h.stream.close()
    assert h.stream.stats.rows_delivered == 2
    assert h.stream.stats.invocation_errors == 0
    [line] = h.s3.error_lines("processing-failed")
    assert line["errorCode"] == code
    assert orjson.loads(base64.b64decode(line["rawData"]))["event_id"] == "bad"


def test_ok_without_the_partition_keys_the_prefix_needs_fails() -> None:
    h = Harness(ok_transform(lambda body: {"tenant_id": "t1"}))
    h.put(record("a"))
    h.stream.close()
    [line] = h.s3.error_lines("processing-failed")
    assert line["errorCode"] == "DynamicPartitioning.PartitionKeyMissing"


def test_the_error_envelope_has_firehose_fields() -> None:
    h = Harness(lambda event, context: {"records": []})
    h.put(record("a"), at_ms=T0 + 5)
    h.stream.close()
    [line] = h.s3.error_lines("processing-failed")
    assert set(line) == {
        "attemptsMade",
        "arrivalTimestamp",
        "errorCode",
        "errorMessage",
        "attemptEndingTimestamp",
        "rawData",
        "lambdaArn",
    }
    assert line["arrivalTimestamp"] == T0 + 5
    assert line["attemptEndingTimestamp"] >= line["arrivalTimestamp"]
    assert line["lambdaArn"].startswith("arn:aws:lambda:")
    assert base64.b64decode(line["rawData"]) == record("a")
    [key] = h.s3.under("errors/")
    assert key.startswith("errors/processing-failed/year=2026/month=01/day=15/stream-under-test-1-")


# -- destination buffers -----------------------------------------------------------------------------------


def test_partitions_flush_when_their_interval_elapses() -> None:
    h = Harness(ok_transform())
    h.put(record("a"))
    h.stream.advance_to(T0 + 60_000)  # the processor ran; the partition buffer opened now
    assert h.lake() == {}
    h.stream.advance_to(T0 + 60_000 + 299_999)
    assert h.lake() == {}
    h.stream.advance_to(T0 + 60_000 + 300_000)
    assert len(h.lake()) == 1


def test_partitions_flush_when_their_size_is_reached() -> None:
    h = Harness(ok_transform(), buffering_size_bytes=1 * MIB, processor_buffer_size_bytes=256 * 1024)
    for i in range(30):
        h.put(record(f"e{i}", size=60_000))
    assert len(h.lake()) >= 1  # delivered before any interval elapsed
    h.stream.close()
    rows = sum(pq.read_table(io.BytesIO(body)).num_rows for body in h.lake().values())
    assert rows == 30


def test_the_final_flush_delivers_everything_left() -> None:
    h = Harness(ok_transform())
    h.put(record("a", tenant="t1"), record("b", tenant="t2"))
    h.stream.close()
    assert sorted(k.split("/")[1] for k in h.lake()) == ["tenant_id=t1", "tenant_id=t2"]
    assert h.stream.stats.rows_delivered == 2


def test_each_partition_gets_its_own_objects_under_the_evaluated_prefix() -> None:
    h = Harness(
        ok_transform(lambda b: {"tenant_id": b["tenant"], "year": b["sold_date"][:4], "month": b["sold_date"][5:7]})
    )
    h.put(record("a", tenant="t1", sold_date="2025-12-30"), record("b", tenant="t1", sold_date="2026-01-02"))
    h.stream.close()
    prefixes = sorted(k.rsplit("/", 1)[0] for k in h.lake())
    assert prefixes == [
        "sales_history/tenant_id=t1/year=2025/month=12",
        "sales_history/tenant_id=t1/year=2026/month=01",
    ]


def test_records_past_the_active_partition_limit_go_to_the_error_prefix() -> None:
    h = Harness(ok_transform(), active_partitions_limit=2)
    h.put(record("a", tenant="t1"), record("b", tenant="t2"), record("c", tenant="t3"), record("d", tenant="t1"))
    h.stream.close()
    assert h.stream.stats.partition_exceeded == 1
    assert h.stream.stats.rows_delivered == 3
    [line] = h.s3.error_lines("activePartitionExceeded")
    assert line["errorCode"] == "PartitionCountExceeded"
    names = [d["MetricName"] for call in h.cloudwatch.calls for d in call["MetricData"]]
    assert "PartitionCountExceeded" in names
    exceeded = [
        d["StatisticValues"]["Maximum"]
        for call in h.cloudwatch.calls
        for d in call["MetricData"]
        if d["MetricName"] == "PartitionCountExceeded"
    ]
    assert 1.0 in exceeded
    assert line["errorMessage"] == "The number of active partitions has exceeded the configured limit"


def test_partition_count_exceeded_is_zero_on_normal_deliveries() -> None:
    h = Harness(ok_transform())
    h.put(record("a", tenant="t1"), record("b", tenant="t2"))
    h.stream.close()
    # one statistic set per minute: two deliveries, both 0
    [values] = [
        d["StatisticValues"]
        for call in h.cloudwatch.calls
        for d in call["MetricData"]
        if d["MetricName"] == "PartitionCountExceeded"
    ]
    assert values == {"SampleCount": 2.0, "Sum": 0.0, "Minimum": 0.0, "Maximum": 0.0}


def test_succeed_processing_counts_ok_and_dropped_records() -> None:
    def transform(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response = ok_transform()(event, context)
        results = ["Ok", "Dropped", "ProcessingFailed"]
        for entry, result in zip(response["records"], results, strict=True):
            entry["result"] = result
        return response

    h = Harness(transform)
    h.put(record("a"), record("b"), record("c"))
    h.stream.close()
    metrics = {d["MetricName"]: d["StatisticValues"]["Sum"] for call in h.cloudwatch.calls for d in call["MetricData"]}
    assert metrics["SucceedProcessing.Records"] == 2
    assert metrics["SucceedProcessing.Bytes"] == len(record("a")) + len(record("b"))


def test_a_delivered_partition_frees_its_slot() -> None:
    h = Harness(ok_transform(), active_partitions_limit=1)
    h.put(record("a", tenant="t1"))
    h.stream.advance_to(T0 + 60_000 + 300_000)
    h.put(record("b", tenant="t2"))
    h.stream.close()
    assert h.stream.stats.partition_exceeded == 0
    assert h.stream.stats.rows_delivered == 2


def test_conversion_failures_go_to_format_conversion_failed_with_the_documented_envelope() -> None:
    h = Harness(ok_transform())
    h.put(record("good"), record("bad", days_to_sell="soon"))
    h.stream.close()
    assert h.stream.stats.rows_delivered == 1
    [line] = h.s3.error_lines("format-conversion-failed")
    assert line["ErrorCode"] == "DataFormatConversion.MalformedData"
    assert "days_to_sell" in line["ErrorMessage"]
    assert line["dataCatalogTable"]["tableName"] == CONFIG.glue_table["table"]
    assert orjson.loads(base64.b64decode(line["rawData"]))["event_id"] == "bad"


def test_metrics_use_the_aws_firehose_names_and_dimension() -> None:
    h = Harness(ok_transform())
    h.put(record("a"))
    h.stream.close()
    [call] = h.cloudwatch.calls
    assert call["Namespace"] == "AWS/Firehose"
    names = {d["MetricName"] for d in call["MetricData"]}
    assert {
        "IncomingRecords",
        "IncomingBytes",
        "IncomingPutRequests",
        "ExecuteProcessing.Duration",
        "ExecuteProcessing.Success",
        "SucceedProcessing.Records",
        "SucceedProcessing.Bytes",
        "SucceedConversion.Records",
        "SucceedConversion.Bytes",
        "DeliveryToS3.Success",
        "DeliveryToS3.Records",
        "DeliveryToS3.Bytes",
        "DeliveryToS3.ObjectCount",
        "DeliveryToS3.DataFreshness",
        "PartitionCount",
    } <= names
    assert {tuple(d["Dimensions"][0].values()) for d in call["MetricData"]} == {
        ("DeliveryStreamName", "stream-under-test")
    }


# -- Direct PUT quotas ---------------------------------------------------------------------------------------


def quota_harness(**quota: int) -> Harness:
    h = Harness(ok_transform())
    defaults = {"records_per_second": 1000, "requests_per_second": 1000, "bytes_per_second": 10 * MIB}
    h.stream.quota = DirectPutQuota(**{**defaults, **quota})
    return h


@pytest.mark.parametrize(
    ("region", "requests", "records", "mib"),
    [
        ("us-east-1", 2000, 500_000, 5),
        ("us-west-2", 2000, 500_000, 5),
        ("eu-west-1", 2000, 500_000, 5),
        ("ap-southeast-2", 1000, 100_000, 1),
        ("eu-central-1", 1000, 100_000, 1),
    ],
)
def test_the_quotas_are_the_region_s(region: str, requests: int, records: int, mib: int) -> None:
    quota = DirectPutQuota.for_region(region)
    assert (quota.requests_per_second, quota.records_per_second, quota.bytes_per_second) == (
        requests,
        records,
        mib * MIB,
    )


def test_a_call_past_the_request_quota_fails_whole_with_service_unavailable() -> None:
    h = quota_harness(requests_per_second=2)
    h.put(record("a"))
    h.put(record("b"))
    with pytest.raises(ClientError) as raised:
        h.put(record("c"))
    assert raised.value.response["Error"]["Code"] == "ServiceUnavailableException"
    # the next simulated second has its own quota
    assert h.put(record("d"), at_ms=T0 + 1000)["FailedPutCount"] == 0
    stats = h.stream.stats
    assert (stats.put_requests, stats.throttled_requests, stats.throttled_records) == (3, 1, 1)
    assert stats.peak_requests_per_second == 3
    assert stats.incoming_records == 3


def test_entries_past_the_record_or_byte_quota_fail_one_by_one() -> None:
    h = quota_harness(records_per_second=3)
    response = h.put(record("a"), record("b"), record("c"), record("d"), record("e"))
    assert response["FailedPutCount"] == 2
    codes = [entry.get("ErrorCode") for entry in response["RequestResponses"]]
    assert codes == [None, None, None, "ServiceUnavailableException", "ServiceUnavailableException"]
    h = quota_harness(bytes_per_second=len(record("a")) * 2)
    response = h.put(record("a"), record("b"), record("c"))
    assert response["FailedPutCount"] == 1
    assert h.stream.stats.throttled_records == 1


def test_throttles_and_limits_are_published_as_firehose_metrics() -> None:
    h = quota_harness(requests_per_second=1, records_per_second=1)
    h.put(record("a"), record("b"))
    with pytest.raises(ClientError):
        h.put(record("c"))
    h.stream.close()
    sums = {d["MetricName"]: d["StatisticValues"] for call in h.cloudwatch.calls for d in call["MetricData"]}
    assert sums["ThrottledRecords"]["Sum"] == 2  # one failed entry, one record of the refused call
    assert sums["PutRequestsPerSecondLimit"]["Maximum"] == 1
    assert sums["RecordsPerSecondLimit"]["Maximum"] == 1
    assert sums["BytesPerSecondLimit"]["Maximum"] == 10 * MIB


def test_a_sender_waiting_on_the_stream_resends_into_the_next_simulated_second() -> None:
    # GIVEN a stream whose record quota is spent within the second, and the fan-out's own sender (real class,
    # real backoff) whose waits are simulated time: 0.6 s, then 1.0 s (capped) between its four attempts
    h = quota_harness(records_per_second=2)
    waits = iter([0.6, 1.0, 1.0])
    sender = FirehoseSender(h.stream, "stream-under-test", sleep=lambda s: h.stream.wait(round(s * 1000)))
    sender.backoff.jitter = lambda low, high: next(waits)
    # WHEN it sends three records at T0
    with ThreadPoolExecutor(max_workers=1) as pool:
        report = sender.submit([record("a"), record("b"), record("c")], pool).result()
    # THEN the third is refused at T0, resent 0.6 s later (same second: refused again), then 1.0 s later
    # (second T0+1: accepted)
    assert report.failed == {}
    assert report.resent == 2
    assert h.stream.stats.throttled_records == 2
    # and only the sender's own timeline moved: the shared clock is where it was
    assert h.clock.now_ms == T0


def test_one_caller_s_wait_does_not_move_the_others_and_a_new_invocation_starts_afresh() -> None:
    # GIVEN one request a second; a caller that waited 1.2 s is counted in the next second
    h = quota_harness(requests_per_second=1)
    h.stream.wait(1200)
    h.put(record("a"))  # second T0+1
    # WHEN another invocation calls at the shared now (its own timeline: nothing waited)
    h.stream.new_invocation()
    h.put(record("b"))  # second T0: still free
    # THEN both fitted their seconds' quota, and a third call in second T0 is refused whole
    with pytest.raises(ClientError):
        h.put(record("c"))
    assert h.stream.stats.put_requests == 2
    assert h.stream.stats.throttled_requests == 1
    assert h.clock.now_ms == T0
