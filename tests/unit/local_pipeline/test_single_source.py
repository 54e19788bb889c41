"""One source of truth: the local stream and Terraform both read pipeline.json and the Glue schema file.

The first test pins the local runtime to the declarations; the Terraform tests read ``terraform/*.tf`` as
text and fail if Terraform restates a value instead of reading it with ``jsondecode(file(...))``. They skip
only while ``terraform/`` is absent from the checkout (the Terraform work lands on its own branch).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import glue_schemas
import pipeline_config
from local_pipeline.config import MIB, StreamConfig
from local_pipeline.dashboards import QUERIES_DIR

ROOT = Path(__file__).resolve().parents[3]
TERRAFORM = Path(os.environ.get("TERRAFORM_DIR", ROOT / "terraform"))


def test_the_local_stream_is_configured_from_pipeline_json_and_the_glue_schema() -> None:
    hose = pipeline_config.load()["firehose"]
    config = StreamConfig.from_declarations()
    assert config.prefix == hose["prefix"]
    assert config.error_output_prefix == hose["error_output_prefix"]
    assert config.buffering_size_bytes == hose["buffering_size_mib"] * MIB
    assert config.buffering_interval_seconds == hose["buffering_interval_seconds"]
    assert config.processor_buffer_size_bytes == hose["processor_buffer_size_mib"] * MIB
    assert config.processor_buffer_interval_seconds == hose["processor_buffer_interval_seconds"]
    assert config.processor_number_of_retries == hose["processor_number_of_retries"]
    assert config.parquet_compression == hose["parquet_compression"]
    assert config.active_partitions_limit == hose["active_partitions_limit"]
    assert config.event_pattern == pipeline_config.load()["event_pattern"]
    assert config.table_prefix == pipeline_config.load()["lake"]["table_prefix"]
    assert config.glue_table == glue_schemas.sales_history()
    assert config.prefix.startswith(config.table_prefix)


def test_the_dashboard_sql_names_the_glue_table() -> None:
    table = glue_schemas.sales_history()["table"]
    texts = [path.read_text() for path in QUERIES_DIR.glob("*.sql")]
    assert any(re.search(rf"\bFROM {table}\b", text) for text in texts)


@pytest.fixture(scope="module")
def terraform_text() -> str:
    files = sorted(TERRAFORM.glob("*.tf"))
    # A missing terraform/ must fail, not skip: a skipped drift check would let the two drift apart unseen.
    assert files, f"no *.tf files in {TERRAFORM}"
    return "\n".join(path.read_text(encoding="utf-8") for path in files)


@pytest.mark.parametrize("declaration", ["pipeline_config/pipeline.json", "glue_schemas/sales_history.json"])
def test_terraform_reads_each_declaration_with_jsondecode_file(terraform_text: str, declaration: str) -> None:
    assert re.search(rf"jsondecode\(\s*file\([^)]*{re.escape(declaration)}\"?\s*\)\s*\)", terraform_text)


def test_terraform_deploys_the_same_sql_files(terraform_text: str) -> None:
    assert re.search(r"fileset\([^)]*athena_queries", terraform_text)


def test_the_stream_and_rule_take_their_settings_from_the_declarations(terraform_text: str) -> None:
    for attribute in ("prefix", "error_output_prefix", "buffering_size", "buffering_interval"):
        assert re.search(rf"\n\s*{attribute}\s*=\s*local\.", terraform_text), attribute
    assert re.search(r"event_pattern\s*=\s*jsonencode\(local\.pipeline\.event_pattern\)", terraform_text)
    assert re.search(r"for_each\s*=\s*local\.schema\.columns", terraform_text)
    assert re.search(r"for_each\s*=\s*local\.schema\.partition_keys", terraform_text)


def test_terraform_restates_no_declared_value(terraform_text: str) -> None:
    pipeline = pipeline_config.load()
    hose = pipeline["firehose"]
    literals = [hose["prefix"], hose["error_output_prefix"], *pipeline["event_pattern"]["source"]]
    literals += pipeline["event_pattern"]["detail-type"]
    for literal in literals:
        assert f'"{literal}"' not in terraform_text, f"terraform restates {literal!r}"
    for column in glue_schemas.sales_history()["columns"]:
        assert not re.search(rf'name\s*=\s*"{column["name"]}"', terraform_text), column["name"]


def test_terraform_overrides_default_to_the_declared_values(terraform_text: str) -> None:
    overridable = re.findall(r"coalesce\(\s*var\.(\w+)\s*,\s*local\.pipeline\.", terraform_text)
    assert overridable, "expected pipeline.json values to be read through local.pipeline"
    for name in overridable:
        block = re.search(rf'variable "{name}" \{{(.*?)\n\}}', terraform_text, re.DOTALL)
        assert block, f"variable {name} is not declared"
        assert re.search(r"\n\s*default\s*=\s*null\b", block.group(1)), f"var.{name} must default to null"


def test_terraform_reads_the_trigger_and_every_buffer_queue_setting_from_pipeline_json(terraform_text: str) -> None:
    pipeline = pipeline_config.load()
    assert re.search(r"coalesce\(\s*var\.fanout_trigger\s*,\s*local\.pipeline\.fanout_trigger\s*\)", terraform_text)
    settings = [key for key in pipeline["buffer_queue"] if not key.startswith("_")]
    assert settings, "pipeline.json declares no buffer_queue settings"
    for key in settings:
        assert re.search(rf"local\.pipeline\.buffer_queue\.{key}\b", terraform_text), f"terraform does not read {key}"


def test_the_queue_and_its_mapping_take_their_settings_from_the_declarations(terraform_text: str) -> None:
    # Each attribute is set from local.buffer_queue, the map that reads pipeline.json (or a variable's override).
    for attribute in (
        "batch_size",
        "maximum_batching_window_in_seconds",
        "maximum_concurrency",
        "visibility_timeout_seconds",
        "message_retention_seconds",
        "maxReceiveCount",
    ):
        assert re.search(rf"\n\s*{attribute}\s*=\s*local\.buffer_queue\.", terraform_text), attribute


def test_the_fanout_timeout_is_declared_once(terraform_text: str) -> None:
    from local_pipeline.runner import FANOUT_TIMEOUT_MS

    assert pipeline_config.load()["fanout_timeout_seconds"] * 1000 == FANOUT_TIMEOUT_MS
    assert re.search(
        r"fanout_timeout_seconds\s*=\s*coalesce\(\s*var\.fanout_timeout_seconds\s*,\s*local\.pipeline\.fanout_timeout_seconds\s*\)",
        terraform_text,
    )
    assert re.search(r"\btimeout\s*=\s*local\.fanout_timeout_seconds\b", terraform_text)
