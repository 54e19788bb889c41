"""Fan-out settings, read from the environment once per container."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import pipeline_config
from pipeline_config import ConfigurationError, embedding_codec, embedding_dimension, sold_date_years

#: The environment variable names Terraform, the local runtime and the tests set. Declared here only.
SALES_TABLE_NAME = "SALES_TABLE_NAME"
IDEMPOTENCY_TABLE_NAME = "IDEMPOTENCY_TABLE_NAME"
DELIVERY_STREAM_NAME = "DELIVERY_STREAM_NAME"
DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
#: Optional (queue trigger): the buffer queue, whose throttled messages the fan-out backs off (their visibility).
BUFFER_QUEUE_URL = "BUFFER_QUEUE_URL"

#: Optional: the tenants Athena's enum projection lists (Terraform's tenant_ids, comma-separated). Unset or
#: empty: every tenant is accepted (the projection is injected and shows any tenant).
TENANT_IDS = "TENANT_IDS"
#: Optional: the sold-date years Athena's projection covers, ``first,last`` (Terraform's effective
#: partition_projection_year_range). Unset: pipeline.json's ``sold_date_years``.
SOLD_DATE_YEARS = "SOLD_DATE_YEARS"

#: Optional: how the sales item stores its embedding (float32, float16 or int8; Terraform's
#: dynamodb_embedding_encoding). Unset: pipeline.json's ``dynamodb.embedding_encoding``.
DYNAMODB_EMBEDDING_ENCODING = "DYNAMODB_EMBEDDING_ENCODING"

REQUIRED_VARIABLES = (SALES_TABLE_NAME, IDEMPOTENCY_TABLE_NAME, DELIVERY_STREAM_NAME, DEAD_LETTER_QUEUE_URL)
OPTIONAL_VARIABLES = (TENANT_IDS, SOLD_DATE_YEARS, BUFFER_QUEUE_URL, DYNAMODB_EMBEDDING_ENCODING)

#: AWS calls a batch runs at once: the worker threads of the fan-out's pool and the HTTP connections of each
#: boto3 client (botocore's default pool of 10 would queue the rest). A batch of 500 sales makes ~540 calls,
#: ~500 of them the per-sale idempotency claims: 32 at a time is ~16 round trips instead of 500.
AWS_CALL_CONCURRENCY = 32


@dataclass(frozen=True)
class FlowControl:
    """How long an invocation resends throughput refusals, and how throttled messages back off (pipeline.json)."""

    #: Time left at the end of an invocation to release claims and answer (``fanout_flow_control_margin_seconds``).
    margin_seconds: float
    #: The visibility backoff of a throttled message on its n-th receive: d/2 + random(0, d/2) seconds,
    #: d = min(max_seconds, base_seconds x 2^(n-1)) (``buffer_queue.throttle_backoff_*``).
    base_seconds: float
    max_seconds: float

    @classmethod
    def from_declarations(cls) -> FlowControl:
        """Read the values from ``pipeline_config/pipeline.json``."""
        declared = pipeline_config.load()
        queue = declared["buffer_queue"]
        return cls(
            margin_seconds=float(declared["fanout_flow_control_margin_seconds"]),
            base_seconds=float(queue["throttle_backoff_base_seconds"]),
            max_seconds=float(queue["throttle_backoff_max_seconds"]),
        )

    def visibility_seconds(self, receive_count: int, draw: float) -> int:
        """The visibility timeout for a message throttled on its ``receive_count``-th receive; ``draw`` in [0, 1)."""
        ceiling = min(self.max_seconds, self.base_seconds * (1 << min(30, max(0, receive_count - 1))))
        return min(SQS_MAX_VISIBILITY_SECONDS, round(ceiling / 2 + draw * ceiling / 2))


#: SQS's longest visibility timeout, 12 hours (Amazon SQS Developer Guide, "Amazon SQS visibility timeout").
SQS_MAX_VISIBILITY_SECONDS = 43_200


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
    #: The buffer queue (queue trigger); None: throttled messages come back after the queue's own visibility.
    buffer_queue_url: str | None = None
    #: How the sales item stores its embedding (``DYNAMODB_EMBEDDING_ENCODING``, else pipeline.json).
    embedding_encoding: str = field(default_factory=pipeline_config.dynamodb_embedding_encoding)

    @property
    def delivery_stream_names(self) -> tuple[str, ...]:
        """Every stream of the stack: ``DELIVERY_STREAM_NAME`` is one name or a comma-separated list."""
        return tuple(name.strip() for name in self.delivery_stream_name.split(",") if name.strip())

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
            buffer_queue_url=env.get(BUFFER_QUEUE_URL, "").strip() or None,
            embedding_encoding=dynamodb_embedding_encoding(env),
        )


def dynamodb_embedding_encoding(environ: Mapping[str, str] | None = None) -> str:
    """``DYNAMODB_EMBEDDING_ENCODING`` if set, else pipeline.json's; raise naming the variable and a bad value."""
    env = os.environ if environ is None else environ
    raw = env.get(DYNAMODB_EMBEDDING_ENCODING, "").strip()
    if not raw:
        return pipeline_config.dynamodb_embedding_encoding()
    if raw not in embedding_codec.ENCODINGS:
        allowed = ", ".join(embedding_codec.ENCODINGS)
        raise ConfigurationError(f"{DYNAMODB_EMBEDDING_ENCODING} must be one of {allowed}, got {raw!r}")
    return raw


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
