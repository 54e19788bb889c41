"""The simulated Amazon Data Firehose stream, one module per concern.

- :mod:`.limits`: the API and service limits, from AWS's docs (never from the fan-out it tests);
- :mod:`.quotas`: PutRecordBatch's checks and the Direct PUT quotas per simulated second;
- :mod:`.transform`: the processor, invoking the transform Lambda and routing records by result;
- :mod:`.delivery`: partitions, Parquet objects, error records and the S3 writes;
- :mod:`.iceberg`: delivery to an Apache Iceberg table instead (`destination = "iceberg"`), upserting on sale_id;
- :mod:`.stream`: :class:`LocalDeliveryStream`, which ties them together.

Every name importable from ``local_pipeline.firehose`` before it became a package still is.
"""

from __future__ import annotations

from local_pipeline.clock import SimulatedClock
from local_pipeline.firehose.core import StreamStats
from local_pipeline.firehose.delivery import (
    FORMAT_CONVERSION_FAILED,
    PARTITION_EXCEEDED,
    PARTITION_SPOOL_BYTES,
    PROCESSING_FAILED,
)
from local_pipeline.firehose.limits import (
    HIGH_QUOTA_REGIONS,
    PUT_RECORD_BATCH_MAX_BYTES,
    PUT_RECORD_BATCH_MAX_RECORDS,
    RECORD_MAX_BYTES,
    S3_RETRY_INTERVAL_MS,
    S3_RETRY_LIMIT_MS,
)
from local_pipeline.firehose.quotas import DirectPutQuota
from local_pipeline.firehose.stream import LocalDeliveryStream
from local_pipeline.firehose.transform import Transform
from local_pipeline.lambda_service import INVOCATION_PAYLOAD_LIMIT

__all__ = [
    "FORMAT_CONVERSION_FAILED",
    "HIGH_QUOTA_REGIONS",
    "LAMBDA_PAYLOAD_LIMIT",
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "PARTITION_EXCEEDED",
    "PARTITION_SPOOL_BYTES",
    "PROCESSING_FAILED",
    "S3_RETRY_INTERVAL_MS",
    "S3_RETRY_LIMIT_MS",
    "DirectPutQuota",
    "LocalDeliveryStream",
    "SimulatedClock",
    "StreamStats",
    "Transform",
]

# The names these had when the stream took them from the fan-out; they are the simulator's own limits now.
MAX_BATCH_RECORDS = PUT_RECORD_BATCH_MAX_RECORDS
MAX_BATCH_BYTES = PUT_RECORD_BATCH_MAX_BYTES
MAX_RECORD_BYTES = RECORD_MAX_BYTES
LAMBDA_PAYLOAD_LIMIT = INVOCATION_PAYLOAD_LIMIT
