"""The Terraform alarms and monitor's metric declaration (operations/metrics.py) cannot drift apart.

Reads every alarm from a plan of terraform/ (against a moto_server, offline) and checks that its
namespace, metric, statistic and dimension names are ones the declaration has, exactly as AWS publishes
them, and that the thresholds monitor shares with the alarms are equal. A new alarm on an undeclared metric,
a renamed dimension or a changed threshold rule fails here, naming the alarm.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from operations import metrics
from operations.monitor import Thresholds
from tests.integration import terraform_support as tfs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.terraform,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH"),
]

moto_server_endpoint = tfs.moto_server_endpoint  # the module-scoped fixture, re-exported for pytest

#: (namespace, metric) -> the declarations of it (one metric may be read with more than one statistic).
DECLARED: dict[tuple[str, str], list[metrics.Metric]] = {}
for _metric in metrics.ALL.values():
    DECLARED.setdefault((_metric.namespace, _metric.name), []).append(_metric)
#: Alarms whose rule monitor shares: metric name -> (comparison, threshold) monitor judges by.
SHARED_RULES = {
    "ThrottledRecords": ("GreaterThanThreshold", 0),
    "FailedConversion.Records": ("GreaterThanThreshold", 0),
    "ExecuteProcessing.Success": ("LessThanThreshold", 1),
    "PartitionCountExceeded": ("GreaterThanOrEqualToThreshold", 1),
    "ApproximateNumberOfMessagesVisible": ("GreaterThanThreshold", 0),
    "Errors": ("GreaterThanThreshold", 0),
    "Throttles": ("GreaterThanThreshold", 0),
    "DeliveryToS3.DataFreshness": ("GreaterThanThreshold", Thresholds.from_declarations().freshness_seconds),
    "TransformRecordsFailed": ("GreaterThanThreshold", 0),
    "WriteThrottleEvents": ("GreaterThanThreshold", 0),
}
#: Alarms monitor judges by a rule of its own, each with the reason; every other alarm must share its rule.
JUDGED_OTHERWISE = {
    "buffer-queue-backlog": "a 5-minute minimum above a variable's threshold; monitor reads the live depth",
    "buffer-queue-oldest-message-age": "a variable's threshold (600 s); monitor warns past the visibility timeout "
    "and fails past max_receive_count of them (pipeline.json)",
    "dead-letter-queue-oldest-message": "dead_letter_age_alarm_hours (a variable, 4 h); monitor fails past 75% of "
    "the queue's retention",
}


#: Streams in the plan: more than one, so that every per-stream alarm must exist for each of them.
STREAM_COUNT = 2


@pytest.fixture(scope="module")
def planned(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[dict[str, Any]]]:
    """Every resource of a plan with the default variables and STREAM_COUNT Firehose streams, as planned values."""
    terraform = tfs.initialised_module(tmp_path_factory.mktemp("terraform-alarms"), moto_server_endpoint)
    terraform.run(
        "plan", "-input=false", "-out=alarms.tfplan", "-var-file=moto.tfvars.json",
        f"-var=firehose_stream_count={STREAM_COUNT}", timeout=240,
    )  # fmt: skip
    plan = json.loads(terraform.run("show", "-json", "alarms.tfplan").stdout)
    yield plan["planned_values"]["root_module"]["resources"]


@pytest.fixture(scope="module")
def alarms(planned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every aws_cloudwatch_metric_alarm of the plan."""
    return [r for r in planned if r["type"] == "aws_cloudwatch_metric_alarm"]


@pytest.fixture(scope="module")
def stream_names(planned: list[dict[str, Any]]) -> set[str]:
    """The names of the plan's Firehose delivery streams."""
    return {r["values"]["name"] for r in planned if r["type"] == "aws_kinesis_firehose_delivery_stream"}


