"""The local pipeline end to end: real handlers, embedded moto, the local Firehose, the Parquet lake."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from botocore.exceptions import ClientError

import glue_schemas
import pipeline_config
from local_pipeline.aws import EmbeddedAws
from local_pipeline.config import StreamConfig
from local_pipeline.dashboards import connect
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock
from local_pipeline.generator import BurstSpec, GeneratedEvent, generate
from local_pipeline.runner import RunOptions, RunSummary, run
from tests.support import load_event
from transform_lambda import handler as transform_handler

pytestmark = pytest.mark.integration

TABLE = glue_schemas.sales_history()
PREFIX = pipeline_config.load()["lake"]["table_prefix"]
# Written out here, independently of the writer's own mapping, so a wrong mapping cannot pass.
GLUE_TO_ARROW = {
    "string": pa.string(),
    "double": pa.float64(),
    "int": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("ms"),
    "array<float>": pa.list_(pa.float32()),
}
PARTITION_PATH = re.compile(r"^tenant_id=(?P<tenant>[^/]+)/year=(?P<year>\d{4})/month=(?P<month>\d{2})/[^/]+\.parquet$")


BURST = BurstSpec(events=200, seed=11, burst_seconds=900)


@pytest.fixture(scope="module")
def burst_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Path]:
    out = tmp_path_factory.mktemp("run") / "lake"
    summary = run(
        RunOptions(events=BURST.events, seed=BURST.seed, out=out, burst_seconds=BURST.burst_seconds), out=io.StringIO()
    )
    return summary, out


def burst(spec: BurstSpec = BURST) -> list[GeneratedEvent]:
    """The events a run with ``spec`` offered (the generator is deterministic for a seed)."""
    return list(generate(spec))


def dead_letters(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "dead_letters.jsonl").read_text().splitlines()]


def mirrored_keys(out: Path) -> list[str]:
    return sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name[0] != "." and p.parent != out
    )


def lake_rows(out: Path) -> list[tuple[dict[str, Any], re.Match[str]]]:
    rows = []
    for path in sorted((out / PREFIX).rglob("*")):
        if path.is_file():
            where = PARTITION_PATH.match(path.relative_to(out / PREFIX).as_posix())
            assert where, f"object outside the partition layout: {path}"
            rows += [(r, where) for r in pq.read_table(path).to_pylist()]
    return rows


def test_every_valid_unique_event_is_in_the_lake_exactly_once_in_its_partition(
    burst_run: tuple[RunSummary, Path],
) -> None:
    _, out = burst_run
    unique = {g.event["id"]: g.event["detail"] for g in burst() if g.kind == "valid"}
    rows = lake_rows(out)
    counts = Counter(row["event_id"] for row, _ in rows)
    assert set(counts) == set(unique), "the lake holds exactly the valid unique events"
    assert set(counts.values()) == {1}, "no event delivered twice in this run"
    for row, where in rows:
        detail = unique[row["event_id"]]
        assert where["tenant"] == detail["tenantId"]
        assert (where["year"], where["month"]) == tuple(detail["soldDate"].split("-")[:2])
        assert row["sold_date"].isoformat() == detail["soldDate"]


def test_a_firehose_duplicate_is_counted_once_by_the_deduplicated_view(
    burst_run: tuple[RunSummary, Path], tmp_path: Path
) -> None:
    # GIVEN the lake after Firehose delivered every object twice (at-least-once: a retried S3 write lands the
    # same records again under a new object name in the same partition)
    _, out = burst_run
    lake = tmp_path / "lake"
    shutil.copytree(out / PREFIX, lake / PREFIX)
    objects = list((lake / PREFIX).rglob("*.parquet"))
    assert objects
    for path in objects:
        shutil.copyfile(path, path.with_name(f"redelivered-{path.name}"))
    unique = {g.event["id"]: g.event["detail"] for g in burst() if g.kind == "valid"}
    # WHEN the dashboards' DuckDB connection reads it
    connection = connect(lake, table_name=TABLE["table"], table_prefix=PREFIX, partition_keys=TABLE["partition_keys"])
    try:
        raw = connection.execute(f"SELECT count(*) FROM {TABLE['table']}").fetchone()
        rows = connection.execute(
            "SELECT event_id, sale_id, tenant_id, year, month FROM sales_history_dedup"
        ).fetchall()
    finally:
        connection.close()
    # THEN the raw table holds every row twice, the view each valid unique sale exactly once in its partition
    assert raw == (2 * len(unique),)
    assert sorted(row[0] for row in rows) == sorted(unique)
    assert len({row[1] for row in rows}) == len(rows)
    for event_id, _sale_id, tenant, year, month in rows:
        detail = unique[event_id]
        assert tenant == detail["tenantId"]
        assert (int(year), int(month)) == tuple(int(part) for part in detail["soldDate"].split("-")[:2])


def test_direct_an_event_whose_fanout_fails_every_attempt_goes_to_the_dlq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Firehose that is down: every PutRecordBatch raises, so every valid event's fan-out attempt fails
    calls: list[int] = []

    def down(self: LocalDeliveryStream, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        raise RuntimeError("firehose is down")

    monkeypatch.setattr(LocalDeliveryStream, "put_record_batch", down)
    # WHEN a burst runs with the direct trigger
    output = io.StringIO()
    out = tmp_path / "lake"
    summary = run(RunOptions(events=30, seed=5, out=out, dashboards=False, trigger="direct"), out=output)
    # THEN each such event is retried as Lambda retries async invocations, then lands in the DLQ as the
    # on-failure destination's invocation record, and the summary counts it
    events = burst(BurstSpec(events=30, seed=5))
    kinds = Counter(g.kind for g in events)
    sent_valid = kinds["valid"] + kinds["retry"] + kinds["republish"]
    assert summary.outcomes["failed"] == sent_valid
    assert len(calls) == 3 * sent_valid
    letters = dead_letters(out)
    records = [m for m in letters if "requestContext" in m]
    assert len(records) == sent_valid
    assert len([m for m in letters if "errorType" in m]) == kinds["invalid"]
    expected = sorted(g.event["id"] for g in events if g.kind in {"valid", "retry", "republish"})
    assert sorted(r["requestPayload"]["id"] for r in records) == expected
    for record in records:
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestContext"]["functionArn"].endswith(":function:sales-fanout-local:$LATEST")
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert record["responsePayload"]["errorType"] == "RuntimeError"
        assert record["responsePayload"]["errorMessage"] == "firehose is down"
    assert f"failed (in the DLQ)     {sent_valid:>8}" in output.getvalue()
    # the retries came at Lambda's spacing: the last attempt 1 + 2 minutes after the last event's first
    assert summary.simulated_seconds >= 900 * (29 / 30) + 180


def test_queue_a_message_whose_fanout_fails_every_receive_is_redriven_to_the_dlq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Firehose that is down
    def down(self: LocalDeliveryStream, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("firehose is down")

    monkeypatch.setattr(LocalDeliveryStream, "put_record_batch", down)
    # WHEN a burst runs with the queue trigger
    out = tmp_path / "lake"
    summary = run(RunOptions(events=30, seed=5, out=out, dashboards=False, trigger="queue"), out=io.StringIO())
    # THEN every new sale's message is received max_receive_count times, then moved to the DLQ unchanged
    events = burst(BurstSpec(events=30, seed=5))
    letters = dead_letters(out)
    redriven = [m for m in letters if "errorType" not in m]
    sent = [g.event for g in events if g.kind in {"valid", "retry", "republish"}]
    assert sorted(m["id"] for m in redriven) == sorted(event["id"] for event in sent)
    by_id = {event["id"]: event for event in sent}
    assert all(m == by_id[m["id"]] for m in redriven)  # the body is the event JSON, unchanged
    assert summary.outcomes["failed"] == len(redriven)
    assert summary.events_retried == len(redriven)
    assert summary.as_json()["lake_rows"] == 0


def test_duplicates_are_skipped_and_nothing_else_is_lost(burst_run: tuple[RunSummary, Path]) -> None:
    summary, _ = burst_run
    kinds = Counter(g.kind for g in burst())
    assert summary.outcomes["processed"] == kinds["valid"]
    assert summary.outcomes["duplicate"] == kinds["retry"] + kinds["republish"]
    assert summary.outcomes["rejected"] == kinds["invalid"]
    assert summary.not_matched == kinds["unmatched"]
    assert summary.outcomes["failed"] == 0
    stats = summary.stream
    assert stats.incoming_records == stats.rows_delivered == kinds["valid"]
    assert stats.processing_failed == stats.conversion_failed == stats.partition_exceeded == 0
    assert summary.error_keys == 0
    assert summary.metric_datapoints > 0
    assert {
        "IncomingRecords",
        "ExecuteProcessing.Success",
        "SucceedProcessing.Records",
        "SucceedConversion.Records",
        "DeliveryToS3.Records",
        "DeliveryToS3.DataFreshness",
        "PartitionCount",
    } <= summary.metric_names


def test_every_invalid_event_is_in_the_dlq_with_its_reason(burst_run: tuple[RunSummary, Path]) -> None:
    _, out = burst_run
    invalid = {g.event["id"]: g.invalid_field for g in burst() if g.kind == "invalid"}
    in_dlq = {m["event"]["id"]: m["error"] for m in dead_letters(out)}
    assert set(in_dlq) == set(invalid)
    for event_id, field in invalid.items():
        assert in_dlq[event_id]["field"] == field
        assert in_dlq[event_id]["reason"]


def test_parquet_files_hold_exactly_the_glue_columns_with_their_types(burst_run: tuple[RunSummary, Path]) -> None:
    _, out = burst_run
    expected = [(c["name"], GLUE_TO_ARROW[c["type"]]) for c in TABLE["columns"]]
    files = [p for p in (out / PREFIX).rglob("*") if p.is_file()]
    assert files
    for path in files:
        schema = pq.read_schema(path)
        assert [(f.name, f.type) for f in schema] == expected, path


def test_the_lake_is_mirrored_with_the_bucket_key_layout(burst_run: tuple[RunSummary, Path]) -> None:
    summary, out = burst_run
    # The run's own files (outputs.json, ...) sit at the top of --out; every lake key is under a prefix.
    mirrored = mirrored_keys(out)
    assert len(mirrored) == summary.lake_keys + summary.error_keys == summary.mirrored
    assert all(
        re.search(r"/sales-history-local-1-\d{4}(-\d{2}){5}-[0-9a-f-]{36}\.parquet$", k)
        for k in mirrored
        if k.startswith(PREFIX)
    )


def test_dashboards_count_each_sale_once(burst_run: tuple[RunSummary, Path]) -> None:
    summary, _ = burst_run
    revenue = next(r for r in summary.dashboards if r.name == "sales_revenue_by_tenant_brand_category_month")
    assert sum(row[revenue.columns.index("sales")] for row in revenue.rows) == summary.outcomes["processed"]


def test_escaping_tenant_ids_never_write_outside_their_partition(burst_run: tuple[RunSummary, Path]) -> None:
    _, out = burst_run
    escaping = {"../other", "a/b", "x=y"}
    sent = {g.event["detail"]["tenantId"] for g in burst() if g.kind == "invalid"}
    assert escaping <= sent, "the burst tries every escape"
    keys = mirrored_keys(out)
    tenants = {m.group("tenant") for m in (PARTITION_PATH.match(k.removeprefix(PREFIX)) for k in keys) if m}
    assert tenants.isdisjoint(escaping)
    assert all(k.startswith(PREFIX) and ".." not in k for k in keys)
    assert all(p.resolve().is_relative_to(out.resolve()) for p in out.rglob("*"))


def test_a_rogue_producer_bypassing_the_fanout_cannot_escape_either(tmp_path: Path) -> None:
    # GIVEN records put straight into the stream (the fan-out never saw them) with tenant ids that escape
    config = StreamConfig.from_declarations()
    good = json.loads(json.dumps(load_event("product_sold")))
    records = []
    for tenant in ("../other", "a/b", "x=y", good["detail"]["tenantId"]):
        body = {
            **good["detail"],
            "tenantId": tenant,
            "eventId": f"evt-{tenant}",
            "eventTime": good["time"],
            "saleId": "sale-1",
        }
        records.append({"Data": orjson.dumps(body) + b"\n"})
    with EmbeddedAws() as aws:
        aws.create_resources()
        stream = LocalDeliveryStream(
            config,
            transform=transform_handler.lambda_handler,
            s3=aws.client("s3"),
            bucket=aws.names.lake_bucket,
            clock=SimulatedClock(1_768_467_600_000),
        )
        stream.put_record_batch(DeliveryStreamName=config.stream_name, Records=records)
        stream.close()
        keys = list(aws.keys())
        errors = [json.loads(line) for k in keys if k.startswith("errors/") for line in aws.get(k).splitlines()]
        aws.mirror(tmp_path)
    # THEN the transform fails them, they land under the error prefix with their original data
    lake = [k for k in keys if k.startswith(PREFIX)]
    assert len(lake) == 1
    assert lake[0].startswith(f"{PREFIX}tenant_id={good['detail']['tenantId']}/")
    assert sorted(json.loads(base64.b64decode(e["rawData"]))["tenantId"] for e in errors) == ["../other", "a/b", "x=y"]
    assert {e["errorCode"] for e in errors} == {"Lambda.ProcessingFailedStatus"}
    assert all(k.startswith("errors/processing-failed/") for k in keys if k.startswith("errors/"))


def test_events_from_a_jsonl_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    names = ["product_sold", "other_source", "escaping_tenant", "negative_price", "product_sold"]
    events.write_text("".join(json.dumps(load_event(name)) + "\n" for name in names))
    output = io.StringIO()
    summary = run(RunOptions(events_file=events, out=tmp_path / "lake"), out=output)
    assert +summary.outcomes == Counter({"processed": 1, "rejected": 2, "duplicate": 1})
    assert summary.not_matched == 1
    assert summary.stream.rows_delivered == 1
    assert "events read                    5" in output.getvalue()
    assert json.loads((tmp_path / "lake" / "summary.json").read_text())["source"] == "read"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_the_same_run_against_a_moto_server_endpoint(tmp_path: Path) -> None:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        options = RunOptions(events=30, seed=5, out=tmp_path / "lake", endpoint_url=f"http://127.0.0.1:{port}")
        summary = run(options, out=io.StringIO())
    finally:
        server.stop()
    kinds = Counter(g.kind for g in burst(BurstSpec(events=30, seed=5)))
    assert summary.stream.rows_delivered == summary.outcomes["processed"] == kinds["valid"]
    assert summary.dead_letters == kinds["invalid"]
    assert summary.dynamodb_peak_rss_bytes is None  # the server holds DynamoDB: no child process was started


def test_the_run_writes_its_resources_in_terraform_output_shape(burst_run: tuple[RunSummary, Path]) -> None:
    from operations import outputs

    _, out = burst_run
    stack = outputs.load(out / "outputs.json")
    assert stack.require("delivery_stream_name") == "sales-history-local"
    assert stack.require("dead_letter_queue_url").endswith("sales-fanout-dlq-local")
    assert stack.get("endpoint_url") is None  # in-process moto is gone once the run ends
    assert stack.require("fanout_trigger") == "queue"
    assert stack.require("buffer_queue_url").endswith("/sales-buffer-local")
    assert stack.require("buffer_queue_arn") == "arn:aws:sqs:us-east-1:123456789012:sales-buffer-local"
    assert stack.require("dead_letter_queue_arn") == "arn:aws:sqs:us-east-1:123456789012:sales-fanout-dlq-local"
    assert stack.require("fanout_lambda_name") == "sales-fanout-local"
    assert stack.require("transform_lambda_name") == "sales-transform-local"
    assert stack.require("event_bus_name") == "default"


SUMMARY_KEYS = {
    "events_total": int,
    "not_matched": int,
    "processed": int,
    "duplicates": int,
    "rejected": int,
    "failed": int,
    "dead_letters": int,
    "trigger": str,
    "region": str,
    "fanout_invocations": int,
    "firehose_put_requests": int,
    "firehose_throttled_requests": int,
    "firehose_peak_requests_per_second": int,
    "firehose_requests_per_second_quota": int,
    "lake_rows": int,
    "lake_objects": int,
    "partitions": int,
    "wall_seconds": (int, float),
    "events_per_second": (int, float),
    "max_delivery_latency_seconds": (int, float),
}


def test_summary_json_has_every_key_the_issue_lists_and_matches_the_run(burst_run: tuple[RunSummary, Path]) -> None:
    _, out = burst_run
    written = json.loads((out / "summary.json").read_text())
    for key, kind in SUMMARY_KEYS.items():
        assert isinstance(written[key], kind), key
    kinds = Counter(g.kind for g in burst())
    assert written["events_total"] == BURST.events
    assert written["processed"] == written["lake_rows"] == kinds["valid"]
    assert written["duplicates"] == kinds["retry"] + kinds["republish"]
    assert written["rejected"] == written["dead_letters"] == kinds["invalid"]
    assert written["not_matched"] == kinds["unmatched"]
    assert (written["trigger"], written["region"]) == ("queue", "us-east-1")
    assert written["firehose_requests_per_second_quota"] == 2000
    assert written["lake_objects"] == len([k for k in mirrored_keys(out) if k.startswith(PREFIX)])
    # a sparse burst (200 events over 900 s) makes small batches: each closes on the 5 s window
    assert 0 < written["fanout_invocations"] <= written["events_total"] - written["not_matched"]
    assert 0 < written["firehose_put_requests"] <= written["fanout_invocations"]
    # a record waits at least the buffering interval's share before its object is written
    assert 0 < written["max_delivery_latency_seconds"] <= 900 + 300
    # both processes' peak resident sets, and their sum (the embedded DynamoDB runs in its own process)
    assert written["peak_rss_mb"] > 50
    assert written["dynamodb_peak_rss_mb"] > 20
    assert written["peak_memory_mb"] == pytest.approx(written["peak_rss_mb"] + written["dynamodb_peak_rss_mb"], abs=0.2)


def test_every_dead_letter_is_one_line_of_dead_letters_jsonl(burst_run: tuple[RunSummary, Path]) -> None:
    summary, out = burst_run
    lines = (out / "dead_letters.jsonl").read_text().splitlines()
    assert len(lines) == summary.dead_letters
    assert all(json.loads(line)["errorType"] == "InvalidSaleEvent" for line in lines)


def test_both_triggers_deliver_the_same_lake(burst_run: tuple[RunSummary, Path], tmp_path: Path) -> None:
    queue_summary, queue_out = burst_run
    out = tmp_path / "direct"
    direct = run(
        RunOptions(events=BURST.events, seed=BURST.seed, out=out, dashboards=False, trigger="direct"),
        out=io.StringIO(),
    )
    assert direct.fanout_invocations == direct.sent  # one asynchronous invocation per delivered event
    assert queue_summary.fanout_invocations < direct.fanout_invocations
    assert sorted(r["event_id"] for r, _ in lake_rows(out)) == sorted(r["event_id"] for r, _ in lake_rows(queue_out))
    assert +direct.outcomes == +queue_summary.outcomes


def test_a_rerun_replaces_only_what_the_tool_wrote_and_refuses_a_folder_with_anything_else(tmp_path: Path) -> None:
    from local_pipeline.runner import RunError

    out = tmp_path / "lake"
    first = run(RunOptions(events=20, seed=1, out=out, dashboards=False), out=io.StringIO())
    first_files = set(mirrored_keys(out))
    assert first.mirrored == len(first_files) > 0
    # a second run (another seed: other object names) replaces the first run's files, leaving none behind
    second = run(RunOptions(events=20, seed=2, out=out, dashboards=False), out=io.StringIO())
    second_files = set(mirrored_keys(out))
    assert second.mirrored == len(second_files)
    assert first_files.isdisjoint(second_files)
    # a file a person adds makes the next run refuse, naming it, and nothing is touched
    (out / "sales_history" / "my-notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"did not write \(sales_history/my-notes\.txt\)"):
        run(RunOptions(events=20, seed=3, out=out, dashboards=False), out=io.StringIO())
    assert (out / "sales_history" / "my-notes.txt").read_text() == "mine"
    assert set(mirrored_keys(out)) == second_files | {"sales_history/my-notes.txt"}
    assert not list(tmp_path.glob(".lake.partial-*"))  # the refused run left no staging folder


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_the_mirror_copies_every_lake_object_as_s3_returns_it(tmp_path: Path, region: str) -> None:
    bodies = {
        "sales_history/tenant_id=t1/year=2025/month=1/a.parquet": b"PAR1 first",
        "sales_history/tenant_id=t.2/year=2025/month=12/b c.parquet": b"",
        "errors/processing-failed/year=2025/month=01/day=02/x": bytes(range(256)) * 100,
    }
    with EmbeddedAws(region=region) as aws:
        aws.create_resources()
        s3 = aws.client("s3")
        for key, body in bodies.items():
            s3.put_object(Bucket=aws.names.lake_bucket, Key=key, Body=body)
        s3.put_object(Bucket=aws.names.lake_bucket, Key="errors/replaced", Body=b"old")
        s3.put_object(Bucket=aws.names.lake_bucket, Key="errors/replaced", Body=b"new")
        bodies["errors/replaced"] = b"new"
        through_s3 = {key: aws.get(key) for key in aws.keys()}  # noqa: SIM118 - the bucket's keys, not a dict's
        assert aws.mirror(tmp_path) == len(bodies)
    copied = {str(path.relative_to(tmp_path)): path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert copied == through_s3 == bodies


@pytest.mark.parametrize("region", ["us-east-1", "ap-southeast-2"])
def test_the_lake_writer_stores_what_put_object_would(region: str) -> None:
    body = bytes(range(256)) * 3000
    with EmbeddedAws(region=region) as aws:
        aws.create_resources()
        s3, writer = aws.client("s3"), aws.lake_writer()
        answer = writer.put_object(
            Bucket=aws.names.lake_bucket, Key="sales_history/tenant_id=t=1/a b.parquet", Body=body
        )
        writer.put_object(Bucket=aws.names.lake_bucket, Key="errors/x", Body=b"old")
        writer.put_object(Bucket=aws.names.lake_bucket, Key="errors/x", Body=b"new")
        got = s3.get_object(Bucket=aws.names.lake_bucket, Key="sales_history/tenant_id=t=1/a b.parquet")
        assert got["Body"].read() == body
        assert got["ETag"] == answer["ETag"] == '"' + hashlib.md5(body).hexdigest() + '"'
        assert s3.get_object(Bucket=aws.names.lake_bucket, Key="errors/x")["Body"].read() == b"new"
        assert sorted(aws.keys()) == ["errors/x", "sales_history/tenant_id=t=1/a b.parquet"]
        # a failure is PutObject's ClientError, which the local Firehose retries and counts
        with pytest.raises(ClientError) as raised:
            writer.put_object(Bucket="no-such-bucket", Key="k", Body=b"x")
        assert raised.value.response["Error"]["Code"] == "NoSuchBucket"
        assert raised.value.operation_name == "PutObject"


def test_spilled_sales_items_are_kept_on_disk_and_read_back_once_each() -> None:
    with EmbeddedAws() as aws:
        aws.create_resources()
        dynamodb = aws.client("dynamodb")

        def put(pk: str, value: str) -> None:
            item = {"PK": {"S": pk}, "SK": {"S": "SALE#1"}, "GSI2PK": {"S": "g"}, "GSI2SK": {"S": "d"}}
            dynamodb.put_item(
                TableName=aws.names.sales_table, Item={**item, "v": {"S": value}, "b": {"B": b"\x00\x01"}}
            )

        put("a", "1")
        put("b", "1")
        assert aws.spill_sales_items() == 2
        assert dynamodb.scan(TableName=aws.names.sales_table)["Count"] == 0
        put("b", "2")  # rewritten after the spill: the latest write wins
        put("c", "1")
        items = {item["PK"]["S"]: item["v"]["S"] for item in aws.sales_items()}
    assert items == {"a": "1", "b": "2", "c": "1"}


def test_a_burst_above_the_byte_quota_is_throttled_resent_in_place_and_delivered_once(tmp_path: Path) -> None:
    # GIVEN 400 events in one simulated second, offered to a stream in a 1 MiB/s region (~230 sales/s of 4.5 KB)
    out = tmp_path / "lake"
    summary = run(
        RunOptions(events=400, seed=4, out=out, burst_seconds=1, region="ap-southeast-2", dashboards=False),
        out=io.StringIO(),
    )
    written = json.loads((out / "summary.json").read_text())
    # THEN concurrent batches meet the per-second quota together: entries are throttled and resent inside their
    # invocations (flow control), so no message waits for a visibility timeout, none is parked, every sale is in
    # the lake exactly once, and the intake ends within the byte quota's floor plus a batching window or so
    assert written["firehose_requests_per_second_quota"] == 1000
    assert written["firehose_throttled_records"] > 0
    assert written["fanout_retries"]["FirehoseResends"] > 0
    assert written["events_retried"] == 0 and written["failed"] == 0
    kinds = Counter(g.kind for g in burst(BurstSpec(events=400, seed=4, burst_seconds=1)))
    rows = Counter(r["event_id"] for r, _ in lake_rows(out))
    assert set(rows.values()) == {1}
    assert written["lake_rows"] == written["audit_in_lake"] >= kinds["valid"] > 0
    assert written["audit_in_dead_letters"] == 0
    floor = written["firehose_bytes_in"] / (written["firehose_bytes_per_second_quota"] * written["firehose_streams"])
    assert floor < written["ingest_drain_seconds"] <= 1.3 * floor + 15
    assert summary.fanout_invocations > written["events_total"] / 500


def test_a_burst_above_dynamodbs_capacity_is_throttled_resent_and_written_once_within_the_capacity(
    tmp_path: Path,
) -> None:
    # GIVEN 1,200 events in one simulated second in eu-west-1 (Firehose's 5 MiB/s takes them in ~1 s) against
    # tables and GSI2 that serve 300 write units a second (a sale: 3 units on the table, 3 on GSI2, 2 on the
    # idempotency table)
    out = tmp_path / "lake"
    run(
        RunOptions(
            events=1200,
            seed=5,
            out=out,
            burst_seconds=1,
            region="eu-west-1",
            dashboards=False,
            dynamodb_warm_writes=300,
        ),
        out=io.StringIO(),
    )
    written = json.loads((out / "summary.json").read_text())
    tables = written["dynamodb_tables"]
    # THEN DynamoDB refuses what does not fit, the fan-out resends it (in place, then after a backoff), and no
    # table or index ever serves more than its capacity in a second
    assert written["dynamodb_throttled_requests"] > 0
    assert written["fanout_retries"]["DynamoDBResends"] > 0
    assert len(tables) == 3 and sum(name.endswith("/index/GSI2") for name in tables) == 1
    assert any(row["throttling_reasons"].get("IndexWriteKeyRangeThroughputExceeded") for row in tables.values())
    for row in tables.values():
        assert row["peak_write_units_per_second"] <= row["write_capacity_per_second"] == 300
    assert written["dynamodb_peak_write_units_per_second"] <= 300
    # and every valid sale is in the lake once, none parked, none lost, at 8 write units a new sale
    assert written["audit_lost"] == 0 and written["audit_in_dead_letters"] == 0 and written["failed"] == 0
    rows = Counter(r["event_id"] for r, _ in lake_rows(out))
    assert set(rows.values()) == {1} and written["lake_rows"] == written["audit_in_lake"] == written["processed"]
    assert written["dynamodb_write_units_per_new_sale"] == 8
    # and the intake drained no sooner than DynamoDB's capacity allows, well after Firehose's byte quota would
    assert (
        written["ingest_drain_seconds"]
        >= written["dynamodb_floor_seconds"]
        > 10 * (written["firehose_bytes_in"] / written["firehose_bytes_per_second_quota"])
    )


def test_a_throttled_burst_gives_the_same_figures_every_run(tmp_path: Path) -> None:
    # GIVEN a burst far above the byte quota of a 1 MiB/s region: batches of two chunks, resends, redeliveries
    options = {"events": 1500, "seed": 11, "burst_seconds": 1, "region": "ap-southeast-2", "dashboards": False}
    figures = []
    for attempt in ("first", "second"):
        run(RunOptions(**options, out=tmp_path / attempt), out=io.StringIO())  # type: ignore[arg-type]
        written = json.loads((tmp_path / attempt / "summary.json").read_text())
        figures.append({k: v for k, v in written.items() if k not in VARYING_KEYS})
    # THEN the simulation is reproducible: which chunk meets the spent quota, and each resend's jitter,
    # do not depend on thread scheduling
    assert figures[0]["firehose_throttled_records"] > 0
    assert figures[0]["fanout_retries"]["FirehoseResends"] > 0
    assert figures[0] == figures[1]


#: What a run measures about the machine, not the simulation.
VARYING_KEYS = {"wall_seconds", "events_per_second", "peak_rss_mb", "dynamodb_peak_rss_mb", "peak_memory_mb"}
