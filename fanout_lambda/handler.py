"""Fan-out Lambda: validate ``carousel.product.sold`` events, write each sale to DynamoDB, forward it to Firehose.

One entry point, two triggers:
- direct (EventBridge rule → Lambda): the event; returns ``{"outcome", "eventId", ...}`` and raises when the sale
  must be retried (Lambda's asynchronous retries, then its on-failure destination);
- queue (rule → SQS buffer queue → event source mapping): an SQS batch whose bodies are the events; returns
  ``{"batchItemFailures": [{"itemIdentifier": messageId}, ...]}`` listing exactly the messages to redeliver.
Both run as a batch (direct mode: of one) through :class:`fanout_lambda.batch.SaleBatch`.

Outcomes (each logged and counted as an EMF metric, per invocation):
- processed (``SalesProcessed``): new sale; item written and record accepted by Firehose;
- duplicate (``SalesDuplicate``): the same sale (tenant, product, sale date) was already processed within 24 h,
  whatever its EventBridge id, by either trigger; nothing is written again;
- rejected (``SalesRejected``): invalid, not JSON, or another source or type; kept in the dead-letter queue
  with the reason and never retried;
- in progress (``SalesInProgress``): another invocation holds the sale right now; retried later;
- failed (``SalesFailed``): a DynamoDB or Firehose write did not succeed; the claim is released and the event
  retried. ``FirehoseResends`` counts Firehose entries sent again after a partial failure.
"""

from __future__ import annotations

import logging
import os
import random
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.config import Config

from pipeline_config import embedding_dimension

from .adapters import BufferQueue, DeadLetterQueue, FirehoseSender, SalesStore
from .batch import BatchResult, Message, Outcome, SaleBatch
from .claims import IDEMPOTENCY_WINDOW_SECONDS, IdempotencyRecords
from .errors import InvalidSaleEvent
from .settings import AWS_CALL_CONCURRENCY, FanoutSettings, FlowControl
from .validation import SaleValidator, validator

__all__ = [
    "IDEMPOTENCY_WINDOW_SECONDS",
    "BufferQueue",
    "FanoutService",
    "Message",
    "client_config",
    "configure",
    "is_sqs_event",
    "lambda_handler",
    "reset",
]

SERVICE = "sales-fanout"

# Compiled at import (cold start), not on the first event: the JSON Schema is ready before any invocation.
validator(embedding_dimension())

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "CarouselSalesPipeline"))

#: Metric per outcome (names unchanged from the one-event handler).
OUTCOME_METRICS = {
    "processed": "SalesProcessed",
    "duplicate": "SalesDuplicate",
    "rejected": "SalesRejected",
    "in_progress": "SalesInProgress",
    "failed": "SalesFailed",
}


def client_config(pool_size: int = AWS_CALL_CONCURRENCY) -> Config:
    """botocore configuration for the fan-out's clients: one HTTP connection per concurrent call of a batch.

    Standard retry mode (3 attempts, capped backoff with jitter) instead of the legacy default, which gives
    DynamoDB 10 attempts and up to ~25 s of backoff: inside a 30 s function a throttled call should fail its
    sales soon, so the partial batch response (or Lambda's retry) brings them back later.
    """
    return Config(max_pool_connections=pool_size, retries={"mode": "standard"})


def is_sqs_event(event: Any) -> bool:
    """Whether ``event`` is an SQS batch (what an event source mapping delivers), not an EventBridge event."""
    if not isinstance(event, dict):
        return False
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs" for r in records)
    )


