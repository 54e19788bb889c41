"""The local pipeline end to end: real handlers, embedded moto, the local Firehose, the Parquet lake."""

from __future__ import annotations

import base64
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

import glue_schemas
import pipeline_config
from local_pipeline.aws import EmbeddedAws
from local_pipeline.config import StreamConfig
from local_pipeline.dashboards import connect
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock
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


@pytest.fixture(scope="module")
def burst_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[RunSummary, Path]:
    out = tmp_path_factory.mktemp("lake")
    summary = run(RunOptions(events=200, seed=11, out=out, burst_seconds=900), out=io.StringIO())
    return summary, out


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
    summary, out = burst_run
    unique = {g.event["id"]: g.event["detail"] for g in summary.events if g.kind == "valid"}
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
    summary, out = burst_run
    lake = tmp_path / "lake"
    shutil.copytree(out / PREFIX, lake / PREFIX)
    objects = list((lake / PREFIX).rglob("*.parquet"))
    assert objects
    for path in objects:
        shutil.copyfile(path, path.with_name(f"redelivered-{path.name}"))
    unique = {g.event["id"]: g.event["detail"] for g in summary.events if g.kind == "valid"}
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


def test_an_event_whose_fanout_fails_every_attempt_goes_to_the_dlq(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a Firehose that is down: every PutRecordBatch raises, so every valid event's fan-out attempt fails
    calls: list[int] = []

    def down(self: LocalDeliveryStream, **kwargs: Any) -> dict[str, Any]:
        calls.append(1)
        raise RuntimeError("firehose is down")

    monkeypatch.setattr(LocalDeliveryStream, "put_record_batch", down)
    # WHEN a burst runs
    output = io.StringIO()
    summary = run(RunOptions(events=30, seed=5, out=tmp_path / "lake", dashboards=False), out=output)
    # THEN each such event is retried as Lambda retries async invocations, then lands in the DLQ as the
    # on-failure destination's invocation record, and the summary counts it
    kinds = Counter(g.kind for g in summary.events)
    sent_valid = kinds["valid"] + kinds["retry"] + kinds["republish"]
    assert summary.outcomes["failed"] == sent_valid
    assert len(calls) == 3 * sent_valid
    records = summary.failed_in_dlq
    assert len(records) == sent_valid
    assert len(summary.rejected_in_dlq) == kinds["invalid"]
    expected = sorted(g.event["id"] for g in summary.events if g.kind in {"valid", "retry", "republish"})
    assert sorted(r["requestPayload"]["id"] for r in records) == expected
    for record in records:
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestContext"]["functionArn"].endswith(":function:sales-fanout-local:$LATEST")
        assert record["responseContext"]["functionError"] == "Unhandled"
        assert record["responsePayload"]["errorType"] == "RuntimeError"
        assert record["responsePayload"]["errorMessage"] == "firehose is down"
    assert f"failed (in the DLQ)     {sent_valid:>8}" in output.getvalue()


def test_duplicates_are_skipped_and_nothing_else_is_lost(burst_run: tuple[RunSummary, Path]) -> None:
    summary, _ = burst_run
    kinds = Counter(g.kind for g in summary.events)
    assert summary.outcomes["processed"] == kinds["valid"]
    assert summary.outcomes["duplicate"] == kinds["retry"] + kinds["republish"]
    assert summary.outcomes["rejected"] == kinds["invalid"]
    assert summary.not_matched == kinds["unmatched"]
    assert summary.outcomes["failed"] == 0
    stats = summary.stream
    assert stats.incoming_records == stats.rows_delivered == kinds["valid"]
    assert stats.processing_failed == stats.conversion_failed == stats.partition_exceeded == 0
    assert summary.error_keys == []
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
    summary, _ = burst_run
    invalid = {g.event["id"]: g.invalid_field for g in summary.events if g.kind == "invalid"}
    in_dlq = {m["event"]["id"]: m["error"] for m in summary.dead_letters}
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
    mirrored = sorted(
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name[0] != "." and p.parent != out
    )
    assert mirrored == sorted(summary.lake_keys + summary.error_keys)
    assert all(
        re.search(r"/sales-history-local-1-\d{4}(-\d{2}){5}-[0-9a-f-]{36}\.parquet$", k) for k in summary.lake_keys
    )


def test_dashboards_count_each_sale_once(burst_run: tuple[RunSummary, Path]) -> None:
    summary, _ = burst_run
    revenue = next(r for r in summary.dashboards if r.name == "sales_revenue_by_tenant_brand_category_month")
    assert sum(row[revenue.columns.index("sales")] for row in revenue.rows) == summary.outcomes["processed"]


def test_escaping_tenant_ids_never_write_outside_their_partition(burst_run: tuple[RunSummary, Path]) -> None:
    summary, out = burst_run
    escaping = {"../other", "a/b", "x=y"}
    sent = {g.event["detail"]["tenantId"] for g in summary.events if g.kind == "invalid"}
    assert escaping <= sent, "the burst tries every escape"
    tenants = {
        m.group("tenant") for m in (PARTITION_PATH.match(k.removeprefix(PREFIX)) for k in summary.lake_keys) if m
    }
    assert tenants.isdisjoint(escaping)
    assert all(k.startswith(PREFIX) and ".." not in k for k in summary.lake_keys)
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
    summary = run(RunOptions(events_file=events, out=tmp_path / "lake"), out=io.StringIO())
    assert summary.outcomes == Counter({"processed": 1, "rejected": 2, "duplicate": 1})
    assert summary.not_matched == 1
    assert summary.stream.rows_delivered == 1


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
    kinds = Counter(g.kind for g in summary.events)
    assert summary.stream.rows_delivered == summary.outcomes["processed"] == kinds["valid"]
    assert len(summary.dead_letters) == kinds["invalid"]


def test_the_run_writes_its_resources_in_terraform_output_shape(burst_run: tuple[RunSummary, Path]) -> None:
    from operations import outputs

    _, out = burst_run
    stack = outputs.load(out / "outputs.json")
    assert stack.require("delivery_stream_name") == "sales-history-local"
    assert stack.require("dead_letter_queue_url").endswith("sales-fanout-dlq-local")
    assert stack.get("endpoint_url") is None  # in-process moto is gone once the run ends
