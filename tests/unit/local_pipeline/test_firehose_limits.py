"""The simulated Firehose's limits are AWS's numbers, pinned here to the pages that state them.

The simulator declares them itself (``local_pipeline.firehose.limits``) rather than importing the fan-out's:
a wrong constant in the fan-out's sender then meets the real limit in the simulator and fails a test. These
tests keep the simulator's side honest: a change to a limit must be a change to AWS's docs.
"""

from __future__ import annotations

import ast
from pathlib import Path

from local_pipeline.firehose import limits
from local_pipeline.firehose.quotas import DirectPutQuota
from local_pipeline.lambda_service import INVOCATION_PAYLOAD_LIMIT

FIREHOSE_PACKAGE = Path(__file__).resolve().parents[3] / "local_pipeline" / "firehose"


def test_put_record_batch_limits_are_the_api_references() -> None:
    # Amazon Data Firehose API Reference, "PutRecordBatch": up to 500 records, 1,000 KB each before base64,
    # 4 MB for the entire request.
    assert limits.PUT_RECORD_BATCH_MAX_RECORDS == 500
    assert limits.PUT_RECORD_BATCH_MAX_BYTES == 4 * 1024 * 1024
    assert limits.RECORD_MAX_BYTES == 1000 * 1024


def test_direct_put_quotas_per_region_are_the_quota_pages() -> None:
    # Amazon Data Firehose Developer Guide, "Amazon Data Firehose quota": Direct PUT, per stream and second.
    assert frozenset({"us-east-1", "us-west-2", "eu-west-1"}) == limits.HIGH_QUOTA_REGIONS
    for region in ("us-east-1", "us-west-2", "eu-west-1"):
        assert DirectPutQuota.for_region(region) == DirectPutQuota(
            records_per_second=500_000, requests_per_second=2_000, bytes_per_second=5 * 1024 * 1024
        )
    for region in ("eu-central-1", "ap-southeast-2", "us-east-2"):
        assert DirectPutQuota.for_region(region) == DirectPutQuota(
            records_per_second=100_000, requests_per_second=1_000, bytes_per_second=1 * 1024 * 1024
        )


def test_processor_and_partition_limits_are_the_developer_guides() -> None:
    # API Reference, "ProcessorParameter": BufferSizeInMBs 0.2-3, BufferIntervalInSeconds 0-900,
    # NumberOfRetries default 3; Developer Guide, "Transform source data": an invocation may take 5 minutes.
    assert (limits.PROCESSOR_BUFFER_SIZE_MIB_MIN, limits.PROCESSOR_BUFFER_SIZE_MIB_MAX) == (0.2, 3)
    assert (limits.PROCESSOR_BUFFER_INTERVAL_SECONDS_MIN, limits.PROCESSOR_BUFFER_INTERVAL_SECONDS_MAX) == (0, 900)
    assert limits.PROCESSOR_NUMBER_OF_RETRIES_DEFAULT == 3
    assert limits.TRANSFORM_INVOCATION_TIMEOUT_MS == 300_000
    # Developer Guide, "Partition data with dynamic partitioning": 500 active partitions by default.
    assert limits.ACTIVE_PARTITIONS_DEFAULT == 500
    # Developer Guide, "Handling data delivery failure" (Amazon S3): retried every 5 s for 24 h (Direct PUT).
    assert limits.S3_RETRY_INTERVAL_MS == 5_000
    assert limits.S3_RETRY_LIMIT_MS == 24 * 60 * 60 * 1000


def test_lambda_payload_limit_is_the_lambda_quotas_page() -> None:
    # AWS Lambda Developer Guide, "Lambda quotas": 6 MB per synchronous request and response.
    assert INVOCATION_PAYLOAD_LIMIT == 6 * 1024 * 1024


def test_the_simulated_firehose_imports_nothing_from_the_code_it_tests() -> None:
    # GIVEN every module of the simulated Firehose
    imported: set[str] = set()
    for module in FIREHOSE_PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    # THEN none of them reads a limit (or anything else) from the Lambdas it is there to test
    assert not {name for name in imported if name.split(".")[0] in {"fanout_lambda", "transform_lambda"}}


def test_a_callers_timeline_starts_where_it_is_told_and_ends_with_the_invocation() -> None:
    from local_pipeline.clock import SimulatedClock
    from local_pipeline.firehose.quotas import QuotaLedger

    clock = SimulatedClock(10_000)
    ledger = QuotaLedger(DirectPutQuota.for_region("eu-west-1"), clock)
    ledger.new_invocation()
    ledger.wait(700)  # an earlier stage of the invocation (its DynamoDB writes) waited 0.7 s
    assert ledger.caller_now() == 10_700
    ledger.new_timeline(ledger.longest_wait())  # the next stage starts where that one ended
    ledger.wait(300)
    assert (ledger.caller_now(), ledger.longest_wait()) == (11_000, 1_000)
    ledger.new_timeline()  # a call side by side with the others, from the invocation's start
    assert ledger.caller_now() == 10_000
    ledger.new_invocation()  # the next invocation's timelines start from the shared clock
    assert (ledger.caller_now(), ledger.longest_wait()) == (10_000, 0)
