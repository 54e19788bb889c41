"""terraform/ applied to a moto_server: what is deployed is what the rest of the project assumes.

One ``terraform apply`` (module-scoped fixture) on a throw-away copy of terraform/ with the default trigger
(pipeline.json's ``queue``), then boto3 reads every resource back and compares it with the shared declarations
(pipeline_config/pipeline.json, glue_schemas/sales_history.json, athena_queries/*.sql, fanout_lambda.settings)
and a second plan must be empty. Then the same deployment is switched to ``fanout_trigger = direct`` (an apply
that removes the buffer queue and its mapping and wires the rule to the function), read back, planned again
(empty) and destroyed. Tests run in file order: queue mode, the switch, direct mode, destroy.

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
- SQS: moto creates every queue with SqsManagedSseEnabled = true whether asked or not, so reading it back
  proves nothing; test_terraform_variables checks that the plan asks for SSE-SQS. Queue policies and the
  redrive policy are stored (moto does move messages past maxReceiveCount, but nothing is sent here).
- The event source mapping is stored as sent (moto checks only BatchSize <= 10,000 and that the queue and
  function exist; never the batching-window rule, the concurrency range or the role's permissions) and it
  never polls: what is proven is the configuration Terraform sends, which is what the read-back compares.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from fanout_lambda.settings import OPTIONAL_VARIABLES as FANOUT_OPTIONAL_VARIABLES
from fanout_lambda.settings import DYNAMODB_EMBEDDING_ENCODING, REQUIRED_VARIABLES, SOLD_DATE_YEARS, TENANT_IDS
import pipeline_config
from glue_schemas import sales_history
from local_pipeline.dashboards import connect
from pipeline_config import load as load_pipeline
from tests.integration import terraform_support as tfs
from tests.unit.local_pipeline.test_dashboards import write_object
from tests.unit.local_pipeline.test_parquet import row
from transform_lambda import handler as transform_handler

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
#: GSI2's INCLUDE list: pipeline.json's, the one declaration (the local runtime's table projects the same).
GSI2_PROJECTED = set(pipeline_config.gsi2_projected_attributes())


@dataclass
class Deployment:
    terraform: tfs.Terraform
    endpoint: str
    outputs: dict[str, Any]
    destroyed: bool = False
    #: -var-file arguments of the current mode (the direct switch adds one).
    var_files: list[str] = field(default_factory=lambda: ["-var-file=moto.tfvars.json"])

    def client(self, service: str) -> Any:
        return tfs.aws_client(service, self.endpoint)

    def apply(self) -> None:
        """terraform apply with the current var files, then re-read the outputs."""
        self.terraform.run("apply", "-auto-approve", "-input=false", *self.var_files, timeout=420)
        self.outputs = self.terraform.outputs()


@pytest.fixture(scope="module")
def deployed(moto_server_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """terraform init + apply on a temp copy of the module against moto; destroy in teardown if a test did not."""
    terraform = tfs.initialised_module(tmp_path_factory.mktemp("terraform"), moto_server_endpoint)
    deployment = Deployment(terraform, moto_server_endpoint, outputs={})
    try:
        deployment.apply()
        yield deployment
    finally:
        if not deployment.destroyed:
            terraform.run("destroy", "-auto-approve", "-input=false", *deployment.var_files, check=False)


@pytest.fixture(scope="module")
def switched_to_direct(deployed: Deployment) -> Deployment:
    """The same deployment re-applied with fanout_trigger = direct (first used after the queue-mode tests)."""
    (deployed.terraform.workdir / "direct.tfvars.json").write_text(json.dumps({"fanout_trigger": "direct"}))
    deployed.var_files = ["-var-file=moto.tfvars.json", "-var-file=direct.tfvars.json"]
    deployed.apply()
    return deployed


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
    assert schema_configuration["DatabaseName"] == deployed.outputs["glue_database_name"]
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
    # The stage's database (name_prefix + the schema's database); the table keeps the name the SQL reads.
    assert deployed.outputs["glue_database_name"] == "carousel_sales_carousel_sales"
    table = deployed.client("glue").get_table(
        DatabaseName=deployed.outputs["glue_database_name"], Name=schema["table"]
    )["Table"]
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
    years = pipeline["sold_date_years"]
    assert parameters["projection.year.range"] == f"{years['first']},{years['last']}"
    assert parameters["projection.month.type"] == "integer"
    assert parameters["projection.month.digits"] == "2"
    assert parameters["projection.tenant_id.type"] == "injected"  # tenant_ids left empty in the test
    for key in schema["partition_keys"]:
        assert f"{key['name']}=${{{key['name']}}}" in parameters["storage.location.template"]
    assert table["StorageDescriptor"]["Location"] == f"s3://{bucket}/{pipeline['lake']['table_prefix']}"
    assert expected_template.startswith(table["StorageDescriptor"]["Location"])


def _rule(deployed: Deployment) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    events = deployed.client("events")
    rule_name = deployed.outputs["event_rule_arn"].rsplit("/", 1)[-1]
    return rule_name, events.describe_rule(Name=rule_name), events.list_targets_by_rule(Rule=rule_name)["Targets"]


def _eventbridge_invoke_statements(deployed: Deployment) -> list[dict[str, Any]]:
    aws_lambda = deployed.client("lambda")
    try:
        policy = json.loads(aws_lambda.get_policy(FunctionName=deployed.outputs["fanout_lambda_name"])["Policy"])
    except aws_lambda.exceptions.ResourceNotFoundException:
        return []  # no resource policy at all
    return [s for s in policy["Statement"] if s["Principal"] == {"Service": "events.amazonaws.com"}]


def _event_source_mappings(deployed: Deployment) -> list[dict[str, Any]]:
    # All mappings, filtered here by function ARN: moto filters FunctionName= only by the exact string the
    # mapping was created with (Terraform passes the ARN), where AWS accepts a name or an ARN.
    aws_lambda = deployed.client("lambda")
    function_arn = aws_lambda.get_function(FunctionName=deployed.outputs["fanout_lambda_name"])["Configuration"][
        "FunctionArn"
    ]
    mappings = aws_lambda.list_event_source_mappings()["EventSourceMappings"]
    return [m for m in mappings if m["FunctionArn"] == function_arn]


def _queue_attributes(deployed: Deployment, url: str) -> dict[str, str]:
    attributes: dict[str, str] = deployed.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
        "Attributes"
    ]
    return attributes


def test_default_trigger_is_pipeline_json_queue(deployed: Deployment, pipeline: dict[str, Any]) -> None:
    assert deployed.outputs["fanout_trigger"] == pipeline["fanout_trigger"] == "queue"
    sqs = deployed.client("sqs")
    name = deployed.outputs["buffer_queue_arn"].rsplit(":", 1)[-1]
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == deployed.outputs["buffer_queue_url"]


def test_event_rule_pattern_is_pipeline_json_and_targets_the_buffer_queue(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    _, rule, targets = _rule(deployed)
    assert json.loads(rule["EventPattern"]) == pipeline["event_pattern"]
    assert [t["Arn"] for t in targets] == [deployed.outputs["buffer_queue_arn"]]
    # Events EventBridge cannot deliver to the queue still go to the dead-letter queue after its retries.
    assert targets[0]["DeadLetterConfig"]["Arn"] == deployed.outputs["dead_letter_queue_arn"]
    assert targets[0]["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # The event source mapping invokes the function; EventBridge gets no right to.
    assert _eventbridge_invoke_statements(deployed) == []


def test_buffer_queue_visibility_retention_and_redrive_are_pipeline_json(
    deployed: Deployment, pipeline: dict[str, Any]
) -> None:
    settings = pipeline["buffer_queue"]
    attributes = _queue_attributes(deployed, deployed.outputs["buffer_queue_url"])
    assert int(attributes["VisibilityTimeout"]) == settings["visibility_timeout_seconds"]
    assert int(attributes["MessageRetentionPeriod"]) == settings["message_retention_seconds"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": deployed.outputs["dead_letter_queue_arn"],
        "maxReceiveCount": settings["max_receive_count"],
    }
    # Lambda DG: visibility timeout >= 6 x the function timeout (+ the batching window, see buffer_queue.tf).
    configuration = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])
    timeout = configuration["Configuration"]["Timeout"]
    assert int(attributes["VisibilityTimeout"]) >= 6 * timeout + settings["maximum_batching_window_seconds"]
    # moto reports SSE-SQS on every queue (its default): the plan test in test_terraform_variables is the proof.
    assert attributes["SqsManagedSseEnabled"] == "true"
    assert "KmsMasterKeyId" not in attributes


def test_buffer_queue_policy_lets_only_the_rule_send(deployed: Deployment) -> None:
    attributes = _queue_attributes(deployed, deployed.outputs["buffer_queue_url"])
    statements = json.loads(attributes["Policy"])["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "OnlyTheProductSoldRuleSends",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": deployed.outputs["buffer_queue_arn"],
            "Condition": {"ArnEquals": {"aws:SourceArn": deployed.outputs["event_rule_arn"]}},
        }
    ]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_event_source_mapping_feeds_the_fanout_in_batches(deployed: Deployment, pipeline: dict[str, Any]) -> None:
    settings = pipeline["buffer_queue"]
    (mapping,) = _event_source_mappings(deployed)
    fanout = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])
    assert mapping["FunctionArn"] == fanout["Configuration"]["FunctionArn"]
    assert mapping["EventSourceArn"] == deployed.outputs["buffer_queue_arn"]
    assert mapping["State"] == "Enabled"
    # moto stores these as sent (its own SQS default batch size is 10, and it sets no window or scaling).
    assert mapping["BatchSize"] == settings["batch_size"]
    assert mapping["MaximumBatchingWindowInSeconds"] == settings["maximum_batching_window_seconds"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": settings["maximum_concurrency"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_fanout_role_receives_and_deletes_on_exactly_the_buffer_queue(deployed: Deployment) -> None:
    iam = deployed.client("iam")
    role = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])["Configuration"][
        "Role"
    ]
    role_name = role.rsplit("/", 1)[-1]
    document = iam.get_role_policy(RoleName=role_name, PolicyName="buffer-queue")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    # What the event source mapping needs, and ChangeMessageVisibility for the handler's backoff of throttled
    # messages (ChangeMessageVisibilityBatch is authorised as that action): each on exactly the buffer queue.
    actions = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == deployed.outputs["buffer_queue_arn"], statement
        listed = statement["Action"]
        actions[statement["Sid"]] = sorted([listed] if isinstance(listed, str) else listed)
    assert actions == {
        "EventSourceMappingPolls": ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
        "HandlerBacksOffThrottledMessages": ["sqs:ChangeMessageVisibility"],
    }
    # No other policy of the role mentions the buffer queue.
    others = [
        iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]
        if name != "buffer-queue"
    ]
    assert all(deployed.outputs["buffer_queue_arn"] not in json.dumps(d) for d in others)
    # ... and none grants ChangeMessageVisibility anywhere else (the dead-letter queue included).
    assert all("ChangeMessageVisibility" not in json.dumps(d) for d in others)


def test_queue_mode_has_no_async_invoke_config(deployed: Deployment) -> None:
    aws_lambda = deployed.client("lambda")
    with pytest.raises(aws_lambda.exceptions.ResourceNotFoundException):
        aws_lambda.get_function_event_invoke_config(FunctionName=deployed.outputs["fanout_lambda_name"])


def test_fanout_lambda_environment_is_what_settings_reads(deployed: Deployment) -> None:
    aws_lambda = deployed.client("lambda")
    configuration = aws_lambda.get_function(FunctionName=deployed.outputs["fanout_lambda_name"])["Configuration"]
    assert configuration["Handler"] == "fanout_lambda.handler.lambda_handler"
    assert configuration["Runtime"] == "python3.12"
    variables = configuration["Environment"]["Variables"]
    assert set(REQUIRED_VARIABLES) <= set(variables)
    # BUFFER_QUEUE_URL (queue trigger only): the fan-out backs off throttled messages on that queue.
    assert set(variables) - set(REQUIRED_VARIABLES) <= OPTIONAL_VARIABLES | set(FANOUT_OPTIONAL_VARIABLES) | {
        "BUFFER_QUEUE_URL"
    }
    assert variables["BUFFER_QUEUE_URL"] == deployed.outputs["buffer_queue_url"]
    # What Athena's projection shows, so the fan-out refuses what it would hide: pipeline.json's years, and
    # every tenant (tenant_ids = [] in the test: injected projection, no TENANT_IDS).
    years = load_pipeline()["sold_date_years"]
    assert variables[SOLD_DATE_YEARS] == f"{years['first']},{years['last']}"
    assert TENANT_IDS not in variables
    assert variables["SALES_TABLE_NAME"] == deployed.outputs["sales_table_name"]
    assert variables["IDEMPOTENCY_TABLE_NAME"] == deployed.outputs["idempotency_table_name"]
    # Every stream, comma-separated; with pipeline.json's one stream, that is stream 0 alone.
    assert variables["DELIVERY_STREAM_NAME"] == ",".join(deployed.outputs["delivery_stream_names"])
    assert deployed.outputs["delivery_stream_names"] == [deployed.outputs["delivery_stream_name"]]
    assert deployed.outputs["delivery_stream_arns"] == [deployed.outputs["delivery_stream_arn"]]
    assert variables["DEAD_LETTER_QUEUE_URL"] == deployed.outputs["dead_letter_queue_url"]
    assert int(variables["EMBEDDING_DIMENSION"]) == load_pipeline()["embedding_dimension"]
    assert variables[DYNAMODB_EMBEDDING_ENCODING] == pipeline_config.dynamodb_embedding_encoding()


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
    assert set(gsi2["Projection"]["NonKeyAttributes"]) == GSI2_PROJECTED
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
    assert all(q["database"] == deployed.outputs["glue_database_name"] for q in planned.values())
    # Nothing else would change: the plan adds the named queries and only them.
    other = [c["address"] for c in plan["resource_changes"] if c["change"]["actions"] != ["no-op"]]
    assert all(address.startswith("aws_athena_named_query.dashboard[") for address in other), other


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
        "ApproximateAgeOfOldestMessage", "TransformRecordsFailed", "WriteThrottleEvents",
    }  # fmt: skip
    body = cloudwatch.get_dashboard(DashboardName=deployed.outputs["dashboard_name"])["DashboardBody"]
    for name in ("delivery_stream_name", "fanout_lambda_name", "transform_lambda_name"):
        assert deployed.outputs[name] in body
    # Every line of a metric widget is one array (namespace, metric, dimension pairs, options), as CloudWatch
    # reads it; a list flattened into strings would show nothing.
    lines = [line for w in json.loads(body)["widgets"] for line in w["properties"].get("metrics", [])]
    assert lines and all(isinstance(line, list) for line in lines)
    assert deployed.outputs["dead_letter_queue_url"].rsplit("/", 1)[-1] in body
    # DynamoDB: write units and throttles of the sales table, GSI2 (both dimensions) and the idempotency table, and
    # their alarms in the alarm strip.
    sales, idempotency = deployed.outputs["sales_table_name"], deployed.outputs["idempotency_table_name"]
    for dimensions in (["TableName", sales], ["GlobalSecondaryIndexName", "GSI2", "TableName", sales],
                       ["TableName", idempotency]):  # fmt: skip
        for metric in ("ConsumedWriteCapacityUnits", "WriteThrottleEvents"):
            assert ["AWS/DynamoDB", metric, *dimensions, {"stat": "Sum"}] in lines, (metric, dimensions)
    strip = [w for w in json.loads(body)["widgets"] if w["type"] == "alarm"][0]["properties"]["alarms"]
    throttle_alarms = [a for a in alarms if a.get("MetricName") == "WriteThrottleEvents"]
    assert len(throttle_alarms) == 3 and {a["AlarmArn"] for a in throttle_alarms} <= set(strip)


def _alarms(deployed: Deployment) -> dict[str, dict[str, Any]]:
    cloudwatch = deployed.client("cloudwatch")
    alarms = cloudwatch.describe_alarms(AlarmNames=deployed.outputs["alarm_names"])["MetricAlarms"]
    prefix = deployed.outputs["fanout_lambda_name"].removesuffix("fanout")
    return {a["AlarmName"].removeprefix(prefix): a for a in alarms}


def test_transform_failure_alarm_reads_the_metric_the_handler_emits(deployed: Deployment) -> None:
    # GIVEN the alarm on the transform's failed records WHEN read back THEN it watches exactly the metric,
    # namespace and bounded dimension transform_lambda/handler.py publishes, and fires above zero
    alarm = _alarms(deployed)["transform-records-failed"]
    assert alarm["Namespace"] == transform_handler.DEFAULT_METRICS_NAMESPACE  # metrics_namespace left null
    assert alarm["MetricName"] == transform_handler.FAILED_RECORDS_METRIC
    assert alarm["Dimensions"] == [{"Name": "service", "Value": transform_handler.SERVICE}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"], alarm["Threshold"]) == ("Sum", "GreaterThanThreshold", 0)
    body = json.loads(deployed.client("cloudwatch").get_dashboard(DashboardName=deployed.outputs["dashboard_name"])[
        "DashboardBody"
    ])  # fmt: skip
    widgets = [w["properties"].get("metrics", []) for w in body["widgets"]]
    assert [
        transform_handler.DEFAULT_METRICS_NAMESPACE, transform_handler.FAILED_RECORDS_METRIC,
        "service", transform_handler.SERVICE, {"stat": "Sum"},
    ] in [m for metrics in widgets for m in metrics]  # fmt: skip


def test_dead_letter_alarms_keep_their_state_when_sqs_stops_publishing(deployed: Deployment) -> None:
    # SQS publishes nothing for a queue idle for six hours, while messages can wait 14 days: missing data must
    # neither clear the alarm (notBreaching) nor raise it for an empty idle queue (breaching).
    alarms = _alarms(deployed)
    depth, age = alarms["dead-letter-queue-not-empty"], alarms["dead-letter-queue-oldest-message"]
    queue = deployed.outputs["dead_letter_queue_url"].rsplit("/", 1)[-1]
    for alarm in (depth, age):
        assert alarm["TreatMissingData"] == "ignore"
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": queue}]
    assert depth["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert age["MetricName"] == "ApproximateAgeOfOldestMessage"
    assert age["ComparisonOperator"] == "GreaterThanThreshold"
    assert 0 < age["Threshold"] < 6 * 3600  # crossed while SQS still publishes the idle queue's metrics


def test_quota_alarms_use_five_minute_sums_divided_by_300(deployed: Deployment) -> None:
    # Amazon Data Firehose Developer Guide, "Implement best practices with CloudWatch Alarms".
    alarms = _alarms(deployed)
    prefix = deployed.outputs["fanout_lambda_name"].removesuffix("fanout")
    for stream, name in itertools.product(
        deployed.outputs["delivery_stream_names"], ("incoming-records", "incoming-bytes", "incoming-requests")
    ):
        # One set per stream: "<stream name>-<check>" (the quotas are per stream).
        queries = {q["Id"]: q for q in alarms[f"{stream.removeprefix(prefix)}-{name}-near-limit"]["Metrics"]}
        for query in ("incoming", "limit"):
            dimensions = queries[query]["MetricStat"]["Metric"]["Dimensions"]
            assert dimensions == [{"Name": "DeliveryStreamName", "Value": stream}]
        assert queries["usage"]["Expression"].replace(" ", "") == "100*(incoming/300)/limit"
        assert queries["incoming"]["MetricStat"]["Period"] == 300
        assert queries["incoming"]["MetricStat"]["Stat"] == "Sum"
        assert queries["limit"]["MetricStat"]["Period"] == 300


def test_cloudwatch_may_use_the_key_only_for_this_stacks_topic_and_alarms(deployed: Deployment) -> None:
    kms = deployed.client("kms")
    key_id = deployed.outputs["kms_key_arn"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    (statement,) = [s for s in policy["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    account = deployed.outputs["alarm_topic_arn"].split(":")[4]
    prefix = deployed.outputs["fanout_lambda_name"].removesuffix("-fanout")
    condition = statement["Condition"]
    assert condition["StringEquals"]["aws:SourceAccount"] == account
    assert condition["StringEquals"]["kms:EncryptionContext:aws:sns:topicArn"] == deployed.outputs["alarm_topic_arn"]
    assert condition["ArnLike"]["aws:SourceArn"] == f"arn:aws:cloudwatch:{tfs.REGION}:{account}:alarm:{prefix}-*"
    alarm_arns = [a["AlarmArn"] for a in _alarms(deployed).values()]
    assert alarm_arns and all(arn.startswith(condition["ArnLike"]["aws:SourceArn"][:-1]) for arn in alarm_arns)


#: DuckDB's type for each Presto type the view declares (the local lake is read by DuckDB).
DUCKDB_TYPES = {
    "varchar": "VARCHAR", "double": "DOUBLE", "integer": "INTEGER", "bigint": "BIGINT", "date": "DATE",
    "timestamp(3)": "TIMESTAMP", "array(real)": "FLOAT[]",
}  # fmt: skip
PRESTO_VIEW = re.compile(r"^/\* Presto View: (?P<encoded>[A-Za-z0-9+/=]+) \*/$")


def _view_definition(table: dict[str, Any]) -> dict[str, Any]:
    match = PRESTO_VIEW.match(table["ViewOriginalText"])
    assert match, table["ViewOriginalText"][:80]
    definition: dict[str, Any] = json.loads(base64.b64decode(match["encoded"]))
    return definition


def _query_output_columns(tmp_path: Any) -> list[tuple[str, str]]:
    """The view file's SQL run on DuckDB over a one-row local lake: its real output columns and types."""
    schema = sales_history()
    write_object(tmp_path, "t1", 2025, 12, "a", [row()])
    connection = connect(
        tmp_path, table_name=schema["table"], table_prefix=load_pipeline()["lake"]["table_prefix"],
        partition_keys=schema["partition_keys"],
    )  # fmt: skip
    try:
        return [(name, kind) for name, kind, *_ in connection.execute("DESCRIBE sales_history_dedup").fetchall()]
    finally:
        connection.close()


