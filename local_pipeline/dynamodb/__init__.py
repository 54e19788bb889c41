"""DynamoDB's write capacity in a local run: the limits AWS enforces and moto ignores (see :mod:`.capacity`)."""

from local_pipeline.dynamodb.capacity import CapacityLedger, Refusal, Resource, Write, WriteCapacity
from local_pipeline.dynamodb.client import CapacityLimitedDynamoDB, throttling_error
from local_pipeline.dynamodb.limits import NEW_TABLE_WRITE_UNITS

__all__ = [
    "NEW_TABLE_WRITE_UNITS",
    "CapacityLedger",
    "CapacityLimitedDynamoDB",
    "Refusal",
    "Resource",
    "Write",
    "WriteCapacity",
    "throttling_error",
]
