"""Fan-out settings, read from the environment once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline_config import ConfigurationError, embedding_dimension, sold_date_years

#: The environment variable names Terraform, the local runtime and the tests set. Declared here only.
SALES_TABLE_NAME = "SALES_TABLE_NAME"
IDEMPOTENCY_TABLE_NAME = "IDEMPOTENCY_TABLE_NAME"
DELIVERY_STREAM_NAME = "DELIVERY_STREAM_NAME"
DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"

#: Optional: the tenants Athena's enum projection lists (Terraform's tenant_ids, comma-separated). Unset or
#: empty: every tenant is accepted (the projection is injected and shows any tenant).
TENANT_IDS = "TENANT_IDS"
#: Optional: the sold-date years Athena's projection covers, ``first,last`` (Terraform's effective
#: partition_projection_year_range). Unset: pipeline.json's ``sold_date_years``.
SOLD_DATE_YEARS = "SOLD_DATE_YEARS"

REQUIRED_VARIABLES = (SALES_TABLE_NAME, IDEMPOTENCY_TABLE_NAME, DELIVERY_STREAM_NAME, DEAD_LETTER_QUEUE_URL)
OPTIONAL_VARIABLES = (TENANT_IDS, SOLD_DATE_YEARS)

#: AWS calls a batch runs at once: the worker threads of the fan-out's pool and the HTTP connections of each
#: boto3 client (botocore's default pool of 10 would queue the rest). A batch of 500 sales makes ~540 calls,
#: ~500 of them the per-sale idempotency claims: 32 at a time is ~16 round trips instead of 500.
AWS_CALL_CONCURRENCY = 32


@dataclass(frozen=True)
class FanoutSettings:
    """Where the fan-out Lambda writes. No defaults: these name real resources."""

    sales_table_name: str
    idempotency_table_name: str
    delivery_stream_name: str
    dead_letter_queue_url: str
    embedding_dimension: int
    #: Not an environment variable (the deployed environment stays as it is): a named constant.
    aws_call_concurrency: int = AWS_CALL_CONCURRENCY

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FanoutSettings:
        """Build settings from ``environ`` (default ``os.environ``); raise naming every missing variable."""
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_VARIABLES if not env.get(name, "").strip()]
        if missing:
            raise ConfigurationError(f"missing required environment variable(s): {', '.join(missing)}")
        return cls(
            sales_table_name=env[SALES_TABLE_NAME].strip(),
            idempotency_table_name=env[IDEMPOTENCY_TABLE_NAME].strip(),
            delivery_stream_name=env[DELIVERY_STREAM_NAME].strip(),
            dead_letter_queue_url=env[DEAD_LETTER_QUEUE_URL].strip(),
            embedding_dimension=embedding_dimension(env),
        )


@dataclass(frozen=True)
class LakeScope:
    """What Athena can show: a sale outside it would be written to S3 and never seen, so the fan-out refuses it.

    ``tenant_ids`` is None when every tenant is shown (injected projection), else the enum projection's list.
    """

    first_year: int
    last_year: int
    tenant_ids: frozenset[str] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LakeScope:
        """Read ``SOLD_DATE_YEARS`` and ``TENANT_IDS`` (both optional); raise naming a malformed one."""
        env = os.environ if environ is None else environ
        raw_years = env.get(SOLD_DATE_YEARS, "").strip()
        first, last = sold_date_years()
        if raw_years:
            try:
                first, last = (int(part) for part in raw_years.split(","))
            except ValueError:
                first = last = 0
            if not 0 < first <= last:
                raise ConfigurationError(f"{SOLD_DATE_YEARS} must be 'first,last' years, got {raw_years!r}")
        tenants = frozenset(t.strip() for t in env.get(TENANT_IDS, "").split(",") if t.strip())
        return cls(first_year=first, last_year=last, tenant_ids=tenants or None)