def test_dedup_view_is_deployed_from_the_sql_file_with_the_querys_columns(deployed: Deployment, tmp_path: Any) -> None:
    # GIVEN the deployed stack WHEN the view is read back as Athena would read it
    glue = deployed.client("glue")
    database = deployed.outputs["glue_database_name"]
    sql_file = (tfs.ROOT / "athena_queries" / "sales_history_dedup.sql").read_text(encoding="utf-8")
    statement = sqlglot.parse_one(sql_file, read="trino")
    assert isinstance(statement, exp.Create)
    table = glue.get_table(DatabaseName=database, Name=statement.this.name)["Table"]
    assert table["TableType"] == "VIRTUAL_VIEW"
    assert table["Parameters"]["presto_view"] == "true"
    assert table["ViewExpandedText"] == "/* Presto View */"

    # THEN its encoded definition decodes back to the file's query, resolved in the stage's database
    definition = _view_definition(table)
    assert sql_file.rstrip().endswith(definition["originalSql"])
    assert sqlglot.parse_one(definition["originalSql"], read="trino") == statement.expression
    assert (definition["catalog"], definition["schema"]) == ("awsdatacatalog", database)
    assert definition["runAsInvoker"] is False and "owner" not in definition

    # AND its columns are the query's output: names and types as the SQL really produces them (DuckDB) ...
    view_columns = [(c["name"], c["type"]) for c in definition["columns"]]
    produced = _query_output_columns(tmp_path)
    assert {name: DUCKDB_TYPES[kind] for name, kind in view_columns} == dict(produced)
    # ... in Athena's order: `s.*` expands to the table's columns, then its partition keys, then what the SQL
    # adds. (DuckDB lists hive partition columns alphabetically, so only the rest of its order is compared.)
    schema = sales_history()
    partition = [k["name"] for k in schema["partition_keys"]]
    assert [name for name, _ in view_columns] == [c["name"] for c in schema["columns"]] + partition + ["delivery_rank"]
    assert [n for n, _ in produced if n not in partition] == [n for n, _ in view_columns if n not in partition]
    # ... and the storage descriptor repeats them with Hive types.
    hive = [(c["Name"], c["Type"]) for c in table["StorageDescriptor"]["Columns"]]
    assert hive == [(c["name"], c["type"]) for c in schema["columns"] + schema["partition_keys"]] + [
        ("delivery_rank", "bigint")
    ]

    # AND every table the dashboards' named queries read exists in the database after apply, no manual step
    existing = {t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]}
    for path in sorted((tfs.ROOT / "athena_queries").glob("*.sql")):
        parsed = sqlglot.parse_one(path.read_text(encoding="utf-8"), read="trino")
        if isinstance(parsed, exp.Create):
            continue
        assert {t.name for t in parsed.find_all(exp.Table)} <= existing, path.name


