"""terraform/ variables: service rules are rejected at plan time, and overrides reach the resources.

Plans only (nothing is applied), against a moto_server so the provider's data sources never leave
127.0.0.1. Fast: two plans, about 10 s.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fanout_lambda.settings import SOLD_DATE_YEARS, TENANT_IDS
from tests.integration import terraform_support as tfs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.terraform,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH"),
]

moto_server_endpoint = tfs.moto_server_endpoint  # the module-scoped fixture, re-exported for pytest

#: One violation per validated rule: variable → value that breaks it.
INVALID = {
    "name_prefix": "Bad_Name",
    "firehose_buffering_size_mib": 32,  # dynamic partitioning needs >= 64 MiB
    "firehose_buffering_interval_seconds": 30,  # ... and >= 60 s
    "processor_buffer_size_mib": 3,  # Firehose allows 3, the 6 MB response bound is proven only up to 2
    "processor_number_of_retries": 1.5,
    "parquet_compression": "LZO",
    "lake_sse_algorithm": "aws:kms:dsse",
    "tenant_ids": ["ok-tenant", "a/b"],
    "fanout_maximum_retry_attempts": 3,
    "eventbridge_maximum_event_age_seconds": 30,
    "transform_timeout_seconds": 301,
    "log_retention_days": 10,
    "partition_projection_year_range": "2040,2020",
    "dead_letter_age_alarm_hours": 6,  # SQS stops publishing an idle queue's metrics after about six hours
}


@pytest.fixture(scope="module")
def terraform(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tfs.Terraform]:
    """An initialised temp copy of terraform/ with the moto variables file written."""
    yield tfs.initialised_module(tmp_path_factory.mktemp("terraform-vars"), moto_server_endpoint)


def _var_file(workdir: Path, name: str, values: dict[str, Any]) -> str:
    (workdir / name).write_text(json.dumps(values, indent=2))
    return f"-var-file={name}"


def test_plan_rejects_every_service_rule_violation(terraform: tfs.Terraform) -> None:
    invalid = _var_file(terraform.workdir, "invalid.tfvars.json", INVALID)
    result = terraform.run("plan", "-input=false", "-var-file=moto.tfvars.json", invalid, check=False, timeout=120)
    assert result.returncode == 1
    rejected = set(re.findall(r"var\.(\w+) is ", result.stderr))
    assert rejected == set(INVALID), result.stderr[-4000:]


def test_overrides_and_tenants_reach_the_stream_and_table(terraform: tfs.Terraform) -> None:
    overrides = {
        "firehose_buffering_size_mib": 64,
        "firehose_buffering_interval_seconds": 60,
        "processor_buffer_size_mib": 2,
        "parquet_compression": "GZIP",
        "tenant_ids": ["carousel-labs", "acme.eu"],
        "partition_projection_year_range": "2022,2030",
    }
    terraform.run(
        "plan", "-input=false", "-out=overrides.tfplan", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "overrides.tfvars.json", overrides), timeout=180,
    )  # fmt: skip
    plan = json.loads(terraform.run("show", "-json", "overrides.tfplan").stdout)
    # Values still unknown at plan time are left out of planned_values; the ones checked here are known.
    resources = {r["address"]: r.get("values", {}) for r in plan["planned_values"]["root_module"]["resources"]}

    s3 = resources["aws_kinesis_firehose_delivery_stream.sales_history"]["extended_s3_configuration"][0]
    assert (s3["buffering_size"], s3["buffering_interval"]) == (64, 60)
    parameters = {
        p["parameter_name"]: p.get("parameter_value")  # LambdaArn is unknown until apply
        for p in s3["processing_configuration"][0]["processors"][0]["parameters"]
    }
    assert parameters.get("BufferSizeInMBs") == "2"  # differs from Firehose's default, so it is sent
    assert "NumberOfRetries" not in parameters  # pipeline.json's 3 is Firehose's default: left out
    serializer = s3["data_format_conversion_configuration"][0]["output_format_configuration"][0]["serializer"][0]
    assert serializer["parquet_ser_de"][0]["compression"] == "GZIP"

    table = resources["aws_glue_catalog_table.sales_history"]["parameters"]
    assert table["projection.tenant_id.type"] == "enum"
    assert table["projection.tenant_id.values"] == "carousel-labs,acme.eu"
    assert table["parquet.compression"] == "GZIP"

    # Whatever Athena's projection shows, the fan-out is told, so it refuses (to the DLQ) what Athena would hide.
    assert table["projection.year.range"] == "2022,2030"
    # The function's environment also holds values known only after apply (the queue URL), so the plan
    # leaves it out; the part lambda.tf merges in for the lake's scope is read with `terraform console`
    # (the apply test reads the deployed function's environment).
    console = terraform.run(
        "console", "-var-file=moto.tfvars.json", "-var-file=overrides.tfvars.json",
        input="jsonencode(local.fanout_lake_scope_environment)\n", timeout=120,
    )  # fmt: skip
    environment = json.loads(json.loads(console.stdout.strip()))
    assert environment[SOLD_DATE_YEARS] == "2022,2030"
    assert environment[TENANT_IDS] == "carousel-labs,acme.eu"


def test_plan_rejects_a_pipeline_json_that_breaks_a_firehose_rule(
    moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN a copy of the module whose pipeline.json asks for a 32 MiB buffer (dynamic partitioning needs 64)
    base = tmp_path_factory.mktemp("terraform-bad-pipeline")
    runner = tfs.initialised_module(base, moto_server_endpoint)
    (base / "pipeline_config").unlink()  # the copy links the real folder: give it its own pipeline.json
    (base / "pipeline_config").mkdir()
    pipeline = json.loads((tfs.ROOT / "pipeline_config" / "pipeline.json").read_text())
    pipeline["firehose"]["buffering_size_mib"] = 32
    (base / "pipeline_config" / "pipeline.json").write_text(json.dumps(pipeline))

    # WHEN planned THEN the precondition names the file and the rule, before any API call could
    result = runner.run("plan", "-input=false", "-var-file=moto.tfvars.json", check=False, timeout=120)
    assert result.returncode == 1
    assert "pipeline_config/pipeline.json's firehose values break" in " ".join(result.stderr.split())
