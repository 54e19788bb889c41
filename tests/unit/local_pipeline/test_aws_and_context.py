from __future__ import annotations

import ast
import base64
import gzip
import json
from pathlib import Path

import pytest

from local_pipeline.aws import ResourceNames, UnsafeKeyError, dead_letter_body, safe_path
from local_pipeline.aws.limits import SEND_MESSAGE_BATCH_MAX_ENTRIES, SQS_MESSAGE_MAX_BYTES
from local_pipeline.context import LambdaContext


@pytest.mark.parametrize("key", ["../outside", "sales_history/tenant_id=x/../../../y", "/etc/passwd", "a/../../b"])
def test_the_mirror_refuses_keys_that_leave_its_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(UnsafeKeyError):
        safe_path(tmp_path, key)


def test_the_mirror_keeps_the_key_layout(tmp_path: Path) -> None:
    key = "sales_history/tenant_id=t1/year=2025/month=03/sales-history-local-1-2026-01-15-09-00-00-abc"
    assert safe_path(tmp_path, key) == tmp_path.resolve() / key


def test_runs_against_an_endpoint_get_their_own_resource_names() -> None:
    assert ResourceNames.for_run("a") != ResourceNames.for_run("b")


def test_the_lambda_context_has_what_powertools_reads() -> None:
    context = LambdaContext("fn", region="eu-west-1")
    for attribute in (
        "function_name",
        "function_version",
        "invoked_function_arn",
        "memory_limit_in_mb",
        "aws_request_id",
        "log_group_name",
        "log_stream_name",
    ):
        assert getattr(context, attribute)
    assert context.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:fn"
    assert context.get_remaining_time_in_millis() == context.timeout_ms


def test_a_dead_letter_too_large_for_sqs_is_unpacked_back_to_its_event() -> None:
    packed = base64.b64encode(gzip.compress(json.dumps({"id": "e1"}).encode())).decode()
    body = json.dumps(
        {"errorType": "InvalidSaleEvent", "error": {"field": "f"}, "eventId": "e1", "eventGzipBase64": packed}
    )
    assert dead_letter_body(body) == {
        "errorType": "InvalidSaleEvent",
        "error": {"field": "f"},
        "eventId": "e1",
        "event": {"id": "e1"},
    }


def test_the_simulated_sqs_limits_are_the_sqs_docs() -> None:
    # Amazon SQS Developer Guide, "Amazon SQS message quotas": 262,144 bytes, the size the stack deploys;
    # Amazon SQS API Reference, "SendMessageBatch": at most 10 messages per call.
    assert SQS_MESSAGE_MAX_BYTES == 262_144
    assert SEND_MESSAGE_BATCH_MAX_ENTRIES == 10


def test_the_embedded_aws_imports_nothing_from_the_code_it_tests() -> None:
    # The simulated services declare AWS's limits themselves: a wrong constant in a Lambda must fail a test.
    package = Path(__file__).resolve().parents[3] / "local_pipeline" / "aws"
    imported = {
        node.module
        for module in package.glob("*.py")
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    # What it does read from the fan-out's side is the dead-letter body's contract: how to unpack what it wrote.
    contracts = {"fanout_lambda.dead_letter_body"}
    assert not {name for name in imported - contracts if name.split(".")[0] in {"fanout_lambda", "transform_lambda"}}
