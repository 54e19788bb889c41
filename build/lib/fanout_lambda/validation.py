"""Validation of ``carousel.product.sold`` events: the JSON Schema file, compiled once at import."""

from __future__ import annotations

import copy
import datetime as dt
import math
import re
from functools import cache
from typing import Any

import fastjsonschema

import pipeline_config

from .errors import InvalidSaleEvent
from .sale import Sale
from .schemas import sale_event_schema
from .settings import LakeScope

_PLAIN_NUMBERS = frozenset({int, float})
_CALENDAR_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def load_schema(embedding_dimension: int) -> dict[str, Any]:
    """The event JSON Schema with the values whose one declaration is pipeline.json filled in."""
    schema = sale_event_schema()
    config = pipeline_config.load()
    envelope = schema["properties"]
    envelope["source"]["enum"] = list(config["event_pattern"]["source"])
    envelope["detail-type"]["enum"] = list(config["event_pattern"]["detail-type"])
    detail = envelope["detail"]["properties"]
    detail["tenantId"]["pattern"] = config["tenant_id_pattern"]
    detail["embedding"]["minItems"] = detail["embedding"]["maxItems"] = embedding_dimension
    # The transform applies the same bound: a value beyond float32's finite range would be infinity in Parquet.
    items = detail["embedding"]["items"]
    items["minimum"], items["maximum"] = -pipeline_config.EMBEDDING_VALUE_LIMIT, pipeline_config.EMBEDDING_VALUE_LIMIT
    return schema


def is_timestamp(value: str) -> bool:
    """An ISO 8601 timestamp exactly as the transform parses it (``datetime.fromisoformat``), so an event the
    fan-out accepts can never fail the transform on its time (JSON Schema's date-time admits leap seconds)."""
    try:
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is not None:  # the transform converts to UTC: 0001-01-01T00:00+01:00 has no UTC form
            moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return False
    return "T" in value


def is_calendar_date(value: str) -> bool:
    """``YYYY-MM-DD`` that names a real day (2025-02-30 does not)."""
    if not _CALENDAR_DATE.match(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


class SaleValidator:
    """Turns an EventBridge event into a :class:`Sale` or raises :class:`InvalidSaleEvent` naming the field.

    Beyond the schema, a sale must fall inside ``scope`` (what Athena's partition projection shows): a sale the
    lake would hide is refused, so it waits in the dead-letter queue with the reason instead of vanishing.
    """

    def __init__(self, embedding_dimension: int, scope: LakeScope | None = None) -> None:
        first, last = pipeline_config.sold_date_years()
        self.scope = scope or LakeScope(first_year=first, last_year=last)
        self.schema = load_schema(embedding_dimension)
        formats = {"calendar-date": is_calendar_date, "timestamp": is_timestamp}
        self._validate = fastjsonschema.compile(self.schema, formats=formats)
        # The same schema without the per-item embedding rules, used once the items are known to be plain
        # in-range numbers: checking 1024 items one by one in Python was most of a batch's validation time.
        embedding = self.schema["properties"]["detail"]["properties"]["embedding"]
        self._item_bounds = (embedding["items"]["minimum"], embedding["items"]["maximum"])
        lean = copy.deepcopy(self.schema)
        del lean["properties"]["detail"]["properties"]["embedding"]["items"]
        self._validate_lean = fastjsonschema.compile(lean, formats=formats)

    def validate(self, event: Any) -> Sale:
        """Validate ``event`` and return the sale it carries."""
        check = self._validate_lean if self._plain_embedding(event) else self._validate
        try:
            check(event)
        except fastjsonschema.JsonSchemaValueException as exc:
            raise self._explain(event, exc) from exc
        _require_finite(event["detail"])
        _require_unicode(event)
        self._require_visible(event["detail"])
        return Sale(event_id=event["id"], event_time=event["time"], detail=event["detail"])

    def _plain_embedding(self, event: Any) -> bool:
        """Whether the embedding's items pass the schema's item rules, checked at C speed (whole-list builtins)."""
        detail = event.get("detail") if isinstance(event, dict) else None
        values = detail.get("embedding") if isinstance(detail, dict) else None
        if type(values) is not list or not values:
            return False
        if not set(map(type, values)) <= _PLAIN_NUMBERS:  # bool is an int subclass but not a JSON number
            return False
        low, high = self._item_bounds
        return bool(min(values) >= low and max(values) <= high)  # NaN is left to _require_finite, as before

    def _require_visible(self, detail: dict[str, Any]) -> None:
        scope = self.scope
        year = int(detail["soldDate"][:4])
        if not scope.first_year <= year <= scope.last_year:
            raise InvalidSaleEvent(
                "detail.soldDate",
                f"year {year} is outside the sold-date years the lake shows ({scope.first_year}-{scope.last_year}); "
                "if the date is right, widen sold_date_years in pipeline.json (or Terraform's "
                "partition_projection_year_range), re-apply, then replay the dead-letter queue",
                detail["soldDate"],
            )
        tenant = detail["tenantId"]
        if scope.tenant_ids is not None and tenant not in scope.tenant_ids:
            raise InvalidSaleEvent(
                "detail.tenantId",
                f"tenant {tenant!r} is not in Terraform's tenant_ids, so Athena would never show its sales; "
                "add it to tenant_ids, terraform apply, then `sales-pipeline dlq replay --rejected`",
                tenant,
            )

    def _explain(self, event: Any, exc: fastjsonschema.JsonSchemaValueException) -> InvalidSaleEvent:
        name = exc.name or "data"
        field = name.removeprefix("data").lstrip(".") or "event"
        if exc.rule == "required" and isinstance(exc.value, dict):
            missing = [key for key in exc.rule_definition if key not in exc.value]
            return InvalidSaleEvent(missing[0] if field == "event" else f"{field}.{missing[0]}", "is required")
        return InvalidSaleEvent(field, exc.message.removeprefix(name).strip(), exc.value)


def _require_unicode(event: dict[str, Any]) -> None:
    # JSON's "\ud800" escape parses to a lone surrogate, which no UTF-8 encoder (orjson, Parquet) accepts: the sale
    # would pass here and then fail its Firehose record. Refused instead, with the field, like any invalid value.
    for path, fields in (("", event), ("detail.", event["detail"])):
        for name, value in fields.items():
            if isinstance(value, str) and not value.isascii():
                try:
                    value.encode()
                except UnicodeEncodeError:
                    raise InvalidSaleEvent(
                        f"{path}{name}", "must be valid Unicode text (it holds a lone surrogate)", value
                    ) from None


def _require_finite(detail: dict[str, Any]) -> None:
    # JSON Schema's minimum/maximum are silently true for NaN; EventBridge cannot carry NaN, a direct invoke can.
    for field in ("listedPrice", "salePrice"):
        if not math.isfinite(detail[field]):
            raise InvalidSaleEvent(f"detail.{field}", "must be a finite number", detail[field])
    if not math.isfinite(sum(detail["embedding"])):  # items are bounded to float32, so the sum cannot overflow
        raise InvalidSaleEvent("detail.embedding", "items must be finite numbers")


def validator(embedding_dimension: int, scope: LakeScope | None = None) -> SaleValidator:
    """One compiled validator per dimension and scope per container (compiling costs ~10 ms; validating ~µs).

    ``scope`` None reads it from the environment (``TENANT_IDS``, ``SOLD_DATE_YEARS``; see settings.py).
    """
    return _validator(embedding_dimension, scope or LakeScope.from_env())


@cache
def _validator(embedding_dimension: int, scope: LakeScope) -> SaleValidator:
    return SaleValidator(embedding_dimension, scope)
