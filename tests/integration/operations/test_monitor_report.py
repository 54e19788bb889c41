"""monitor and report against a moto_server after a real local run (`sales-pipeline run --endpoint-url`).

The run sends a burst with no invalid events, so a healthy stack is what it leaves; then the tests put one
problem at a time into CloudWatch / SQS and check monitor names it and exits with the right status. The
report is loaded in headless Chromium (Debian's package; `make test` installs it) and checked chart by chart.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from local_pipeline.generator import BurstSpec, generate
from local_pipeline.runner import RunOptions, RunSummary, run
from operations import outputs as stack_outputs
from sales_pipeline.cli import main
from tests.integration import monitoring_support as ms
from tests.integration import terraform_support as tfs

pytestmark = pytest.mark.integration

DELIVERY_CHARTS = {
    "Incoming vs delivered records",
    "DeliveryToS3.DataFreshness against its alarm threshold",
    "Throttled records",
    "Processing and conversion failures",
    "Dead-letter queue depth",
}
DASHBOARD_CHARTS = {
    "Revenue by tenant and month of sale",
    "Price realisation by condition (sale / listed price)",
    "Average days to sell by category and season",
}


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto_server on 127.0.0.1 for the module."""
    with tfs.run_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as url:
        yield url


@pytest.fixture(scope="module")
def clean_run(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A local run of 150 events, none invalid, against the moto_server; returns (out folder, outputs)."""
    base = tmp_path_factory.mktemp("clean-run")
    events = generate(BurstSpec(events=150, seed=5, invalid_share=0.0, unmatched_share=0.0))
    events_file = base / "events.jsonl"
    events_file.write_text("".join(json.dumps(e.event) + "\n" for e in events), encoding="utf-8")
    out = base / "out"
    summary: RunSummary = run(
        RunOptions(events_file=events_file, endpoint_url=endpoint, out=out, burst_seconds=600),
        out=io.StringIO(),
    )
    assert not summary.dead_letter_kinds, "a clean run leaves the DLQ empty"
    values = dict(stack_outputs.load(out / "outputs.json").values)
    assert values["endpoint_url"] == endpoint
    return out, values


@pytest.fixture(scope="module")
def throttled_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """400 events in one second against tables and GSI2 warm at only 100 write units/s (`--dynamodb-warm-writes
    100`), so DynamoDB throttles the fan-out's writes; none invalid. On a moto_server of its own: a local run's
    stream and Lambdas have fixed names, and the other tests put problems into theirs. Yields (out, outputs)."""
    base = tmp_path_factory.mktemp("throttled-run")
    with tfs.run_moto_server(base / "moto_server.log") as endpoint:
        yield _throttled(base, endpoint)


def _throttled(base: Path, endpoint: str) -> tuple[Path, dict[str, Any]]:
    events = generate(BurstSpec(events=400, seed=11, invalid_share=0.0, unmatched_share=0.0))
    events_file = base / "events.jsonl"
    events_file.write_text("".join(json.dumps(e.event) + "\n" for e in events), encoding="utf-8")
    out = base / "out"
    summary: RunSummary = run(
        RunOptions(events_file=events_file, endpoint_url=endpoint, out=out, burst_seconds=1, dynamodb_warm_writes=100),
        out=io.StringIO(),
    )
    assert not summary.dead_letter_kinds, "flow control absorbs the throttles: nothing reaches the DLQ"
    return out, dict(stack_outputs.load(out / "outputs.json").values)


def monitor(capsys: pytest.CaptureFixture[str], outputs_file: Path, *args: str) -> tuple[int, str, dict[str, Any]]:
    """Run `sales-pipeline monitor` twice (text, then --json); return the status, the text and the JSON."""
    status = main(["monitor", "--outputs", str(outputs_file), *args])
    text = capsys.readouterr().out
    assert main(["monitor", "--outputs", str(outputs_file), "--json", *args]) == status
    document = json.loads(capsys.readouterr().out)
    assert document["exit_status"] == status
    return status, text, document


def verdicts(document: dict[str, Any]) -> dict[str, str]:
    return {check["name"]: check["verdict"] for check in document["checks"]}


def test_monitor_is_healthy_after_a_clean_run_then_names_each_problem_put_in(
    clean_run: tuple[Path, dict[str, Any]], endpoint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out, values = clean_run
    outputs_file = out / "outputs.json"
    cloudwatch, sqs = tfs.aws_client("cloudwatch", endpoint), tfs.aws_client("sqs", endpoint)
    stream = ("DeliveryStreamName", values["delivery_stream_name"])

    # GIVEN a clean run WHEN monitor reads the default window THEN everything with data is OK
    status, text, document = monitor(capsys, outputs_file)
    assert status == 0, text
    assert text.startswith("OK: Firehose delivery healthy"), text
    found = verdicts(document)
    for name in ("DeliveryToS3.Success", "DeliveryToS3.DataFreshness", "DeliveryToS3.Records",
                 "ExecuteProcessing.Success", "dead-letter queue depth"):  # fmt: skip
        assert found[name] == "OK", (name, text)
    assert found["alarms in ALARM"] == "NO DATA"  # a local run deploys no alarms, and monitor says so

    # WHEN Firehose reports throttled records THEN a warning naming them
    ms.put_datapoint(cloudwatch, "AWS/Firehose", "ThrottledRecords", stream, 7)
    status, text, document = monitor(capsys, outputs_file)
    assert status == 1, text
    assert text.startswith("WARNING: ThrottledRecords 7"), text

    # WHEN an event lands in the dead-letter queue THEN still a warning, naming both
    sqs.send_message(QueueUrl=values["dead_letter_queue_url"], MessageBody=json.dumps({"errorType": "Test"}))
    status, text, document = monitor(capsys, outputs_file)
    assert status == 1, text
    assert verdicts(document)["dead-letter queue depth"] == "WARN"
    assert "dead-letter queue depth 1" in text.splitlines()[0], text

    # WHEN freshness goes above the alarm's threshold THEN critical, freshness named first
    ms.put_datapoint(cloudwatch, "AWS/Firehose", "DeliveryToS3.DataFreshness", stream, 1200, "Seconds")
    status, text, document = monitor(capsys, outputs_file, "--since", "30m")
    assert status == 2, text
    assert text.startswith("CRITICAL: DeliveryToS3.DataFreshness 1,200 s (latest)"), text
    assert document["window"]["period_seconds"] == 300
    assert "last 30m" in document["summary"]


def test_monitor_exits_3_when_it_cannot_read(
    clean_run: tuple[Path, dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, values = clean_run
    assert main(["monitor", "--outputs", str(tmp_path / "missing.json")]) == 3
    assert main(["monitor", "--outputs", str(out / "outputs.json"), "--since", "soon"]) == 3
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2
    assert "--since 'soon'" in errors[1]
    # A stream CloudWatch has never heard of: wrong outputs, not a healthy idle stream.
    other = tmp_path / "outputs.json"
    unknown = {"delivery_stream_name": "no-such-stream", "delivery_stream_names": ["no-such-stream"]}
    stack_outputs.write(other, {**values, **unknown})
    assert main(["monitor", "--outputs", str(other)]) == 3
    assert capsys.readouterr().out.startswith("UNKNOWN: Firehose metrics none")


def test_the_run_writes_its_report_into_out(clean_run: tuple[Path, dict[str, Any]]) -> None:
    out, values = clean_run
    report = (out / "report.html").read_text(encoding="utf-8")
    assert f"Sales pipeline report: {values['delivery_stream_name']}" in report
    assert set(re.findall(r'data-title="([^"]+)"', report)) >= DASHBOARD_CHARTS


@pytest.fixture(scope="module")
def report(clean_run: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`sales-pipeline report --html` against the run's outputs (the lake found beside them)."""
    out, _values = clean_run
    path = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", "--outputs", str(out / "outputs.json"), "--html", str(path)]) == 0
    return path


class _References(HTMLParser):
    """Every tag name, every attribute that can load something, every style text."""

    LOADING: ClassVar[set[str]] = {
        "src",
        "href",
        "xlink:href",
        "srcset",
        "poster",
        "data",
        "action",
        "formaction",
        "background",
    }

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.loads: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in self.LOADING:
                self.loads.append(value or "")
            if name == "style":
                self.styles.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def test_the_report_references_nothing_outside_itself(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    parsed = _References()
    parsed.feed(text)
    assert not parsed.tags & {"script", "link", "img", "iframe", "object", "embed", "video", "audio", "source"}
    assert [ref for ref in parsed.loads if not ref.startswith(("#", "data:"))] == []
    for style in parsed.styles:
        assert "@import" not in style
        assert re.findall(r"url\((?!#)", style) == [], style
    # Any URL left is an XML namespace name (xmlns), which is an identifier, never fetched.
    urls = re.findall(r'([\w:-]+)="(https?://[^"]*)"', text)
    assert {name.split(":")[0] for name, _ in urls} <= {"xmlns"}, urls
    assert len(re.findall(r"https?://", text)) == len(urls)


def test_every_chart_of_the_report_draws_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    binary = ms.chromium()
    if binary is None:
        pytest.fail("chromium is not installed: run `make browser` (make test does), or apt-get install chromium")
    charts = ms.probe_charts(binary, report, tmp_path)
    assert {chart["title"] for chart in charts} == DELIVERY_CHARTS | DASHBOARD_CHARTS
    for chart in charts:
        assert chart["width"] > 200 and chart["height"] > 100, chart
        assert chart["drawn"] > 0, f"nothing of {chart['title']!r} was drawn"


def test_monitor_reads_alarm_states_lambda_metrics_and_the_buffer_queue_of_a_deployed_stack(
    clean_run: tuple[Path, dict[str, Any]], endpoint: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN outputs with what a Terraform stack adds: alarms, both Lambdas' names, the queue trigger
    _out, values = clean_run
    cloudwatch, sqs = tfs.aws_client("cloudwatch", endpoint), tfs.aws_client("sqs", endpoint)
    buffer_url = sqs.create_queue(QueueName="monitor-test-buffer")["QueueUrl"]
    sqs.send_message(QueueUrl=buffer_url, MessageBody="{}")
    names = ["monitor-test-freshness", "monitor-test-throttled"]
    for name in names:
        cloudwatch.put_metric_alarm(
            AlarmName=name, Namespace="AWS/Firehose", MetricName="ThrottledRecords", Statistic="Sum", Period=300,
            EvaluationPeriods=1, Threshold=0, ComparisonOperator="GreaterThanThreshold",
        )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName=names[0], StateValue="ALARM", StateReason="test")
    deployed = {
        **values,
        "alarm_names": names,
        "fanout_lambda_name": "monitor-test-fanout",
        "transform_lambda_name": "monitor-test-transform",
        "fanout_trigger": "queue",
        "buffer_queue_url": buffer_url,
    }
    outputs_file = tmp_path / "outputs.json"
    stack_outputs.write(outputs_file, deployed)
    ms.put_datapoint(cloudwatch, "AWS/Lambda", "Errors", ("FunctionName", "monitor-test-fanout"), 2)
    ms.put_datapoint(cloudwatch, "AWS/Lambda", "Errors", ("FunctionName", "monitor-test-transform"), 0)

    # WHEN monitor reads them
    status, text, document = monitor(capsys, outputs_file)

    # THEN the alarm in ALARM and the fan-out's errors are warnings, named; the backlog is reported
    found = {check["name"]: check for check in document["checks"]}
    assert found["alarms in ALARM"]["verdict"] == "WARN"
    assert found["alarms in ALARM"]["detail"] == "monitor-test-freshness"
    assert found["fanout Lambda Errors (monitor-test-fanout)"]["verdict"] == "WARN"
    assert found["transform Lambda Errors (monitor-test-transform)"]["verdict"] == "OK"
    assert found["buffer queue backlog"]["value"].startswith("1 messages"), found["buffer queue backlog"]
    assert status >= 1, text


def test_monitor_warns_of_dynamodb_write_throttles_only_after_a_run_that_was_throttled(
    clean_run: tuple[Path, dict[str, Any]],
    throttled_run: tuple[Path, dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    def rows(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in document["checks"] if c["name"].startswith("DynamoDB write throttles")}

    # GIVEN a run against tables at a new table's 4,000 write units/s THEN a row per table and GSI2, each OK
    out, values = clean_run
    _status, text, document = monitor(capsys, out / "outputs.json")
    sales, idempotency = values["sales_table_name"], values["idempotency_table_name"]
    assert {name: row["verdict"] for name, row in rows(document).items()} == {
        f"DynamoDB write throttles ({sales})": "OK",
        f"DynamoDB write throttles ({sales} GSI2)": "OK",
        f"DynamoDB write throttles ({idempotency})": "OK",
    }, text  # (its other checks carry the problems the test above put in)

    # GIVEN a burst against tables warm at 100 write units/s WHEN monitor reads its outputs THEN each row warns,
    # saying the throttles were absorbed, and the exit status is a warning: nothing was lost
    out, values = throttled_run
    status, text, document = monitor(capsys, out / "outputs.json")
    sales, idempotency = values["sales_table_name"], values["idempotency_table_name"]
    found = rows(document)
    assert set(found) == {
        f"DynamoDB write throttles ({sales})",
        f"DynamoDB write throttles ({sales} GSI2)",
        f"DynamoDB write throttles ({idempotency})",
    }, text
    for row in found.values():
        assert row["verdict"] == "WARN", text
        assert int(row["value"].split()[0].replace(",", "")) > 0, row
        assert "late, not lost" in row["detail"] and "--warm-throughput" in row["detail"], row
    assert status == 1, text
    assert text.startswith(f"WARNING: DynamoDB write throttles ({sales})"), text
