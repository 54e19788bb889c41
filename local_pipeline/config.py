"""The local delivery stream's configuration, read from the same declarations Terraform reads.

Nothing here restates a value: :func:`StreamConfig.from_declarations` copies ``pipeline_config/pipeline.json``
and ``glue_schemas/sales_history.json``. The drift test compares this object with those files and checks that
``terraform/*.tf`` reads them too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import glue_schemas
import pipeline_config

__all__ = ["MIB", "StreamConfig"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class StreamConfig:
    """Everything the local Firehose needs to behave like the deployed stream."""

    stream_name: str
    prefix: str
    error_output_prefix: str
    buffering_size_bytes: int
    buffering_interval_seconds: int
    processor_buffer_size_bytes: int
    processor_buffer_interval_seconds: int
    processor_number_of_retries: int
    parquet_compression: str
    active_partitions_limit: int
    event_pattern: dict[str, Any]
    table_prefix: str
    glue_table: dict[str, Any] = field(repr=False)
    #: The stream version in object names; 1 for a stream that was never updated.
    stream_version: int = 1
    #: Appended to data object names (the stream declares ``FileExtension``; with Parquet conversion Firehose
    #: would append ``.parquet`` anyway). See "Configure Amazon S3 object name format" in the Firehose guide.
    file_extension: str = ".parquet"
    #: The lake's table format (``--table-format``, Terraform's ``lake_table_format``): parquet or iceberg.
    table_format: str = "parquet"

    @classmethod
    def from_declarations(cls, stream_name: str = "sales-history-local") -> StreamConfig:
        """Build the configuration from ``pipeline.json`` and the Glue schema file."""
        pipeline = pipeline_config.load()
        hose = pipeline["firehose"]
        return cls(
            stream_name=stream_name,
            prefix=hose["prefix"],
            error_output_prefix=hose["error_output_prefix"],
            buffering_size_bytes=int(hose["buffering_size_mib"]) * MIB,
            buffering_interval_seconds=int(hose["buffering_interval_seconds"]),
            processor_buffer_size_bytes=int(float(hose["processor_buffer_size_mib"]) * MIB),
            processor_buffer_interval_seconds=int(hose["processor_buffer_interval_seconds"]),
            processor_number_of_retries=int(hose["processor_number_of_retries"]),
            parquet_compression=str(hose["parquet_compression"]),
            active_partitions_limit=int(hose["active_partitions_limit"]),
            file_extension=str(hose["file_extension"]),
            event_pattern=pipeline["event_pattern"],
            table_prefix=pipeline["lake"]["table_prefix"],
            glue_table=glue_schemas.sales_history(),
        )

    @property
    def table_name(self) -> str:
        """The Glue table name, which the dashboard SQL uses."""
        return str(self.glue_table["table"])