class FanoutService:
    """Everything one container needs, built once: the batch (validator, adapters, idempotency records) and the
    thread pool its calls run on. The collaborators live on :attr:`batch` only, so replacing one there is
    replacing it for every invocation."""

    def __init__(
        self,
        validator: SaleValidator,
        store: SalesStore,
        sender: FirehoseSender,
        dead_letters: DeadLetterQueue,
        records: IdempotencyRecords,
        *,
        pool_size: int = AWS_CALL_CONCURRENCY,
        buffer_queue: BufferQueue | None = None,
        flow: FlowControl | None = None,
        draw: Callable[[], float] = random.random,
        embedding_encoding: str | None = None,
    ) -> None:
        self.executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="fanout-aws")
        self.flow = flow or FlowControl.from_declarations()
        self.batch = SaleBatch(
            validator,
            store,
            sender,
            dead_letters,
            records,
            executor=self.executor,
            margin_seconds=self.flow.margin_seconds,
            embedding_encoding=embedding_encoding,
        )
        #: Where throttled messages are backed off (queue trigger with BUFFER_QUEUE_URL); None: not at all.
        self.buffer_queue = buffer_queue
        self.draw = draw

    @classmethod
    def build(
        cls,
        settings: FanoutSettings,
        *,
        dynamodb: Any = None,
        firehose: Any = None,
        sqs: Any = None,
    ) -> FanoutService:
        """Wire the service; a client left as ``None`` is created from the environment, sized for the pool."""
        config = client_config(settings.aws_call_concurrency)
        dynamodb = dynamodb or boto3.client("dynamodb", config=config)
        sqs = sqs or boto3.client("sqs", config=config)
        return cls(
            validator=validator(settings.embedding_dimension),
            store=SalesStore(dynamodb, settings.sales_table_name),
            sender=FirehoseSender(firehose or boto3.client("firehose", config=config), settings.delivery_stream_names),
            dead_letters=DeadLetterQueue(sqs, settings.dead_letter_queue_url),
            records=IdempotencyRecords(dynamodb, settings.idempotency_table_name),
            pool_size=settings.aws_call_concurrency,
            buffer_queue=BufferQueue(sqs, settings.buffer_queue_url) if settings.buffer_queue_url else None,
            embedding_encoding=settings.embedding_encoding,
        )

    def close(self) -> None:
        """Let the pool's threads go (a rebuilt service has its own)."""
        self.executor.shutdown(wait=False)

    def handle(self, event: Any, context: LambdaContext | None) -> dict[str, Any]:
        """Process one EventBridge event (direct mode); return its outcome, or raise so Lambda retries it."""
        result = self.process([Message(None, event)], context, queue=False)
        (outcome,) = result.outcomes
        if outcome.kind == "in_progress":
            raise IdempotencyAlreadyInProgressError(
                f"Execution already in progress with idempotency key: key={outcome.record_id}"
            )
        if outcome.kind == "failed":
            raise outcome.error or RuntimeError("sale not recorded")
        if outcome.kind == "rejected":
            event_id = event.get("id") if isinstance(event, dict) else None
            return {"outcome": "rejected", "eventId": event_id, "reason": str(outcome.error)}
        sale = outcome.sale
        assert sale is not None
        return {"outcome": outcome.kind, "eventId": sale.event_id, "saleId": sale.sale_id}

    def handle_batch(self, event: dict[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """Process an SQS batch (queue mode); return the partial batch response. A message throttled past the
        invocation's time is listed too, and made visible again after its own backoff (:meth:`_back_off`)."""
        messages = [Message.from_sqs_record(record) for record in event["Records"]]
        result = self.process(messages, context, queue=True)
        failures: list[dict[str, str]] = []
        listed: set[str] = set()
        throttled: list[Message] = []
        for outcome in result.outcomes:
            message_id = outcome.message.message_id or ""
            if outcome.retry and message_id not in listed:
                listed.add(message_id)
                failures.append({"itemIdentifier": message_id})
                if outcome.throttled and outcome.message.receipt_handle:
                    throttled.append(outcome.message)
        if throttled:
            self._back_off(throttled)
        return {"batchItemFailures": failures}

    def _back_off(self, throttled: list[Message]) -> None:
        """Spread the throttled messages' next receives out: exponential in their receive count, with jitter."""
        metrics.add_metric(name="SalesThrottled", unit=MetricUnit.Count, value=len(throttled))
        if self.buffer_queue is None:
            return
        entries = [
            (str(m.receipt_handle), self.flow.visibility_seconds(m.receive_count, self.draw())) for m in throttled
        ]
        report = self.buffer_queue.back_off(entries)
        logger.info(
            "throttled messages backed off",
            extra={
                "messages": len(entries),
                "visibility_seconds": sorted({seconds for _, seconds in entries}),
                "not_changed": len(report.failed),
            },
        )

    def process(self, messages: list[Message], context: LambdaContext | None, *, queue: bool) -> BatchResult:
        """Run ``messages`` through the batch; log and count every outcome."""
        remaining = context.get_remaining_time_in_millis() if context is not None else None
        result = self.batch.process(messages, remaining)
        # One INFO line per invocation: in direct mode a sale's own; in queue mode the batch's summary below,
        # with each processed or duplicate sale at DEBUG (POWERTOOLS_LOG_LEVEL=DEBUG traces every sale). A
        # sale that went wrong is always logged on its own, as a warning or an error.
        quiet = queue and logger.log_level > logging.DEBUG
        for outcome in result.outcomes:
            if not (quiet and outcome.kind in ("processed", "duplicate")):
                _log(outcome, queue)
        for outcome, error in result.unsettled:
            logger.warning(
                "sale done but its completion not recorded; its claim lapses when this invocation's time is over",
                extra={**_fields(outcome), "error": repr(error)},
            )
        for outcome, error in result.unreleased:
            logger.warning(
                "failed sale's claim not released; it lapses when this invocation's time is over",
                extra={**_fields(outcome), "error": repr(error)},
            )
        counts: Counter[str] = Counter(outcome.kind for outcome in result.outcomes)
        for kind, name in OUTCOME_METRICS.items():
            if counts[kind]:
                metrics.add_metric(name=name, unit=MetricUnit.Count, value=counts[kind])
        if result.firehose_resends:
            metrics.add_metric(name="FirehoseResends", unit=MetricUnit.Count, value=result.firehose_resends)
        if result.dynamodb_resends:
            metrics.add_metric(name="DynamoDBResends", unit=MetricUnit.Count, value=result.dynamodb_resends)
        if queue:
            logger.info(
                "batch done",
                extra={"messages": len(messages), "aws_calls": result.calls, **{k: counts[k] for k in OUTCOME_METRICS}},
            )
        return result


def _fields(outcome: Outcome) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if outcome.message.message_id is not None:
        fields["message_id"] = outcome.message.message_id
    sale = outcome.sale
    if sale is not None:
        fields.update(event_id=sale.event_id, sale_id=sale.sale_id, tenant_id=sale.tenant_id)
    else:
        event = outcome.message.event
        fields["event_id"] = event.get("id") if isinstance(event, dict) else None
    return fields


def _log(outcome: Outcome, queue: bool) -> None:
    fields = _fields(outcome)
    retried = "the message is listed for redelivery" if queue else "Lambda will retry the event"
    routine = logger.debug if queue else logger.info
    if outcome.kind == "processed":
        sale = outcome.sale
        assert sale is not None
        routine("sale processed", extra={**fields, "product_id": sale.product_id, "shard": sale.shard})
    elif outcome.kind == "duplicate":
        routine(
            "duplicate sale skipped",
            extra={**fields, "first_event_id": outcome.first_event_id, "in_batch_copy": outcome.in_batch_copy},
        )
    elif outcome.kind == "rejected":
        error = outcome.error
        assert isinstance(error, InvalidSaleEvent)
        logger.warning(
            "invalid sale event sent to the dead-letter queue",
            extra={**fields, "field": error.field, "reason": error.reason, "dlq_message_id": outcome.dead_letter_id},
        )
    elif outcome.kind == "in_progress":
        # Another invocation holds this sale right now (concurrent copy, or a crash before its claim lapsed):
        # retrying later is correct; the holder's outcome or the claim's expiry settles it.
        logger.warning(f"sale already in progress elsewhere; {retried}", extra=fields)
    else:
        logger.error(
            f"sale not recorded; {retried}",
            extra={**fields, "error_type": type(outcome.error).__name__, "error": str(outcome.error)},
        )


_service: FanoutService | None = None


def configure(
    *,
    settings: FanoutSettings | None = None,
    dynamodb: Any = None,
    firehose: Any = None,
    sqs: Any = None,
) -> FanoutService:
    """Build the container's service now, with injected clients (tests, the local runtime)."""
    global _service  # noqa: PLW0603 - one service per Lambda container is the point
    reset()
    _service = FanoutService.build(settings or FanoutSettings.from_env(), dynamodb=dynamodb, firehose=firehose, sqs=sqs)
    return _service


def reset() -> None:
    """Forget the container's service; the next invocation builds it from the environment."""
    global _service  # noqa: PLW0603
    if _service is not None:
        _service.close()
    _service = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge (direct) or SQS (queue) entry point."""
    service = _service or configure()
    if is_sqs_event(event):
        return service.handle_batch(event, context)
    return service.handle(event, context)