SECOND_STAGE = "carousel-stage2"


def test_a_second_stage_applies_beside_the_first_in_one_account(
    deployed: Deployment, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # GIVEN the first stack applied (name_prefix carousel-sales) WHEN a second stack with another prefix is
    # applied to the same account (the same moto server)
    second = tfs.initialised_module(tmp_path_factory.mktemp("terraform-stage2"), deployed.endpoint)
    stage = ("-var-file=moto.tfvars.json", f"-var=name_prefix={SECOND_STAGE}")
    try:
        second.run("apply", "-auto-approve", "-input=false", *stage, timeout=600)
        outputs = second.outputs()
        # THEN each stage has its own database, holding its own sales_history table and dedup view
        glue = deployed.client("glue")
        databases = {deployed.outputs["glue_database_name"], outputs["glue_database_name"]}
        assert databases == {"carousel_sales_carousel_sales", "carousel_stage2_carousel_sales"}
        for database in databases:
            tables = {t["Name"]: t for t in glue.get_tables(DatabaseName=database)["TableList"]}
            assert set(tables) == {"sales_history", "sales_history_dedup"}
            assert _view_definition(tables["sales_history_dedup"])["schema"] == database
        assert outputs["glue_table_name"] == deployed.outputs["glue_table_name"] == "sales_history"
        # AND each stream converts through its own stage's table, and each workgroup is its own
        for stage_outputs in (deployed.outputs, outputs):
            stream = deployed.client("firehose").describe_delivery_stream(
                DeliveryStreamName=stage_outputs["delivery_stream_name"]
            )["DeliveryStreamDescription"]
            conversion = stream["Destinations"][0]["ExtendedS3DestinationDescription"][
                "DataFormatConversionConfiguration"
            ]
            assert conversion["SchemaConfiguration"]["DatabaseName"] == stage_outputs["glue_database_name"]
        assert outputs["athena_workgroup_name"] != deployed.outputs["athena_workgroup_name"]
    finally:
        second.run("destroy", "-auto-approve", "-input=false", *stage, timeout=600, check=False)
    # AND destroying the second stage leaves the first one's catalog alone
    remaining = deployed.client("glue").get_tables(DatabaseName=deployed.outputs["glue_database_name"])["TableList"]
    assert {t["Name"] for t in remaining} == {"sales_history", "sales_history_dedup"}
    names = {d["Name"] for d in deployed.client("glue").get_databases()["DatabaseList"]}
    assert "carousel_stage2_carousel_sales" not in names


def test_buffer_queue_backlog_has_alarms_and_dashboard_widgets(deployed: Deployment) -> None:
    cloudwatch = deployed.client("cloudwatch")
    queue_name = deployed.outputs["buffer_queue_arn"].rsplit(":", 1)[-1]
    alarms = cloudwatch.describe_alarms(AlarmNames=deployed.outputs["alarm_names"])["MetricAlarms"]
    backlog = {
        a["MetricName"]: a
        for a in alarms
        if a.get("Namespace") == "AWS/SQS" and a["Dimensions"] == [{"Name": "QueueName", "Value": queue_name}]
    }
    assert set(backlog) == {"ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"}
    for alarm in backlog.values():
        # SQS stops publishing for an inactive queue: silence must neither clear a backlog nor raise one.
        assert alarm["TreatMissingData"] == "ignore"
        assert alarm["AlarmActions"] == [deployed.outputs["alarm_topic_arn"]]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert backlog["ApproximateAgeOfOldestMessage"]["Threshold"] == 600  # the variable's default
    assert backlog["ApproximateNumberOfMessagesVisible"]["Statistic"] == "Minimum"

    body = json.loads(cloudwatch.get_dashboard(DashboardName=deployed.outputs["dashboard_name"])["DashboardBody"])
    queue_metrics = {
        metric[1]
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
        if isinstance(metric, list) and metric[0] == "AWS/SQS" and queue_name in metric
    }
    assert queue_metrics >= {"ApproximateAgeOfOldestMessage", "ApproximateNumberOfMessagesVisible"}
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert {a["AlarmArn"] for a in backlog.values()} <= set(alarm_widget["properties"]["alarms"])


def _assert_second_plan_is_empty(deployed: Deployment) -> None:
    result = deployed.terraform.run(
        "plan", "-detailed-exitcode", "-input=false", *deployed.var_files, check=False, timeout=180
    )
    assert result.returncode == 0, (
        f"plan is not empty (exit {result.returncode}):\n{result.stdout[-6000:]}{result.stderr[-3000:]}"
    )


def test_second_plan_shows_no_changes(deployed: Deployment) -> None:
    assert deployed.outputs["fanout_trigger"] == "queue"
    _assert_second_plan_is_empty(deployed)


# ---------------------------------------------------------------------------------------------------------
# The same deployment switched to fanout_trigger = direct
# ---------------------------------------------------------------------------------------------------------
def test_direct_trigger_removes_the_buffer_queue_and_its_mapping(switched_to_direct: Deployment) -> None:
    deployed = switched_to_direct
    assert deployed.outputs["fanout_trigger"] == "direct"
    # `terraform output -json` leaves an output whose value is null out altogether: readers use .get().
    assert deployed.outputs.get("buffer_queue_url") is None
    assert deployed.outputs.get("buffer_queue_arn") is None
    urls = deployed.client("sqs").list_queues().get("QueueUrls", [])
    assert urls == [deployed.outputs["dead_letter_queue_url"]]
    assert _event_source_mappings(deployed) == []
    role = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])["Configuration"][
        "Role"
    ]
    assert (
        "buffer-queue" not in deployed.client("iam").list_role_policies(RoleName=role.rsplit("/", 1)[-1])["PolicyNames"]
    )
    alarms = deployed.client("cloudwatch").describe_alarms(AlarmNames=deployed.outputs["alarm_names"])
    assert all(a.get("Namespace") != "AWS/SQS" or "buffer" not in a["AlarmName"] for a in alarms["MetricAlarms"])
    assert not any("buffer-queue" in name for name in deployed.outputs["alarm_names"])


