"""monitor on a stack whose lake is an Iceberg table: the DeliveryToIceberg.* metrics are judged instead."""

from __future__ import annotations

from dataclasses import replace

from operations.monitor import Observation, StackNames, Verdict, evaluate
from operations.monitor.collect import metric_queries
from operations.outputs import StackOutputs
from tests.unit.operations.test_monitor_verdicts import STACK, THRESHOLDS, WINDOW, series

ICEBERG = replace(STACK, lake_table_format="iceberg")


def _checks(observation: Observation) -> dict[str, Verdict]:
    return {check.name: check.verdict for check in evaluate(observation, THRESHOLDS) if check.stream is not None}


def test_an_iceberg_stream_is_judged_on_its_commits_freshness_and_failed_rows() -> None:
    # GIVEN a healthy Iceberg stream with rows refused by the table
    observation = Observation(
        ICEBERG,
        WINDOW,
        {
            "incoming_records": series(100, 100),
            "iceberg_delivery_success": series(1, 1),
            "iceberg_data_freshness": series(200, 310),
            "iceberg_successful_rows": series(98, 100),
            "iceberg_failed_rows": series(2, 0),
            "processing_success": series(1, 1),
        },
    )
    # WHEN judged
    verdicts = _checks(observation)
    # THEN the Iceberg checks are there, the S3, conversion and partition ones are not
    assert verdicts["DeliveryToIceberg.Success"] is Verdict.OK
    assert verdicts["DeliveryToIceberg.DataFreshness"] is Verdict.OK
    assert verdicts["DeliveryToIceberg.SuccessfulRowCount"] is Verdict.OK
    assert verdicts["DeliveryToIceberg.FailedRowCount"] is Verdict.WARN
    assert not {"DeliveryToS3.DataFreshness", "FailedConversion.Records", "PartitionCountExceeded"} & set(verdicts)


def test_a_stale_iceberg_stream_fails_on_freshness() -> None:
    observation = Observation(
        ICEBERG, WINDOW, {"incoming_records": series(100), "iceberg_data_freshness": series(100, 900)}
    )
    assert _checks(observation)["DeliveryToIceberg.DataFreshness"] is Verdict.FAIL


def test_the_format_comes_from_the_outputs_and_defaults_to_parquet() -> None:
    outputs = {"delivery_stream_name": "s", "delivery_stream_names": ["s"]}
    assert StackNames.from_outputs(StackOutputs(outputs, "test")).lake_table_format == "parquet"
    iceberg = StackOutputs({**outputs, "lake_table_format": "iceberg"}, "test")
    assert StackNames.from_outputs(iceberg).lake_table_format == "iceberg"


def test_an_iceberg_stack_reads_the_iceberg_delivery_metrics_and_not_the_s3_ones() -> None:
    iceberg = {metric.name for metric, _, _ in metric_queries(ICEBERG).values()}
    parquet = {metric.name for metric, _, _ in metric_queries(STACK).values()}
    assert {"DeliveryToIceberg.DataFreshness", "DeliveryToIceberg.FailedRowCount"} <= iceberg
    assert not {"DeliveryToS3.DataFreshness", "FailedConversion.Records", "PartitionCount"} & iceberg
    assert not any(name.startswith("DeliveryToIceberg.") for name in parquet)
