"""Amazon Data Firehose's API and service limits, as AWS documents them; the simulated stream enforces these.

Declared here, on the simulator's side, from AWS's pages, never imported from the fan-out the simulator
tests: a wrong constant in the fan-out's sender must meet the real limit here and fail a test, not agree
with the simulator by construction. ``tests/unit/local_pipeline/test_firehose_limits.py`` pins each number
to its page.
"""

from __future__ import annotations

__all__ = [
    "ACTIVE_PARTITIONS_DEFAULT",
    "DEFAULT_REGION_QUOTA",
    "HIGH_QUOTA_REGIONS",
    "HIGH_QUOTA_REGION_QUOTA",
    "PROCESSOR_BUFFER_INTERVAL_SECONDS_MAX",
    "PROCESSOR_BUFFER_INTERVAL_SECONDS_MIN",
    "PROCESSOR_BUFFER_SIZE_MIB_MAX",
    "PROCESSOR_BUFFER_SIZE_MIB_MIN",
    "PROCESSOR_NUMBER_OF_RETRIES_DEFAULT",
    "PUT_RECORD_BATCH_MAX_BYTES",
    "PUT_RECORD_BATCH_MAX_RECORDS",
    "RECORD_MAX_BYTES",
    "S3_RETRY_INTERVAL_MS",
    "S3_RETRY_LIMIT_MS",
    "TRANSFORM_INVOCATION_TIMEOUT_MS",
]

_KIB = 1024
_MIB = 1024 * 1024

# Amazon Data Firehose API Reference, "PutRecordBatch": "Each PutRecordBatch request supports up to 500
# records. Each record in the request can be as large as 1,000 KB (before base64 encoding), up to a limit of
# 4 MB for the entire request." (The service counts KiB and MiB: 1,024,000 and 4,194,304 bytes.)
PUT_RECORD_BATCH_MAX_RECORDS = 500
PUT_RECORD_BATCH_MAX_BYTES = 4 * _MIB
RECORD_MAX_BYTES = 1000 * _KIB

# Amazon Data Firehose Developer Guide, "Amazon Data Firehose quota": a Direct PUT stream's default quotas per
# second (PutRecord and PutRecordBatch together) are 500,000 records, 2,000 requests and 5 MiB in US East
# (N. Virginia), US West (Oregon) and Europe (Ireland); 100,000 records, 1,000 requests and 1 MiB elsewhere.
#: Regions whose streams get the higher default Direct PUT quotas.
HIGH_QUOTA_REGIONS = frozenset({"us-east-1", "us-west-2", "eu-west-1"})
#: (records, requests, bytes) per second in :data:`HIGH_QUOTA_REGIONS`.
HIGH_QUOTA_REGION_QUOTA = (500_000, 2_000, 5 * _MIB)
#: (records, requests, bytes) per second in every other region.
DEFAULT_REGION_QUOTA = (100_000, 1_000, 1 * _MIB)

# Amazon Data Firehose Developer Guide, "Amazon Data Firehose quota" and "Partition data with dynamic
# partitioning": 500 active partitions per stream by default (raisable to 5,000).
ACTIVE_PARTITIONS_DEFAULT = 500

# Amazon Data Firehose API Reference, "ProcessorParameter" (Lambda processor): BufferSizeInMBs 0.2 to 3
# (default 1), BufferIntervalInSeconds 0 to 900 (default 60), NumberOfRetries default 3. Developer Guide,
# "Transform source data in Amazon Data Firehose": Firehose allows an invocation at most 5 minutes.
PROCESSOR_BUFFER_SIZE_MIB_MIN = 0.2
PROCESSOR_BUFFER_SIZE_MIB_MAX = 3
PROCESSOR_BUFFER_INTERVAL_SECONDS_MIN = 0
PROCESSOR_BUFFER_INTERVAL_SECONDS_MAX = 900
PROCESSOR_NUMBER_OF_RETRIES_DEFAULT = 3
TRANSFORM_INVOCATION_TIMEOUT_MS = 5 * 60 * 1000

# Amazon Data Firehose Developer Guide, "Handling data delivery failure" (Amazon S3) and "Troubleshoot errors
# in Amazon Data Firehose": a failed S3 delivery is retried every 5 seconds for as long as Firehose keeps the
# data, 24 hours for Direct PUT, then the data is discarded.
S3_RETRY_INTERVAL_MS = 5_000
S3_RETRY_LIMIT_MS = 24 * 60 * 60 * 1000
