"""terraform/ variables: service rules are rejected at plan time, and overrides reach the resources.

Plans only (nothing is applied), against a moto_server so the provider's data sources never leave
127.0.0.1. Each plan takes 10-30 s on a loaded 2-core machine.
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
    "fanout_trigger": "sqs",
    "buffer_queue_batch_size": 10001,  # SQS event source mappings take at most 10,000
    "buffer_queue_maximum_batching_window_seconds": 301,
    "buffer_queue_maximum_concurrency": 1,  # Lambda's minimum is 2
    "buffer_queue_max_receive_count": 0,
    "buffer_queue_visibility_timeout_seconds": 43201,  # SQS's maximum is 12 hours
    "buffer_queue_oldest_message_age_alarm_seconds": 30,
    "buffer_queue_visible_messages_alarm_threshold": 0,
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


def _planned_resources(terraform: tfs.Terraform, plan_file: str) -> dict[str, dict[str, Any]]:
    plan = json.loads(terraform.run("show", "-json", plan_file).stdout)
    # Values still unknown at plan time are left out of planned_values; the ones checked here are known.
    return {r["address"]: r.get("values", {}) for r in plan["planned_values"]["root_module"]["resources"]}


def test_queue_trigger_plans_an_sse_sqs_buffer_queue_and_its_mapping_from_pipeline_json(
    terraform: tfs.Terraform,
) -> None:
    # moto reports SqsManagedSseEnabled = true for every queue, so the request itself is checked here.
    terraform.run("plan", "-input=false", "-out=queue.tfplan", "-var-file=moto.tfvars.json", timeout=180)
    resources = _planned_resources(terraform, "queue.tfplan")
    pipeline = json.loads((tfs.ROOT / "pipeline_config" / "pipeline.json").read_text())
    settings = pipeline["buffer_queue"]

    queue = resources["aws_sqs_queue.buffer[0]"]
    assert queue["sqs_managed_sse_enabled"] is True
    assert queue["kms_master_key_id"] is None
    assert queue["visibility_timeout_seconds"] == settings["visibility_timeout_seconds"]
    assert queue["message_retention_seconds"] == settings["message_retention_seconds"]
    mapping = resources["aws_lambda_event_source_mapping.buffer_queue[0]"]
    assert mapping["batch_size"] == settings["batch_size"]
    assert mapping["maximum_batching_window_in_seconds"] == settings["maximum_batching_window_seconds"]
    assert mapping["scaling_config"] == [{"maximum_concurrency": settings["maximum_concurrency"]}]
    assert mapping["function_response_types"] == ["ReportBatchItemFailures"]
    assert resources["aws_cloudwatch_event_target.fanout"]["target_id"] == "fanout-buffer-queue"
    # No EventBridge invoke permission and no async invoke config: the mapping invokes synchronously.
    assert not any(
        a.startswith(("aws_lambda_permission.", "aws_lambda_function_event_invoke_config.")) for a in resources
    )


def test_overrides_reach_the_buffer_queue_and_its_mapping(terraform: tfs.Terraform) -> None:
    overrides = {
        "buffer_queue_batch_size": 10,  # at most 10: a zero window is allowed
        "buffer_queue_maximum_batching_window_seconds": 0,
        "buffer_queue_maximum_concurrency": 50,
        "buffer_queue_max_receive_count": 3,
        "buffer_queue_visibility_timeout_seconds": 400,
        "fanout_timeout_seconds": 60,  # 6 x 60 + 0 = 360 <= 400
        "fanout_reserved_concurrency": 50,  # not below the mapping's maximum concurrency
    }
    terraform.run(
        "plan", "-input=false", "-out=queue-overrides.tfplan", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "queue-overrides.tfvars.json", overrides), timeout=180,
    )  # fmt: skip
    resources = _planned_resources(terraform, "queue-overrides.tfplan")
    assert resources["aws_sqs_queue.buffer[0]"]["visibility_timeout_seconds"] == 400
    mapping = resources["aws_lambda_event_source_mapping.buffer_queue[0]"]
    assert (mapping["batch_size"], mapping["maximum_batching_window_in_seconds"]) == (10, 0)
    assert mapping["scaling_config"] == [{"maximum_concurrency": 50}]
    redrive = json.loads(resources["aws_sqs_queue_redrive_policy.buffer[0]"].get("redrive_policy") or "null")
    # The dead-letter queue's ARN is unknown before apply, so the whole document may be; when known, check it.
    assert redrive is None or redrive["maxReceiveCount"] == 3


def test_direct_trigger_plans_todays_wiring_and_no_queue(terraform: tfs.Terraform) -> None:
    terraform.run(
        "plan", "-input=false", "-out=direct.tfplan", "-var-file=moto.tfvars.json", "-var=fanout_trigger=direct",
        timeout=180,
    )  # fmt: skip
    resources = _planned_resources(terraform, "direct.tfplan")
    assert not any("buffer" in address for address in resources), [a for a in resources if "buffer" in a]
    assert resources["aws_cloudwatch_event_target.fanout"]["target_id"] == "fanout-lambda"
    assert resources["aws_lambda_permission.eventbridge_invokes_fanout[0]"]["principal"] == "events.amazonaws.com"
    invoke_config = resources["aws_lambda_function_event_invoke_config.fanout[0]"]
    assert invoke_config["maximum_retry_attempts"] == 2


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            {"fanout_timeout_seconds": 60},  # 6 x 60 + 5 > pipeline.json's 185 s visibility timeout
            "must be at least 6 x fanout_timeout_seconds (60 s) + the maximum batching window (5 s) = 365 s",
        ),
        (
            {"buffer_queue_batch_size": 100, "buffer_queue_maximum_batching_window_seconds": 0},
            "batch_size 100 must be an integer 1-10000, and above 10 needs maximum_batching_window_seconds >= 1",
        ),
        (
            {"fanout_reserved_concurrency": 5},  # below pipeline.json's maximum_concurrency of 10
            "fanout_reserved_concurrency (5) is below the buffer queue's maximum_concurrency (10)",
        ),
    ],
    ids=["visibility-below-six-timeouts", "batch-above-10-without-window", "reserved-below-maximum-concurrency"],
)
def test_plan_rejects_a_queue_that_breaks_lambdas_rules(
    terraform: tfs.Terraform, broken: dict[str, Any], message: str
) -> None:
    # GIVEN values each variable's own validation accepts, but which together break a Lambda/SQS rule
    result = terraform.run(
        "plan", "-input=false", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "broken-queue.tfvars.json", broken), check=False, timeout=180,
    )  # fmt: skip
    # THEN the plan fails and names the rule and the values
    assert result.returncode == 1
    assert message in " ".join(result.stderr.split()), result.stderr[-3000:]


def _module_with_pipeline(
    moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory, edit: dict[str, Any]
) -> tfs.Terraform:
    """A module copy whose pipeline.json is the real one with ``edit`` merged into its sections."""
    base = tmp_path_factory.mktemp("terraform-bad-pipeline")
    runner = tfs.initialised_module(base, moto_server_endpoint)
    (base / "pipeline_config").unlink()  # the copy links the real folder: give it its own pipeline.json
    (base / "pipeline_config").mkdir()
    pipeline = json.loads((tfs.ROOT / "pipeline_config" / "pipeline.json").read_text())
    for key, value in edit.items():
        pipeline[key] = {**pipeline[key], **value} if isinstance(value, dict) else value
    (base / "pipeline_config" / "pipeline.json").write_text(json.dumps(pipeline))
    return runner


@pytest.mark.parametrize(
    ("edit", "messages"),
    [
        # dynamic partitioning needs a 64 MiB buffer
        ({"firehose": {"buffering_size_mib": 32}}, ["pipeline_config/pipeline.json's firehose values break"]),
        ({"fanout_trigger": "sqs"}, ['is "sqs"; it must be "queue" or "direct"']),
        (
            # (message_retention_seconds and visibility_timeout_seconds ranges the provider checks itself)
            {"buffer_queue": {"visibility_timeout_seconds": 100, "max_receive_count": 0}},
            [
                "The buffer queue's visibility timeout (100 s, buffer_queue.visibility_timeout_seconds in "
                "pipeline_config/pipeline.json",
                "pipeline_config/pipeline.json's buffer_queue values break an SQS rule",
            ],
        ),
        (
            {"buffer_queue": {"batch_size": 20000}},
            ["The buffer queue's event source mapping breaks a Lambda rule"],
        ),
    ],
    ids=["firehose-buffer", "trigger", "queue-visibility-and-receive-count", "mapping-batch-size"],
)
def test_plan_rejects_a_pipeline_json_that_breaks_a_service_rule(
    moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory, edit: dict[str, Any], messages: list[str]
) -> None:
    # GIVEN a copy of the module whose pipeline.json breaks a rule the variables' validation never sees
    runner = _module_with_pipeline(moto_server_endpoint, tmp_path_factory, edit)
    # WHEN planned THEN a precondition names the file and the rule, before any API call could
    result = runner.run("plan", "-input=false", "-var-file=moto.tfvars.json", check=False, timeout=180)
    assert result.returncode == 1
    errors = " ".join(result.stderr.split())
    for message in messages:
        assert message in errors, errors[-3000:]
