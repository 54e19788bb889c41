"""terraform/ with lake_table_format = "iceberg": planned against a moto_server (issue 20), and applied as far as
moto implements the APIs.

The plan must hold the Iceberg table (format v2, the Glue schema's columns, identity partitions on the partition
keys), Firehose streams with destination "iceberg" whose unique keys hold sale_id, and the compaction, retention
and orphan-file optimizers; no Parquet stream or table. The apply test creates what moto implements and names
what it does not (see README: moto 5.x has no Glue table optimizer API).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from operations import metrics
from tests.integration import terraform_support as tfs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.terraform,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH"),
]

moto_server_endpoint = tfs.moto_server_endpoint  # the module-scoped fixture, re-exported for pytest

SCHEMA = json.loads((tfs.ROOT / "glue_schemas" / "sales_history.json").read_text())
ICEBERG = {"lake_table_format": "iceberg", "firehose_stream_count": 2}


@pytest.fixture(scope="module")
def terraform(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tfs.Terraform]:
    """An initialised temp copy of terraform/ with the moto variables and the iceberg variables written."""
    runner = tfs.initialised_module(tmp_path_factory.mktemp("terraform-iceberg"), moto_server_endpoint)
    (runner.workdir / "iceberg.tfvars.json").write_text(json.dumps(ICEBERG))
    yield runner


@pytest.fixture(scope="module")
def planned(terraform: tfs.Terraform) -> dict[str, dict[str, Any]]:
    terraform.run(
        "plan", "-input=false", "-out=iceberg.tfplan", "-var-file=moto.tfvars.json", "-var-file=iceberg.tfvars.json",
        timeout=240,
    )  # fmt: skip
    plan = json.loads(terraform.run("show", "-json", "iceberg.tfplan").stdout)
    return {r["address"]: r.get("values", {}) for r in plan["planned_values"]["root_module"]["resources"]}


def test_the_iceberg_table_is_v2_with_the_glue_schemas_columns_and_partition_keys(
    planned: dict[str, dict[str, Any]],
) -> None:
    table = planned["aws_glue_catalog_table.sales_history_iceberg[0]"]
    assert table["name"] == SCHEMA["table"]
    assert table["open_table_format_input"] == [{"iceberg_input": [{"metadata_operation": "CREATE", "version": "2"}]}]
    (storage,) = table["storage_descriptor"]
    assert [(c["name"], c["type"]) for c in storage["columns"]] == [(c["name"], c["type"]) for c in SCHEMA["columns"]]
    assert storage["location"].endswith("/sales_history")
    # Glue makes each partition key an identity partition of the Iceberg table: tenant, then the sale's month.
    assert [k["name"] for k in table["partition_keys"]] == ["tenant_id", "year", "month"]
    # No Parquet table, no Parquet stream.
    assert "aws_glue_catalog_table.sales_history[0]" not in planned
    assert not [a for a in planned if a.startswith("aws_kinesis_firehose_delivery_stream.sales_history[")]


def test_each_stream_delivers_to_the_table_with_sale_id_as_unique_key_through_the_transform(
    planned: dict[str, dict[str, Any]],
) -> None:
    streams = [planned[f"aws_kinesis_firehose_delivery_stream.sales_history_iceberg[{i}]"] for i in range(2)]
    assert [s["name"] for s in streams] == ["carousel-sales-sales-history", "carousel-sales-sales-history-2"]
    for stream in streams:
        assert stream["destination"] == "iceberg"
        (config,) = stream["iceberg_configuration"]
        (table,) = config["destination_table_configuration"]
        assert table["unique_keys"] == ["sale_id"]
        assert (table["database_name"], table["table_name"]) == ("carousel_sales_carousel_sales", "sales_history")
        assert table["s3_error_output_prefix"].startswith("errors/!{firehose:error-output-type}/")
        assert config["catalog_arn"] == f"arn:aws:glue:{tfs.REGION}:123456789012:catalog"
        assert config["s3_backup_mode"] == "FailedDataOnly"
        (processing,) = config["processing_configuration"]
        (processor,) = processing["processors"]
        assert processor["type"] == "Lambda"
        # The function's ARN is known only after apply (the apply test reads it back).
        assert "LambdaArn" in {p["parameter_name"] for p in processor["parameters"]}


def test_the_table_is_compacted_and_its_snapshots_and_orphans_cleaned(planned: dict[str, dict[str, Any]]) -> None:
    optimizers = {v["type"]: v for a, v in planned.items() if a.startswith("aws_glue_catalog_table_optimizer.")}
    assert set(optimizers) == {"compaction", "retention", "orphan_file_deletion"}
    for optimizer in optimizers.values():
        assert (optimizer["database_name"], optimizer["table_name"]) == (
            "carousel_sales_carousel_sales",
            "sales_history",
        )
        assert optimizer["configuration"][0]["enabled"] is True
    (retention,) = optimizers["retention"]["configuration"][0]["retention_configuration"]
    assert retention["iceberg_configuration"][0]["clean_expired_files"] is True


def test_the_transform_is_told_to_answer_an_iceberg_destination(terraform: tfs.Terraform) -> None:
    console = terraform.run(
        "console", "-plan", "-var-file=moto.tfvars.json", "-var-file=iceberg.tfvars.json",
        input="jsonencode(local.transform_lake_environment)\n", timeout=180,
    )  # fmt: skip
    environment = json.loads(json.loads(console.stdout.strip().splitlines()[-1]))
    assert environment == {"LAKE_TABLE_FORMAT": "iceberg", "LAKE_DATABASE_NAME": "carousel_sales_carousel_sales"}


def test_the_alarms_watch_the_iceberg_delivery_metrics(planned: dict[str, dict[str, Any]]) -> None:
    alarms = [v for a, v in planned.items() if a.startswith("aws_cloudwatch_metric_alarm.")]
    for name in ("carousel-sales-sales-history", "carousel-sales-sales-history-2"):
        watched = {a["metric_name"] for a in alarms if a.get("dimensions") == {"DeliveryStreamName": name}}
        assert {"DeliveryToIceberg.DataFreshness", "DeliveryToIceberg.FailedRowCount"} <= watched
        assert not watched & {"DeliveryToS3.DataFreshness", "FailedConversion.Records", "PartitionCountExceeded"}
    # Every Firehose metric an alarm reads is one monitor declares (operations/metrics.py), as for Parquet.
    declared = {m.name for m in metrics.ALL.values() if m.namespace == metrics.FIREHOSE}
    alarmed = {a["metric_name"] for a in alarms if a.get("namespace") == "AWS/Firehose"}
    assert alarmed <= declared, alarmed - declared


def test_apply_creates_what_moto_implements(terraform: tfs.Terraform, moto_server_endpoint: str) -> None:
    # moto 5.x has no Glue table optimizer API (CreateTableOptimizer): the optimizers are left out with -target
    # on everything else, and the stream, table and roles are created and read back.
    targets = [
        "-target=aws_kinesis_firehose_delivery_stream.sales_history_iceberg",
        "-target=aws_glue_catalog_table.sales_history_iceberg",
        "-target=aws_iam_role_policy.table_optimizer",
        "-target=aws_glue_catalog_table.sales_history_dedup",
    ]
    terraform.run(
        "apply", "-input=false", "-auto-approve", "-var-file=moto.tfvars.json", "-var-file=iceberg.tfvars.json",
        *targets, timeout=600,
    )  # fmt: skip
    firehose = tfs.aws_client("firehose", moto_server_endpoint)
    description = firehose.describe_delivery_stream(DeliveryStreamName="carousel-sales-sales-history")
    (destination,) = description["DeliveryStreamDescription"]["Destinations"]
    iceberg = destination["IcebergDestinationDescription"]
    (table,) = iceberg["DestinationTableConfigurationList"]
    assert table["UniqueKeys"] == ["sale_id"]
    # The policies are known only once the bucket and database exist: read back from IAM. Firehose may commit to
    # exactly this table; the optimizers may rewrite only the table's files.
    iam = tfs.aws_client("iam", moto_server_endpoint)
    policy = iam.get_role_policy(RoleName="carousel-sales-sales-history-firehose", PolicyName="iceberg-table")
    commits = next(s for s in policy["PolicyDocument"]["Statement"] if s["Sid"] == "IcebergTableCommits")
    assert sorted(commits["Action"]) == ["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"]
    table_arn = f"arn:aws:glue:{tfs.REGION}:123456789012:table/carousel_sales_carousel_sales/sales_history"
    assert table_arn in commits["Resource"]
    assert not any(r.endswith("*") for r in commits["Resource"])
    optimizer = iam.get_role_policy(RoleName="carousel-sales-lake-table-optimizer", PolicyName="lake-table")
    statements = {s["Sid"]: s for s in optimizer["PolicyDocument"]["Statement"]}
    assert statements["TableFiles"]["Resource"].endswith("/sales_history/*")
    glue = tfs.aws_client("glue", moto_server_endpoint)
    stored = glue.get_table(DatabaseName="carousel_sales_carousel_sales", Name="sales_history")["Table"]
    assert [c["Name"] for c in stored["StorageDescriptor"]["Columns"]] == [c["name"] for c in SCHEMA["columns"]]
    terraform.run(
        "destroy", "-input=false", "-auto-approve", "-var-file=moto.tfvars.json", "-var-file=iceberg.tfvars.json",
        *targets, timeout=600, check=False,
    )  # fmt: skip
