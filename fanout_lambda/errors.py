"""Errors of the fan-out Lambda, named after what went wrong."""

from __future__ import annotations

from typing import Any

from pipeline_config import ConfigurationError

__all__ = [
    "ConfigurationError",
    "DeadLetterNotSent",
    "DeadLetterTooLarge",
    "DeliveryIncomplete",
    "InvalidSaleEvent",
    "WriteIncomplete",
]

_ABSENT: Any = object()


class InvalidSaleEvent(ValueError):
    """The event is not a valid ``carousel.product.sold`` sale; it must never be retried.

    Attributes name the offending field (a JSON path such as ``detail.tenantId``), the rule it broke and the
    value it had, so the dead-letter message tells a person exactly what to fix.
    """

    def __init__(self, field: str, reason: str, value: Any = _ABSENT) -> None:
        self.field = field
        self.reason = reason
        self.value = None if value is _ABSENT else value
        shown = "" if value is _ABSENT else f" (got {_preview(value)})"
        super().__init__(f"{field}: {reason}{shown}")

    def as_dict(self) -> dict[str, Any]:
        """The error as a JSON-ready mapping for the dead-letter message."""
        return {
            "field": self.field,
            "reason": self.reason,
            "value": None if self.value is None else _preview(self.value),
        }


class DeliveryIncomplete(RuntimeError):
    """Firehose still rejected some records after the resends the invocation's time allowed; Lambda must retry
    the event. ``throughput``: every refusal was for throughput (the sale is throttled, not broken)."""

    def __init__(
        self, stream: str, failed: int, error_codes: list[str], resent: int = 0, *, throughput: bool = False
    ) -> None:
        self.stream = stream
        self.failed = failed
        self.error_codes = error_codes
        self.resent = resent
        self.throughput = throughput
        super().__init__(f"{failed} record(s) not accepted by Firehose stream {stream!r}: {sorted(set(error_codes))}")


class WriteIncomplete(RuntimeError):
    """DynamoDB still returned these writes as ``UnprocessedItems`` after the resends the invocation's time
    allowed (``UnprocessedItems`` is DynamoDB's throughput refusal: the sale is throttled, not broken)."""

    throughput = True

    def __init__(self, table: str, failed: int, resent: int = 0) -> None:
        self.table = table
        self.failed = failed
        self.resent = resent
        super().__init__(f"{failed} write(s) to table {table!r} still unprocessed after {resent} resend(s)")


class DeadLetterNotSent(RuntimeError):
    """SQS refused a dead letter (a ``Failed`` entry of SendMessageBatch); the message must be retried."""

    def __init__(self, queue_url: str, code: str, message: str = "") -> None:
        self.queue_url = queue_url
        self.code = code
        super().__init__(f"dead letter not accepted by {queue_url}: {code} {message}".rstrip())


class DeadLetterTooLarge(RuntimeError):
    """Even compressed, the invalid event does not fit in one SQS message; Lambda's on-failure path keeps it."""


def _preview(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
