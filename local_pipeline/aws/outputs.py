"""The stack outputs a local run writes: its resources under the names ``terraform/outputs.tf`` gives them.

Every operator command reads a stack's whereabouts from ``terraform output -json``; the local run writes the
same shape (``outputs.json``), so the commands read a local run as they read a deployed stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from local_pipeline.config import StreamConfig
from local_pipeline.context import FANOUT_FUNCTION, TRANSFORM_FUNCTION

if TYPE_CHECKING:
    from local_pipeline.aws.embedded import EmbeddedAws

__all__ = ["stack_outputs"]


def stack_outputs(
    aws: EmbeddedAws, config: StreamConfig, *, trigger: str = "queue", stream_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """``aws``'s resources under the names ``terraform/outputs.tf`` gives them (plus ``endpoint_url``).

    In-process moto is gone when the run ends, so ``endpoint_url`` is set only for a run against a server.
    """
    names = aws.names
    values: dict[str, Any] = {
        "aws_region": aws.region,
        "lake_bucket_name": names.lake_bucket,
        "lake_table_location": f"s3://{names.lake_bucket}/{config.table_prefix}",
        "firehose_error_prefix": f"s3://{names.lake_bucket}/{config.error_output_prefix.split('!', 1)[0]}",
        "delivery_stream_name": config.stream_name,
        "delivery_stream_names": list(stream_names or [config.stream_name]),
        "sales_table_name": names.sales_table,
        "idempotency_table_name": names.idempotency_table,
        "dead_letter_queue_url": aws.queue_url,
        "dead_letter_queue_arn": aws.queue_arn(names.dead_letter_queue),
        "glue_table_name": config.table_name,
        "glue_database_name": config.glue_table["database"],
        "fanout_trigger": trigger,
        "buffer_queue_url": aws.buffer_queue_url,
        "buffer_queue_arn": aws.queue_arn(names.buffer_queue) if aws.buffer_queue_url else None,
        "fanout_lambda_name": FANOUT_FUNCTION,
        "transform_lambda_name": TRANSFORM_FUNCTION,
        "event_bus_name": "default",
        "lake_table_format": config.table_format,
    }
    if aws.endpoint_url is not None:
        values["endpoint_url"] = aws.endpoint_url
    return values