def test_direct_trigger_is_todays_wiring(switched_to_direct: Deployment, pipeline: dict[str, Any]) -> None:
    deployed = switched_to_direct
    _, rule, targets = _rule(deployed)
    assert json.loads(rule["EventPattern"]) == pipeline["event_pattern"]
    fanout = deployed.client("lambda").get_function(FunctionName=deployed.outputs["fanout_lambda_name"])
    assert [t["Arn"] for t in targets] == [fanout["Configuration"]["FunctionArn"]]
    assert targets[0]["DeadLetterConfig"]["Arn"] == deployed.outputs["dead_letter_queue_arn"]
    assert targets[0]["RetryPolicy"]["MaximumRetryAttempts"] > 0

    statements = _eventbridge_invoke_statements(deployed)
    assert [s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements] == [rule["Arn"]]

    aws_lambda = deployed.client("lambda")
    invoke_config = aws_lambda.get_function_event_invoke_config(FunctionName=deployed.outputs["fanout_lambda_name"])
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == deployed.outputs["dead_letter_queue_arn"]
    assert 0 <= invoke_config["MaximumRetryAttempts"] <= 2
    # No buffer queue, so nothing to back off on.
    variables = fanout["Configuration"]["Environment"]["Variables"]
    assert "BUFFER_QUEUE_URL" not in variables


def test_second_plan_in_direct_mode_shows_no_changes(switched_to_direct: Deployment) -> None:
    _assert_second_plan_is_empty(switched_to_direct)


def test_destroy_removes_the_pipeline(deployed: Deployment) -> None:
    # Runs last (file order): everything above reads the live deployment.
    deployed.terraform.run("destroy", "-auto-approve", "-input=false", *deployed.var_files, timeout=300)
    deployed.destroyed = True
    streams = deployed.client("firehose").list_delivery_streams()["DeliveryStreamNames"]
    assert deployed.outputs["delivery_stream_name"] not in streams
    tables = deployed.client("dynamodb").list_tables()["TableNames"]
    assert deployed.outputs["sales_table_name"] not in tables
    assert deployed.client("sqs").list_queues().get("QueueUrls", []) == []
