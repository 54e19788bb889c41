"""Fan-out Lambda: validate a ``carousel.product.sold`` event, write the sale to DynamoDB, forward it to Firehose.

Outcomes (each logged and counted as an EMF metric):
- processed: new sale; item written and record accepted by Firehose;
- duplicate: the same sale (tenant, product, sale date) was already processed within 24 h, whatever its
  EventBridge id; nothing is written again;
- rejected: the event is invalid; it is kept in the dead-letter queue with the reason and never retried.
A DynamoDB or Firehose failure raises: Powertools releases the idempotency record and Lambda retries.
"""

from __future__ import annotations

import os
import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline_config import embedding_dimension

from .adapters import DeadLetterQueue, FirehoseSender, SalesStore
from .errors import DeliveryIncomplete, InvalidSaleEvent
from .sale import Sale, firehose_record, idempotency_key, sales_item
from .settings import FanoutSettings
from .validation import SaleValidator, validator

SERVICE = "sales-fanout"
#: Duplicates are recognised for 24 hours.
IDEMPOTENCY_WINDOW_SECONDS = 24 * 60 * 60

# Compiled at import (cold start), not on the first event: the JSON Schema is ready before any invocation.
validator(embedding_dimension())

logger = Logger(service=os.getenv("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.getenv("POWERTOOLS_METRICS_NAMESPACE", "CarouselSalesPipeline"))


class FanoutService:
    """Everything one container needs, built once: validator, sales store, Firehose sender, DLQ, idempotency."""

    def __init__(
        self,
        validator: SaleValidator,
        store: SalesStore,
        sender: FirehoseSender,
        dead_letters: DeadLetterQueue,
        persistence: DynamoDBPersistenceLayer,
    ) -> None:
        self.validator = validator
        self.store = store
        self.sender = sender
        self.dead_letters = dead_letters
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="key",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=IDEMPOTENCY_WINDOW_SECONDS,
            response_hook=_mark_duplicate,
        )
        # A stable key prefix (not the function name) so renaming or redeploying the function keeps the window.
        self._record_once = idempotent_function(
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self.idempotency,
            key_prefix="carousel.product.sold",
        )(self._record_sale)

    @classmethod
    def build(
        cls,
        settings: FanoutSettings,
        *,
        dynamodb: Any = None,
        firehose: Any = None,
        sqs: Any = None,
    ) -> FanoutService:
        """Wire the service; a client left as ``None`` is created from the environment."""
        dynamodb = dynamodb or boto3.client("dynamodb")
        return cls(
            validator=validator(settings.embedding_dimension),
            store=SalesStore(dynamodb, settings.sales_table_name),
            sender=FirehoseSender(firehose or boto3.client("firehose"), settings.delivery_stream_name),
            dead_letters=DeadLetterQueue(sqs or boto3.client("sqs"), settings.dead_letter_queue_url),
            persistence=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name, boto3_client=dynamodb),
        )

    def handle(self, event: Any, context: LambdaContext | None) -> dict[str, Any]:
        """Process one EventBridge event; return its outcome."""
        if context is not None:
            self.idempotency.register_lambda_context(context)
        try:
            sale = self.validator.validate(event)
        except InvalidSaleEvent as exc:
            return self._reject(event, exc)
        log_fields = {"event_id": sale.event_id, "sale_id": sale.sale_id, "tenant_id": sale.tenant_id}
        try:
            result: dict[str, Any] = self._record_once(request={"key": idempotency_key(sale)}, sale=sale)
        except IdempotencyAlreadyInProgressError:
            # Another invocation holds this sale right now (concurrent copy, or a crash before its record
            # expired): retrying later is correct; the holder's outcome or the record's expiry settles it.
            metrics.add_metric(name="SalesInProgress", unit=MetricUnit.Count, value=1)
            logger.warning("sale already in progress elsewhere; Lambda will retry the event", extra=log_fields)
            raise
        except Exception as exc:
            if isinstance(exc, DeliveryIncomplete) and exc.resent:
                metrics.add_metric(name="FirehoseResends", unit=MetricUnit.Count, value=exc.resent)
            metrics.add_metric(name="SalesFailed", unit=MetricUnit.Count, value=1)
            logger.exception("sale not recorded; Lambda will retry the event", extra=log_fields)
            raise
        outcome = result["outcome"]
        if outcome == "duplicate":
            metrics.add_metric(name="SalesDuplicate", unit=MetricUnit.Count, value=1)
            logger.info("duplicate sale skipped", extra={**log_fields, "first_event_id": result["eventId"]})
        else:
            logger.info("sale processed", extra={**log_fields, "product_id": sale.product_id, "shard": sale.shard})
        return {"outcome": outcome, "eventId": sale.event_id, "saleId": sale.sale_id}

    def _record_sale(self, request: dict[str, Any], sale: Sale) -> dict[str, Any]:
        # Runs only for a sale not yet done; raising here deletes the idempotency record, so a retry redoes
        # both writes (the put is idempotent and the lake dedupes on event_id): nothing is lost.
        self.store.put(sales_item(sale, time.time()))
        report = self.sender.send([firehose_record(sale)])
        if report.resent:
            metrics.add_metric(name="FirehoseResends", unit=MetricUnit.Count, value=report.resent)
            logger.warning("firehose entries resent", extra={"resent": report.resent, "codes": report.error_codes})
        metrics.add_metric(name="SalesProcessed", unit=MetricUnit.Count, value=1)
        return {"outcome": "processed", "eventId": sale.event_id, "saleId": sale.sale_id}

    def _reject(self, event: Any, exc: InvalidSaleEvent) -> dict[str, Any]:
        message_id = self.dead_letters.send(event, exc.as_dict(), type(exc).__name__)
        metrics.add_metric(name="SalesRejected", unit=MetricUnit.Count, value=1)
        event_id = event.get("id") if isinstance(event, dict) else None
        logger.warning(
            "invalid sale event sent to the dead-letter queue",
            extra={"event_id": event_id, "field": exc.field, "reason": exc.reason, "dlq_message_id": message_id},
        )
        return {"outcome": "rejected", "eventId": event_id, "reason": str(exc)}


def _mark_duplicate(response: Any, idempotent_data: DataRecord) -> Any:
    # Powertools calls this only when it replays a stored response, i.e. for a duplicate.
    return {**response, "outcome": "duplicate"}


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
    _service = FanoutService.build(settings or FanoutSettings.from_env(), dynamodb=dynamodb, firehose=firehose, sqs=sqs)
    return _service


def reset() -> None:
    """Forget the container's service; the next invocation builds it from the environment."""
    global _service  # noqa: PLW0603
    _service = None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """EventBridge entry point."""
    service = _service or configure()
    return service.handle(event, context)
