"""terraform/ applied to a moto_server: what is deployed is what the rest of the project assumes.

One ``terraform apply`` (module-scoped fixture) on a throw-away copy of terraform/, then boto3 reads every
resource back and compares it with the shared declarations (pipeline_config/pipeline.json,
glue_schemas/sales_history.json, athena_queries/*.sql, fanout_lambda.settings); then a second plan must be
empty and ``destroy`` must succeed.

What moto cannot verify here (it stores the configuration; it does not run it):
- Firehose never invokes the transform Lambda, never converts to Parquet, never partitions, and ignores
  buffering and the error prefix: the test checks the stream's *configuration*, not delivery.
- Lambda code never runs (no Docker) and IAM policies are stored, not enforced: least privilege is checked
  by reading the policies' resources, not by being denied.
- KMS key policies, S3 bucket policies and SNS/SQS policies are not evaluated.
- CloudWatch alarms are never evaluated (no AWS/Firehose metrics exist in moto); the dashboard JSON is
  stored but not rendered.
- moto 5.2 has no DeleteNamedQuery: the apply/destroy cycle runs with athena_named_queries_enabled = false
  and the named queries are checked in a plan (one per SQL file, the file's text), not created in moto.
  Partition projection is not exercised and SQL is not parsed.
- moto 5.2 fails ListTagsForResource on an untagged Athena workgroup, so the test variables set tags.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from fanout_lambda.settings import REQUIRED_VARIABLES
from glue_schemas import sales_history
from pipeline_config import load as load_pipeline
from tests.integration import terraform_support as tfs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.terraform,
    pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not on PATH"),
]

moto_server_endpoint = tfs.moto_server_endpoint  # the module-scoped fixture, re-exported for pytest

#: Optional variables both Lambdas read (pipeline_config, Powertools).
OPTIONAL_VARIABLES = {
    "EMBEDDING_DIMENSION",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "POWERTOOLS_LOG_LEVEL",
}
#: Firehose's documented defaults for a Lambda processor (terraform/firehose.tf leaves these out when equal).
PROCESSOR_DEFAULTS = {"BufferSizeInMBs": "1", "BufferIntervalInSeconds": "60", "NumberOfRetries": "3"}
#: pipeline.json key behind each processor parameter.
PROCESSOR_KEYS = {
    "BufferSizeInMBs": "processor_buffer_size_mib",
    "BufferIntervalInSeconds": "processor_buffer_interval_seconds",
    "NumberOfRetries": "processor_number_of_retries",
}
GSI2_REQUIRED = {"embedding", "saleId", "category", "brand", "condition", "salePrice", "listedPrice", "daysToSell"}


@dataclass
class Deployment:
    terraform: tfs.Terraform
    endpoint: str
    outputs: dict[str, Any]
    destroyed: bool = False

    def client(self, service: str) -> Any:
        return tfs.aws_client(service, self.endpoint)


@pytest.fixture(scope="module")
def deployed(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """terraform init + apply on a temp copy of the module against moto; destroy in teardown if a test did not."""
    terraform = tfs.initialised_module(tmp_path_factory.mktemp("terraform"), moto_server_endpoint)
    deployment = Deployment(terraform, moto_server_endpoint, outputs={})
    try:
        terraform.run("apply", "-auto-approve", "-input=false", "-var-file=moto.tfvars.json", timeout=420)
        deployment.outputs = terraform.outputs()
        yield deployment
    finally:
        if not deployment.destroyed:
            terraform.run("destroy", "-auto-approve", "-input=false", "-var-file=moto.tfvars.json", check=False)


@pytest.fixture(scope="module")
def pipeline() -> dict[str, Any]:
    return load_pipeline()


def _extended_s3(deployed: Deployment) -> dict[str, Any]:
    description = deployed.client("firehose").describe_delivery_stream(
        DeliveryStreamName=deployed.outputs["delivery_stream_name"]
    )["DeliveryStreamDescription"]
    destination: dict[str, Any] = description["Destinations"][0]["ExtendedS3DestinationDescription"]
    return destination


def test_delivery_stream_prefixes_and_buffering_are_pipeline_json(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    # GIVEN the deployed stream WHEN read back THEN prefixes and buffering are pipeline.json's
    firehose = pipeline["firehose"]
    s3 = _extended_s3(deployed)
    assert s3["Prefix"] == firehose["prefix"]
    assert s3["ErrorOutputPrefix"] == firehose["error_output_prefix"]
    assert s3.get("FileExtension") == firehose["file_extension"]
    assert s3["BufferingHints"] == {
        "SizeInMBs": firehose["buffering_size_mib"],
        "IntervalInSeconds": firehose["buffering_interval_seconds"],
    }
    assert s3["CompressionFormat"] == "UNCOMPRESSED"  # Parquet compresses inside the file
    assert s3["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True
    assert s3["BucketARN"] == f"arn:aws:s3:::{deployed.outputs['lake_bucket_name']}"


def test_delivery_stream_processor_is_the_transform_lambda_with_pipeline_json_hints(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    s3 = _extended_s3(deployed)
    processing = s3["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    # Only the Lambda processor: keys come from the transform, so no MetadataExtraction/RecordDeAggregation.
    assert [p["Type"] for p in processing["Processors"]] == ["Lambda"]
    parameters = tfs.firehose_processor_parameters(processing["Processors"][0])
    transform = deployed.client("lambda").get_function(FunctionName=deployed.outputs["transform_lambda_name"])
    assert parameters["LambdaArn"] == f"{transform['Configuration']['FunctionArn']}:$LATEST"
    for name, key in PROCESSOR_KEYS.items():
        # A parameter equal to Firehose's default may be absent (the provider omits it); the effective value counts.
        effective = float(parameters.get(name, PROCESSOR_DEFAULTS[name]))
        assert effective == float(pipeline["firehose"][key]), name


def test_delivery_stream_converts_to_parquet_through_the_glue_table(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    conversion = _extended_s3(deployed)["DataFormatConversionConfiguration"]
    schema = sales_history()
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert (
        conversion["OutputFormatConfiguration"]["Serializer"]["ParquetSerDe"]["Compression"]
        == (pipeline["firehose"]["parquet_compression"])
    )
    schema_configuration = conversion["SchemaConfiguration"]
    assert schema_configuration["DatabaseName"] == schema["database"]
    assert schema_configuration["TableName"] == schema["table"]
    assert schema_configuration["VersionId"] == "LATEST"
    assert schema_configuration["Region"] == tfs.REGION


def test_delivery_stream_is_encrypted_with_the_pipeline_key(deployed: Deployment) -> None:
    description = deployed.client("firehose").describe_delivery_stream(
        DeliveryStreamName=deployed.outputs["delivery_stream_name"]
    )["DeliveryStreamDescription"]
    encryption = description["DeliveryStreamEncryptionConfiguration"]
    assert encryption["KeyType"] == "CUSTOMER_MANAGED_CMK"
    assert encryption["KeyARN"] == deployed.outputs["kms_key_arn"]


def test_glue_table_is_glue_schemas_sales_history(deployed: Deployment, pipeline: dict[str, Any]) -> None:
    schema = sales_history()
    table = deployed.client("glue").get_table(DatabaseName=schema["database"], Name=schema["table"])["Table"]
    columns = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert columns == [(c["name"], c["type"]) for c in schema["columns"]]
    partition_keys = [(k["Name"], k["Type"]) for k in table["PartitionKeys"]]
    assert partition_keys == [(k["name"], k["type"]) for k in schema["partition_keys"]]

    parameters = table["Parameters"]
    bucket = deployed.outputs["lake_bucket_name"]
    # The projection template is the Firehose prefix with !{partitionKeyFromLambda:x} → ${x}.
    expected_template = "s3://{}/{}".format(
        bucket, re.sub(r"!\{partitionKeyFromLambda:([A-Za-z0-9_]+)\}", r"${\1}", pipeline["firehose"]["prefix"])
    )
    assert parameters["storage.location.template"] == expected_template
    assert parameters["projection.enabled"] == "true"
    assert parameters["projection.year.type"] == "integer"
    assert parameters["projection.month.type"] == "integer"
    assert parameters["projection.month.digits"] == "2"
    assert parameters["projection.tenant_id.type"] == "injected"  # tenant_ids left empty in the test
    for key in schema["partition_keys"]:
        assert f"{key['name']}=${{{key['name']}}}" in parameters["storage.location.template"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/{pipeline['lake']['table_prefix']}"
    assert expected_template.startswith(table["StorageDescriptor"]["Location"])


def test_event_rule_pattern_is_pipeline_json_and_targets_the_fanout(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    events = deployed.client("events")
    rule_name = deployed.outputs["event_rule_arn"].rsplit("/", 1)[-1]
    rule = events.describe_rule(Name=rule_name)
    assert json.loads(rule["EventPattern"]) == pipeline["event_pattern"]
    targets = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    fanout = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])
    assert [t["Arn"] for t in targets] == [fanout["Configuration"]["FunctionArn"]]
    assert targets[0]["DeadLetterConfig"]["Arn"] == deployed.outputs["dead_letter_queue_arn"]
    assert targets[0]["RetryPolicy"]["MaximumRetryAttempts"] > 0

    policy = json.loads(
        deployed.client("lambda").get_policy(FunctionName=deployed.outputs["fanout_lambda_name"])["Policy"]
    )
    statements = [s for s in policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}]
    assert [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements] == [rule["Arn"]]


def test_fanout_lambda_environment_is_what_settings_reads(deployed: Deployment) -> None:
    aws_lambda = deployed.client("lambda")
    configuration = aws_lambda.get_function(FunctionName=deployed.outputs["fanout_lambda_name"])["Configuration"]
    assert configuration["Handler"] == "fanout_lambda.handler.lambda_handler"
    assert configuration["Runtime"] == "python3.12"
    variables = configuration["Environment"]["Variables"]
    assert set(REQUIRED_VARIABLES) <= set(variables)
    assert set(variables) - set(REQUIRED_VARIABLES) <= OPTIONAL_VARIABLES
    assert variables["SALES_TABLE_NAME"] == deployed.outputs["sales_table_name"]
    assert variables["IDEMPOTENCY_TABLE_NAME"] == deployed.outputs["idempotency_table_name"]
    assert variables["DELIVERY_STREAM_NAME"] == deployed.outputs["delivery_stream_name"]
    assert variables["DEAD_LETTER_QUEUE_URL"] == deployed.outputs["dead_letter_queue_url"]
    assert int(variables["EMBEDDING_DIMENSION"]) == load_pipeline()["embedding_dimension"]

    invoke_config = aws_lambda.get_function_event_invoke_config(FunctionName=deployed.outputs["fanout_lambda_name"])
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == deployed.outputs["dead_letter_queue_arn"]
    assert 0 <= invoke_config["MaximumRetryAttempts"] <= 2


def test_transform_lambda_handler_and_environment(deployed: Deployment) -> None:
    configuration = deployed.client("lambda").get_function(FunctionName=deployed.outputs["transform_lambda_name"])[
        "Configuration"
    ]
    assert configuration["Handler"] == "transform_lambda.handler.lambda_handler"
    assert configuration["Runtime"] == "python3.12"
    assert set(configuration["Environment"]["Variables"]) <= OPTIONAL_VARIABLES


@pytest.mark.parametrize(
    ("output", "zip_name"),
    [("fanout_lambda_name", "fanout_lambda.zip"), ("transform_lambda_name", "transform_lambda.zip")],
)
def test_deployed_code_is_the_packaged_zip(deployed: Deployment, output: str, zip_name: str) -> None:
    configuration = deployed.client("lambda").get_function(FunctionName=deployed.outputs[output])["Configuration"]
    digest = base64.b64encode(hashlib.sha256((tfs.ROOT / ".build" / zip_name).read_bytes()).digest()).decode()
    assert configuration["CodeSha256"] == digest


def test_sales_table_keys_gsi2_ttl_and_recovery(deployed: Deployment) -> None:
    dynamodb = deployed.client("dynamodb")
    name = deployed.outputs["sales_table_name"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]} == {("PK", "HASH"), ("SK", "RANGE")}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"PK": "S", "SK": "S", "GSI2PK": "S", "GSI2SK": "S"}
    (gsi2,) = [g for g in table["GlobalSecondaryIndexes"] if g["IndexName"] == "GSI2"]
    assert {(k["AttributeName"], k["KeyType"]) for k in gsi2["KeySchema"]} == {("GSI2PK", "HASH"), ("GSI2SK", "RANGE")}
    assert gsi2["Projection"]["ProjectionType"] == "INCLUDE"
    assert set(gsi2["Projection"]["NonKeyAttributes"]) >= GSI2_REQUIRED
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("ttl", "ENABLED")
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
    assert table["SSEDescription"]["Status"] == "ENABLED"


def test_idempotency_table_is_powertools_layout(deployed: Deployment) -> None:
    dynamodb = deployed.client("dynamodb")
    name = deployed.outputs["idempotency_table_name"]
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("id", "HASH")]
    ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert (ttl["AttributeName"], ttl["TimeToLiveStatus"]) == ("expiration", "ENABLED")


def test_lake_bucket_is_private_encrypted_versioned_and_tls_only(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    s3 = deployed.client("s3")
    bucket = deployed.outputs["lake_bucket_name"]
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert any(
        s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in policy["Statement"]
    )
    error_root = pipeline["firehose"]["error_output_prefix"].split("!", 1)[0]
    prefixes = {r["Filter"].get("Prefix") for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert error_root in prefixes


def test_athena_workgroup_enforces_encrypted_results(deployed: Deployment) -> None:
    workgroup = deployed.client("athena").get_work_group(WorkGroup=deployed.outputs["athena_workgroup_name"])
    configuration = workgroup["WorkGroup"]["Configuration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert configuration["ResultConfiguration"]["OutputLocation"].startswith(
        f"s3://{deployed.outputs['lake_bucket_name']}/"
    )


def test_one_named_query_per_sql_file(deployed: Deployment) -> None:
    # moto cannot delete named queries, so they are checked in a plan (see terraform_support.moto_variables):
    # one per athena_queries/*.sql, named after the file, with the file's text, in the lake's database.
    result = deployed.terraform.run(
        "plan", "-input=false", "-out=named-queries.tfplan", "-var-file=moto.tfvars.json",
        "-var=athena_named_queries_enabled=true", timeout=180,
    )  # fmt: skip
    assert result.returncode == 0
    plan = json.loads(deployed.terraform.run("show", "-json", "named-queries.tfplan").stdout)
    planned = {
        change["change"]["after"]["name"]: change["change"]["after"]
        for change in plan["resource_changes"]
        if change["type"] == "aws_athena_named_query" and change["change"]["actions"] == ["create"]
    }
    sql_files = {p.stem: p.read_text(encoding="utf-8") for p in sorted((tfs.ROOT / "athena_queries").glob("*.sql"))}
    assert {name: q["query"] for name, q in planned.items()} == sql_files
    assert all(q["database"] == sales_history()["database"] for q in planned.values())
    # Nothing else would change: the plan adds the named queries and only them.
    other = [c["address"] for c in plan["resource_changes"] if c["change"]["actions"] != ["no-op"]]
    assert all(address.startswith("aws_athena_named_query.dashboard[") for address in other)


def test_alarms_notify_the_topic_and_dashboard_shows_the_pipeline(deployed: Deployment) -> None:
    cloudwatch = deployed.client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=deployed.outputs["alarm_names"])["MetricAlarms"]
    assert len(alarms) == len(deployed.outputs["alarm_names"])
    assert all(a["AlarmActions"] == [deployed.outputs["alarm_topic_arn"]] for a in alarms)
    metrics = {a.get("MetricName") for a in alarms} | {
        m["MetricStat"]["Metric"]["MetricName"] for a in alarms for m in a.get("Metrics", []) if "MetricStat" in m
    }
    assert metrics >= {
        "DeliveryToS3.DataFreshness", "ThrottledRecords", "IncomingRecords", "IncomingBytes", "IncomingPutRequests",
        "RecordsPerSecondLimit", "BytesPerSecondLimit", "PutRequestsPerSecondLimit", "FailedConversion.Records",
        "ExecuteProcessing.Success", "PartitionCountExceeded", "Errors", "Throttles",
        "ApproximateNumberOfMessagesVisible",
    }  # fmt: skip
    body = cloudwatch.get_dashboard(DashboardName=deployed.outputs["dashboard_name"])["DashboardBody"]
    for name in ("delivery_stream_name", "fanout_lambda_name", "transform_lambda_name"):
        assert deployed.outputs[name] in body
    assert deployed.outputs["dead_letter_queue_url"].rsplit("/", 1)[-1] in body


def test_second_plan_shows_no_changes(deployed: Deployment) -> None:
    result = deployed.terraform.run(
        "plan", "-detailed-exitcode", "-input=false", "-var-file=moto.tfvars.json", check=False, timeout=180
    )
    assert result.returncode == 0, (
        f"plan is not empty (exit {result.returncode}):\n{result.stdout[-6000:]}{result.stderr[-3000:]}"
    )


def test_destroy_removes_the_pipeline(deployed: Deployment) -> None:
    # Runs last (file order): everything above reads the live deployment.
    deployed.terraform.run("destroy", "-auto-approve", "-input=false", "-var-file=moto.tfvars.json", timeout=300)
    deployed.destroyed = True
    streams = deployed.client("firehose").list_delivery_streams()["DeliveryStreamNames"]
    assert deployed.outputs["delivery_stream_name"] not in streams
    tables = deployed.client("dynamodb").list_tables()["TableNames"]
    assert deployed.outputs["sales_table_name"] not in tables
