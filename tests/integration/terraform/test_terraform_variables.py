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

from fanout_lambda.settings import DYNAMODB_EMBEDDING_ENCODING, SOLD_DATE_YEARS, TENANT_IDS
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
    # Firehose allows up to 3; compact records widen ~7.7x in the transform's answer: 6 MB holds ~0.74 MiB
    "processor_buffer_size_mib": 0.8,
    "firehose_stream_count": 51,
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
    "dynamodb_embedding_encoding": "bfloat16",  # pipeline.json's embedding_encodings: float32, float16, int8
    "gsi2_projected_attributes": ["embedding", "salePrice"],  # an int8 or float16 item needs its encoding to decode
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
        "processor_buffer_size_mib": 0.7,  # the new bound (was 2 before the compact record)
        "parquet_compression": "GZIP",
        "tenant_ids": ["carousel-labs", "acme.eu"],
        "partition_projection_year_range": "2022,2030",
        "dynamodb_embedding_encoding": "int8",
        "gsi2_projected_attributes": ["embedding", "embeddingEncoding", "embeddingScale"],
    }
    terraform.run(
        "plan", "-input=false", "-out=overrides.tfplan", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "overrides.tfvars.json", overrides), timeout=180,
    )  # fmt: skip
    plan = json.loads(terraform.run("show", "-json", "overrides.tfplan").stdout)
    # Values still unknown at plan time are left out of planned_values; the ones checked here are known.
    resources = {r["address"]: r.get("values", {}) for r in plan["planned_values"]["root_module"]["resources"]}

    s3 = resources["aws_kinesis_firehose_delivery_stream.sales_history[0]"]["extended_s3_configuration"][0]
    assert (s3["buffering_size"], s3["buffering_interval"]) == (64, 60)
    parameters = {
        p["parameter_name"]: p.get("parameter_value")  # LambdaArn is unknown until apply
        for p in s3["processing_configuration"][0]["processors"][0]["parameters"]
    }
    assert parameters.get("BufferSizeInMBs") == "0.7"  # differs from Firehose's default, so it is sent
    assert "NumberOfRetries" not in parameters  # pipeline.json's 3 is Firehose's default: left out
    serializer = s3["data_format_conversion_configuration"][0]["output_format_configuration"][0]["serializer"][0]
    assert serializer["parquet_ser_de"][0]["compression"] == "GZIP"

    table = resources["aws_glue_catalog_table.sales_history[0]"]["parameters"]
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

    # The item's embedding encoding reaches the fan-out, and GSI2 projects the list asked for.
    console = terraform.run(
        "console", "-var-file=moto.tfvars.json", "-var-file=overrides.tfvars.json",
        input="jsonencode(local.fanout_dynamodb_environment)\n", timeout=120,
    )  # fmt: skip
    assert json.loads(json.loads(console.stdout.strip())) == {DYNAMODB_EMBEDDING_ENCODING: "int8"}
    (gsi2,) = resources["aws_dynamodb_table.sales"]["global_secondary_index"]
    assert set(gsi2["non_key_attributes"]) == {"embedding", "embeddingEncoding", "embeddingScale"}


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
        "buffer_queue_max_receive_count": 20,  # at least 13: the receive budget must cover the declared backlog
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
    assert redrive is None or redrive["maxReceiveCount"] == 20


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
        (
            # 30 s base, 900 s cap: receives 1-4 wait at least 15 + 30 + 60 + 120 = 225 s < the 3,600 s backlog
            {"buffer_queue_max_receive_count": 5},
            "The buffer queue's receive budget is too short: the guaranteed backoffs d/2 of receives 1 .. "
            "max_receive_count-1, d = min(throttle_backoff_max_seconds, throttle_backoff_base_seconds x 2^(n-1)), "
            "add up to 225 s with max_receive_count 5, base 30 s and cap 900 s, less than longest_backlog_seconds "
            "(3600 s",
        ),
        (
            # The tests' provider is in us-east-1 (5 MiB/s per stream): 100 x 500 x 5120 B = 256 MB in a wave,
            # one stream takes 5,242,880 B/s x (30 - 3) s = 141,557,760 B within a timeout
            {"buffer_queue_maximum_concurrency": 100},
            "maximum_concurrency 100 x batch_size 500 x record_bytes 5120 = 256000000 bytes must be at most "
            "stream_count 1 x the Direct PUT quota of us-east-1 (5242880 bytes/s",
        ),
        (
            # pipeline.json's defaults in a 1 MiB/s region fit (25.6 MB <= 28.3 MB); 600-message batches do not
            {"aws_region": "eu-central-1", "buffer_queue_batch_size": 600},
            "maximum_concurrency 10 x batch_size 600 x record_bytes 5120 = 30720000 bytes must be at most "
            "stream_count 1 x the Direct PUT quota of eu-central-1 (1048576 bytes/s",
        ),
    ],
    ids=[
        "visibility-below-six-timeouts",
        "batch-above-10-without-window",
        "reserved-below-maximum-concurrency",
        "receive-budget-below-the-backlog",
        "waves-above-the-quota",
        "waves-above-a-1-mib-region-quota",
    ],
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


def test_two_streams_carry_the_wave_one_stream_cannot(terraform: tfs.Terraform) -> None:
    # GIVEN the wave that breaks the quota of one stream in us-east-1 (256 MB > 141.6 MB) WHEN a second stream
    # doubles what the streams take (283.1 MB) THEN the plan passes: streams multiply the quota.
    waves = {"buffer_queue_maximum_concurrency": 100, "firehose_stream_count": 2}
    result = terraform.run(
        "plan", "-input=false", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "two-streams.tfvars.json", waves), check=False, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


