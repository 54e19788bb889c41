"""Firehose's error prefix: objects of error envelopes, each holding one record's original data.

Firehose writes records it could not transform, convert or partition under the error output prefix
(``errors/!{firehose:error-output-type}/year=.../``), one JSON envelope per record, concatenated (newline
separated in practice):

- ``processing-failed``: ``{attemptsMade, arrivalTimestamp, errorCode, errorMessage, attemptEndingTimestamp,
  rawData, lambdaArn}``; ``rawData`` (base64) is the record as the fan-out sent it: the compact form of
  :mod:`pipeline_config.sale_record` (or JSON, from before it and from other producers). Both are read with the
  transform's own rule (:func:`read_record`), so a compact record is shown, grouped and checked as its JSON form.
- ``format-conversion-failed``: the same with ``ErrorCode`` / ``ErrorMessage`` capitalised (AWS's "Handling
  errors for data format conversion"), plus ``sequenceNumber`` and ``dataCatalogTable``; ``rawData`` is the
  record as the transform returned it.
- ``activePartitionExceeded`` (and any other type Firehose adds): grouped by whatever folder it is in.

Pure parsing and grouping; the S3 and Firehose calls live in :mod:`operations.errors_prefix`.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pipeline_config import sale_record

__all__ = [
    "ErrorGroup",
    "ErrorRecord",
    "Prepared",
    "TransformCheck",
    "UnreadableObject",
    "error_type_of",
    "group",
    "parse_object",
    "read_record",
    "sale_id_of",
    "split_s3_url",
]

_GZIP_MAGIC = b"\x1f\x8b"


class UnreadableObject(ValueError):
    """An object under the error prefix that is not a sequence of JSON envelopes."""


@dataclass
class ErrorRecord:
    """One failed record: where it is, why it failed and its original data (``None`` if rawData is bad)."""

    key: str
    index: int
    error_type: str
    code: str
    message: str
    arrival_ms: int | None
    data: bytes | None
    envelope: dict[str, Any] = field(repr=False, default_factory=dict)
    data_problem: str | None = None

    def decoded(self) -> tuple[Any, str | None]:
        """The record's data as the transform reads it (a compact record decoded to the JSON form's object),
        or ``(None, why not)``: no data, a malformed compact record (its reason), not JSON."""
        if self.data is None:
            return None, self.data_problem or "no data"
        try:
            return read_record(self.data), None
        except sale_record.MalformedRecord as exc:
            return None, f"malformed {exc}"
        except orjson.JSONDecodeError as exc:
            return None, f"not JSON: {exc}"

    def event_id(self) -> str | None:
        """The event id the record carries (``eventId`` from the fan-out, ``event_id`` after the transform)."""
        return _text_field(self.decoded()[0], "eventId", "event_id")

    def sale_id(self) -> str | None:
        """The sale id the record carries (``saleId`` from the fan-out, ``sale_id`` after the transform)."""
        return sale_id_of(self.decoded()[0])

    def display(self) -> str:
        """The data as ``errors list --records`` prints it: a compact record as its JSON form, JSON as it is,
        or what is wrong with it."""
        if self.data is not None and sale_record.is_compact(self.data):
            value, problem = self.decoded()
            return problem if problem is not None else orjson.dumps(value).decode()
        if self.data is None:
            return self.data_problem or "no data"
        return self.data.decode("utf-8", "replace")


def read_record(data: bytes) -> Any:
    """A record's data as the transform reads it: a compact record (first byte NUL) decoded with
    :func:`pipeline_config.sale_record.decode`, anything else parsed as JSON with orjson (which, like the
    transform, refuses NaN). Raises :class:`~pipeline_config.sale_record.MalformedRecord` or
    ``orjson.JSONDecodeError``."""
    if sale_record.is_compact(data):
        return sale_record.decode(data)
    return orjson.loads(data)


def sale_id_of(value: Any) -> str | None:
    """The sale id of a decoded record (``saleId``) or lake row (``sale_id``), if it has one."""
    return _text_field(value, "saleId", "sale_id")


def _text_field(value: Any, *names: str) -> str | None:
    if not isinstance(value, Mapping):
        return None
    for name in names:
        found = value.get(name)
        if isinstance(found, str):
            return found
    return None


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/errors/`` -> ``("bucket", "errors/")``."""
    if not url.startswith("s3://") or "/" not in url[5:]:
        raise ValueError(f"not an s3://bucket/prefix URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, prefix


def error_type_of(key: str, root: str) -> str:
    """The error output type of an object: the first folder after the error prefix root."""
    rest = key[len(root) :] if key.startswith(root) else key
    head, sep, _ = rest.partition("/")
    return head if sep else "(no type folder)"


def parse_object(key: str, body: bytes, root: str) -> list[ErrorRecord]:
    """Every envelope of one error object (gzip-compressed objects included), in order."""
    if body.startswith(_GZIP_MAGIC):
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as exc:
            raise UnreadableObject(f"gzip data is corrupt ({exc})") from exc
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableObject(f"not UTF-8 text ({exc})") from exc
    error_type = error_type_of(key, root)
    decoder = json.JSONDecoder()
    records: list[ErrorRecord] = []
    position = _skip_space(text, 0)
    while position < len(text):
        try:
            envelope, end = decoder.raw_decode(text, position)
        except ValueError as exc:
            raise UnreadableObject(f"envelope {len(records) + 1} is not JSON ({exc})") from exc
        if not isinstance(envelope, dict):
            raise UnreadableObject(f"envelope {len(records) + 1} is not a JSON object")
        records.append(_record(key, len(records), error_type, envelope))
        position = _skip_space(text, end)
    return records


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _record(key: str, index: int, error_type: str, envelope: dict[str, Any]) -> ErrorRecord:
    code = envelope.get("errorCode", envelope.get("ErrorCode"))
    message = envelope.get("errorMessage", envelope.get("ErrorMessage"))
    arrival = envelope.get("arrivalTimestamp")
    record = ErrorRecord(
        key=key,
        index=index,
        error_type=error_type,
        code=str(code) if code is not None else "(no error code)",
        message=str(message) if message is not None else "",
        arrival_ms=arrival if isinstance(arrival, int) else None,
        data=None,
        envelope=envelope,
    )
    raw = envelope.get("rawData")
    if not isinstance(raw, str):
        record.data_problem = "the envelope has no rawData"
        return record
    try:
        record.data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        record.data_problem = f"rawData is not base64 ({exc})"
    return record


@dataclass
class ErrorGroup:
    """Records of one error type, code and message."""

    error_type: str
    code: str
    message: str
    records: list[ErrorRecord] = field(default_factory=list)

    @property
    def objects(self) -> list[str]:
        """The keys of the objects holding this group's records, in first-seen order."""
        return list(dict.fromkeys(record.key for record in self.records))

    def arrival_range(self) -> tuple[int, int] | None:
        """Oldest and newest ``arrivalTimestamp`` (epoch ms) of the group."""
        times = [record.arrival_ms for record in self.records if record.arrival_ms is not None]
        return (min(times), max(times)) if times else None

    def as_json(self) -> dict[str, Any]:
        """The group as ``errors list --json`` prints it."""
        span = self.arrival_range()
        return {
            "errorType": self.error_type,
            "errorCode": self.code,
            "errorMessage": self.message,
            "records": len(self.records),
            "objects": self.objects,
            "firstArrival": None if span is None else span[0],
            "lastArrival": None if span is None else span[1],
            "eventIds": [event_id for event_id in (record.event_id() for record in self.records) if event_id],
            "saleIds": [sale_id for sale_id in (record.sale_id() for record in self.records) if sale_id],
            "malformed": self.malformed(),
        }

    def malformed(self) -> dict[str, str]:
        """``key#index`` -> why, for the group's records whose data cannot be read (a malformed compact record
        says what is wrong with it)."""
        found = {}
        for record in self.records:
            problem = record.decoded()[1]
            if problem is not None:
                found[f"{record.key}#{record.index}"] = problem
        return found


def group(records: Iterable[ErrorRecord]) -> list[ErrorGroup]:
    """Group by error type, code and message; types in name order, the largest groups first within a type."""
    groups: dict[tuple[str, str, str], ErrorGroup] = {}
    for record in records:
        key = (record.error_type, record.code, record.message)
        groups.setdefault(key, ErrorGroup(*key)).records.append(record)
    return sorted(groups.values(), key=lambda g: (g.error_type, -len(g.records), g.code))


@dataclass(frozen=True)
class Prepared:
    """What to send for one record (``data``), or why it would fail again (``problem``)."""

    data: bytes | None
    problem: str | None = None
    tenant_restored: bool = False
    #: The sale id the record carries: which delivery stream it goes back to (:func:`operations.streams.stream_index`).
    sale_id: str | None = None


class TransformCheck:
    """Would the transform accept this record now? The transform Lambda's own normaliser decides.

    Built from the same declarations the Lambda reads (the Glue table, ``pipeline.json``'s tenant id pattern
    and embedding dimension, ``EMBEDDING_DIMENSION`` honoured), so a record that passes here passes there.

    Records that failed after the transform (format conversion, the active-partition limit) hold its output,
    a lake row, which has no tenant: the tenant is a partition key, carried in Firehose's metadata, not in the
    row. The row's ``sale_id`` is a hash of tenant, product and sale date (:func:`fanout_lambda.sale.sale_id`),
    so the one tenant among ``tenants`` that reproduces it is the row's tenant, exactly; the row is sent back
    with ``tenant_id`` added, which the transform reads, and normalises to the very same row.
    """

    def __init__(
        self,
        normalise: Callable[[Any], object] | None = None,
        max_record_bytes: int | None = None,
        tenants: Iterable[str] = (),
    ) -> None:
        if normalise is None:
            import glue_schemas  # noqa: PLC0415 - imported only by the commands that check records
            import pipeline_config  # noqa: PLC0415
            from transform_lambda.records import SaleNormaliser  # noqa: PLC0415

            normaliser = SaleNormaliser(
                glue_schemas.sales_history(),
                embedding_dimension=pipeline_config.embedding_dimension(),
                tenant_id_pattern=pipeline_config.load()["tenant_id_pattern"],
            )
            normalise = normaliser.normalise
        if max_record_bytes is None:
            from fanout_lambda.adapters import MAX_RECORD_BYTES  # noqa: PLC0415

            max_record_bytes = MAX_RECORD_BYTES
        self._normalise = normalise
        self.max_record_bytes = max_record_bytes
        self.tenants = tuple(dict.fromkeys(tenants))

    def problem(self, record: ErrorRecord) -> str | None:
        """Why ``record`` would fail again (``None``: it would pass the transform)."""
        return self.prepare(record).problem

    def prepare(self, record: ErrorRecord) -> Prepared:
        """The data to put back for ``record`` (its own, or a lake row with its tenant restored), or the problem."""
        if record.data is None:
            return Prepared(None, record.data_problem or "no data")
        problem = self._size_problem(record.data)
        value: Any = None
        if problem is None:
            value, problem = record.decoded()  # the transform's own reading: compact or JSON
        if problem is not None:
            return Prepared(None, problem)
        rejected = self._rejection(value)
        if rejected is None:
            # put back as it was: a compact record stays compact (Firehose's byte quota and bill count its bytes)
            return Prepared(record.data, sale_id=sale_id_of(value))
        return self._restore_tenant(value, rejected)

    def _rejection(self, value: Any) -> str | None:
        try:
            self._normalise(value)
        except ValueError as exc:  # RecordRejected names the field
            return f"the transform rejects it: {exc}"
        return None

    def _restore_tenant(self, value: Any, rejected: str) -> Prepared:
        if not _is_lake_row(value):
            return Prepared(None, rejected)
        restored = self._with_tenant(value)
        if restored is None:
            return Prepared(
                None,
                f"{rejected} (a lake row: none of the {len(self.tenants)} known tenant(s) reproduces its sale_id; "
                "name its tenant with --tenant)",
            )
        data = orjson.dumps(restored) + b"\n"
        problem = self._size_problem(data) or self._rejection(restored)
        return (
            Prepared(None, problem) if problem else Prepared(data, tenant_restored=True, sale_id=sale_id_of(restored))
        )

    def _size_problem(self, data: bytes) -> str | None:
        if len(data) > self.max_record_bytes:
            return f"record of {len(data)} bytes exceeds Firehose's {self.max_record_bytes}-byte limit"
        return None

    def _with_tenant(self, row: dict[str, Any]) -> dict[str, Any] | None:
        from fanout_lambda.sale import sale_id  # noqa: PLC0415

        for tenant in self.tenants:
            if sale_id(tenant, row["product_id"], row["sold_date"]) == row["sale_id"]:
                return {**row, "tenant_id": tenant}
        return None


def _is_lake_row(value: Any) -> bool:
    """A transform output row: snake_case ids, no tenant."""
    return (
        isinstance(value, dict)
        and all(isinstance(value.get(key), str) for key in ("sale_id", "product_id", "sold_date"))
        and "tenant_id" not in value
        and "tenantId" not in value
    )