def _metrics_of(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """(namespace, metric_name, statistic, dimensions) of a single-metric alarm or of each metric query."""
    values = alarm["values"]
    if values.get("metric_name"):
        return [{key: values[key] for key in ("namespace", "metric_name", "statistic", "dimensions")}]
    found = []
    for query in values.get("metric_query", []):
        for metric in query.get("metric", []):
            found.append({**metric, "statistic": metric["stat"]})
    return found


def test_every_alarm_reads_a_declared_metric_with_its_statistic_and_dimension(alarms: list[dict[str, Any]]) -> None:
    assert len(alarms) >= 10, "the plan has the pipeline's alarms"
    for alarm in alarms:
        read = _metrics_of(alarm)
        assert read, f"{alarm['address']} reads no metric"
        for metric in read:
            key = (metric["namespace"], metric["metric_name"])
            assert key in DECLARED, f"{alarm['address']} alarms on {key}, which operations/metrics.py does not declare"
            declared = [m for m in DECLARED[key] if m.statistic == metric["statistic"]]
            assert declared, (alarm["address"], metric["statistic"])
            # A declared metric names every dimension it is published under (a GSI's: TableName and
            # GlobalSecondaryIndexName); the alarm must name exactly those of one declaration.
            dimensions = set(metric["dimensions"])
            assert dimensions in [set(m.dimensions) for m in declared], (alarm["address"], metric["dimensions"])


def test_monitor_judges_by_the_alarms_thresholds_where_they_share_a_rule(alarms: list[dict[str, Any]]) -> None:
    shared = 0
    for alarm in alarms:
        values = alarm["values"]
        if alarm["address"].split('["')[-1].rstrip('"]') in JUDGED_OTHERWISE:
            shared += 1
        elif values.get("metric_name") in SHARED_RULES:
            expected = SHARED_RULES[values["metric_name"]]
            assert (values["comparison_operator"], values["threshold"]) == expected, alarm["address"]
            shared += 1
        elif not values.get("metric_name"):  # the incoming-traffic alarms: percent of the per-second quota
            assert values["threshold"] == metrics.INCOMING_LIMIT_PERCENT, alarm["address"]
            assert values["comparison_operator"] == "GreaterThanThreshold", alarm["address"]
            shared += 1
    assert shared == len(alarms), "every alarm mirrors a monitor check (or is listed in JUDGED_OTHERWISE)"


def test_every_firehose_alarm_watches_one_stream_and_every_stream_has_them_all(
    alarms: list[dict[str, Any]], stream_names: set[str]
) -> None:
    # GIVEN a plan with STREAM_COUNT streams THEN each Firehose alarm reads a single stream, and every Firehose
    # metric alarmed on for one stream is alarmed on, the same way, for each of them (Firehose's metrics and
    # quotas are per stream: an alarm on stream 0 alone would leave the others unwatched).
    assert len(stream_names) == STREAM_COUNT
    watched: dict[tuple[str, ...], set[str]] = {}
    for alarm in alarms:
        read = [m for m in _metrics_of(alarm) if m["namespace"] == "AWS/Firehose"]
        if not read:
            continue
        streams = {m["dimensions"]["DeliveryStreamName"] for m in read}
        assert len(streams) == 1, (alarm["address"], streams)
        kind = tuple(sorted(f"{m['metric_name']}/{m['statistic']}" for m in read))
        watched.setdefault(kind, set()).update(streams)
    assert len(watched) >= 8, watched  # five single-metric alarms and three quota alarms
    for kind, streams in watched.items():
        assert streams == stream_names, (kind, streams)


def test_dynamodb_write_alarms_watch_both_tables_and_the_index_monitor_reads(
    alarms: list[dict[str, Any]], planned: list[dict[str, Any]]
) -> None:
    # GIVEN the plan THEN one WriteThrottleEvents alarm for each table and one for the sales table's GSI, the index
    # monitor reads (metrics.SALES_TABLE_INDEX); silent when nothing is throttled (DynamoDB publishes no throttle
    # datapoint then), and telling the operator it is a capacity warning and what to do.
    tables = {r["name"]: r["values"] for r in planned if r["type"] == "aws_dynamodb_table"}
    assert [i["name"] for i in tables["sales"]["global_secondary_index"]] == [metrics.SALES_TABLE_INDEX]
    throttles = [a["values"] for a in alarms if a["values"].get("metric_name") == "WriteThrottleEvents"]
    assert sorted(tuple(sorted(v["dimensions"].items())) for v in throttles) == sorted(
        [
            (("TableName", tables["sales"]["name"]),),
            (("GlobalSecondaryIndexName", metrics.SALES_TABLE_INDEX), ("TableName", tables["sales"]["name"])),
            (("TableName", tables["idempotency"]["name"]),),
        ]
    )
    for values in throttles:
        assert (values["namespace"], values["statistic"], values["period"]) == ("AWS/DynamoDB", "Sum", 300)
        assert values["treat_missing_data"] == "notBreaching"
        assert len(values["alarm_description"]) <= 1024  # CloudWatch's limit
        assert "late, not lost" in values["alarm_description"]
        assert "--warm-throughput" in values["alarm_description"]