#: The Firehose alarms every stream must have: metric -> check (alarm key "<stream label>-<check>").
STREAM_ALARMS = {
    "DeliveryToS3.DataFreshness": "data-freshness",
    "ThrottledRecords": "throttled-records",
    "FailedConversion.Records": "failed-conversion",
    "ExecuteProcessing.Success": "transform-failing",
    "PartitionCountExceeded": "partition-count-exceeded",
}
#: The quota alarms: each stream's incoming metric against its own per-second limit.
QUOTA_ALARMS = {
    "IncomingBytes": "BytesPerSecondLimit",
    "IncomingRecords": "RecordsPerSecondLimit",
    "IncomingPutRequests": "PutRequestsPerSecondLimit",
}


def test_three_streams_are_planned_watched_granted_and_given_to_the_fanout(terraform: tfs.Terraform) -> None:
    # GIVEN firehose_stream_count = 3 WHEN planned
    terraform.run(
        "plan", "-input=false", "-out=streams.tfplan", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "streams.tfvars.json", {"firehose_stream_count": 3}), timeout=180,
    )  # fmt: skip
    resources = _planned_resources(terraform, "streams.tfplan")

    # THEN three identical streams into the same lake layout; stream 0 keeps its name, the others get -2, -3
    streams = [resources[f"aws_kinesis_firehose_delivery_stream.sales_history[{i}]"] for i in range(3)]
    names = [stream["name"] for stream in streams]
    assert names == ["carousel-sales-sales-history", "carousel-sales-sales-history-2", "carousel-sales-sales-history-3"]
    assert "aws_kinesis_firehose_delivery_stream.sales_history[3]" not in resources
    layouts = [
        {k: s["extended_s3_configuration"][0][k] for k in ("prefix", "error_output_prefix", "file_extension")}
        for s in streams
    ]
    assert layouts[0] == layouts[1] == layouts[2]

    # AND each stream is watched by the quota alarms (its own Incoming* against its own *PerSecondLimit), by
    # ThrottledRecords and by every other Firehose alarm
    alarms = [v for a, v in resources.items() if a.startswith("aws_cloudwatch_metric_alarm.")]
    for name in names:
        single = {
            a["metric_name"]: a["alarm_name"]
            for a in alarms
            if a.get("metric_name") and a["dimensions"] == {"DeliveryStreamName": name}
        }
        assert single == {metric: f"{name}-{check}" for metric, check in STREAM_ALARMS.items()}, (name, single)
        quota = set()
        for alarm in alarms:
            queried = {
                metric["metric_name"]: metric["dimensions"]
                for query in alarm.get("metric_query", [])
                for metric in query.get("metric", [])
            }
            if queried and all(d == {"DeliveryStreamName": name} for d in queried.values()):
                quota.add(tuple(sorted(queried)))
        assert quota == {tuple(sorted(pair)) for pair in QUOTA_ALARMS.items()}, (name, quota)

    # AND the fan-out may PutRecordBatch to exactly the three streams
    policy = json.loads(resources["aws_iam_role_policy.fanout_delivery_stream"]["policy"])
    (statement,) = policy["Statement"]
    assert statement["Action"] == "firehose:PutRecordBatch"
    resources_granted = statement["Resource"]
    assert sorted(resources_granted) == sorted(
        f"arn:aws:firehose:{tfs.REGION}:123456789012:deliverystream/{n}" for n in names
    )

    # AND its DELIVERY_STREAM_NAME lists the three, comma-separated (the function's environment as a whole stays
    # unknown until the queue's URL is; the part lambda.tf merges in for the streams is read from the plan)
    console = terraform.run(
        "console", "-plan", "-var-file=moto.tfvars.json", "-var-file=streams.tfvars.json",
        input="jsonencode(local.fanout_delivery_stream_environment)\n", timeout=180,
    )  # fmt: skip
    environment = json.loads(json.loads(console.stdout.strip().splitlines()[-1]))
    assert environment == {"DELIVERY_STREAM_NAME": ",".join(names)}


def test_plan_rejects_a_fanout_environment_past_lambdas_4_kb(terraform: tfs.Terraform) -> None:
    # GIVEN 50 streams (DELIVERY_STREAM_NAME ~1.6 KB) and ~2 KB of tenants, each within its own variable's rule
    tenants = [f"tenant-{i:03d}-abcdefghijklmnopq" for i in range(70)]
    crowded = {"firehose_stream_count": 50, "tenant_ids": tenants}
    result = terraform.run(
        "plan", "-input=false", "-var-file=moto.tfvars.json",
        _var_file(terraform.workdir, "crowded.tfvars.json", crowded), check=False, timeout=300,
    )  # fmt: skip
    # THEN the plan fails before Lambda would refuse the function's environment
    assert result.returncode == 1
    assert "The fan-out's environment would exceed Lambda's 4 KB" in " ".join(result.stderr.split()), result.stderr[
        -3000:
    ]


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
        (
            {"dynamodb": {"embedding_encoding": "bfloat16"}},
            ["pipeline_config/pipeline.json's dynamodb values break a rule: embedding_encoding (bfloat16)"],
        ),
    ],
    ids=["firehose-buffer", "trigger", "queue-visibility-and-receive-count", "mapping-batch-size", "dynamodb-encoding"],
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
