"""The end-of-run audit: every event a run was given is accounted for.

Each valid sale must be in the lake exactly once after deduplication (``athena_queries/sales_history_dedup.sql``
on DuckDB over the mirrored Parquet, the view the dashboards read), or parked with its reason in the dead-letter
queue or the Firehose error prefix. Each invalid event must be in the dead-letter queue with its reason. Nothing
may be in the deduplicated lake twice, and nothing may be missing.

Memory stays flat-ish in the number of events: the audit keeps 10 bytes per distinct sale (its ``sale_id``, the
lake's dedup key) plus a byte of flags, and 12 bytes per distinct invalid event (a digest of its JSON); events are
never kept. The lake is read through DuckDB in chunks, the error prefix and the DLQ line by line.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fanout_lambda import dead_letter_body
from fanout_lambda.errors import InvalidSaleEvent
from fanout_lambda.sale import sale_id
from fanout_lambda.validation import SaleValidator
from local_pipeline.dashboards import connect
from local_pipeline.eventbridge import matches
from pipeline_config import sale_record

__all__ = ["Audit", "AuditReport"]

_EXPECTED, _IN_LAKE, _IN_ERRORS, _IN_DLQ = 1, 2, 4, 8
#: Generator kinds that carry a valid sale (a first delivery, a retried delivery, a re-published copy).
_SALE_KINDS = frozenset({"valid", "retry", "republish"})
#: Reasons and examples kept per parking place: a handful each, enough for a person to start looking.
_EXAMPLES = 5
_FETCH = 10_000


@dataclass
class AuditReport:
    """What the audit found. ``lost`` and ``duplicated_after_dedup`` must be 0."""

    sales: int = 0
    invalid_events: int = 0
    not_matched: int = 0
    in_lake: int = 0
    lost: int = 0
    duplicated_after_dedup: int = 0
    in_dead_letters: int = 0
    in_error_prefix: int = 0
    rejected_in_dead_letters: int = 0
    unexpected_in_lake: int = 0
    unattributed_error_records: int = 0
    parked_reasons: Counter[str] = field(default_factory=Counter)
    lost_examples: list[str] = field(default_factory=list)
    parked_examples: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing lost, nothing twice after dedup, nothing in the lake that was not sent."""
        return not (self.lost or self.duplicated_after_dedup or self.unexpected_in_lake)

    def summary_fields(self) -> dict[str, Any]:
        """The ``audit_*`` keys of ``summary.json``."""
        return {
            "audit_sales": self.sales,
            "audit_invalid_events": self.invalid_events,
            "audit_in_lake": self.in_lake,
            "audit_lost": self.lost,
            "audit_duplicated_after_dedup": self.duplicated_after_dedup,
            "audit_in_dead_letters": self.in_dead_letters,
            "audit_in_error_prefix": self.in_error_prefix,
            "audit_rejected_in_dead_letters": self.rejected_in_dead_letters,
            "audit_unexpected_in_lake": self.unexpected_in_lake,
            "audit_parked_reasons": dict(sorted(self.parked_reasons.items())),
            "audit_lost_examples": list(self.lost_examples),
        }

    def lines(self) -> list[str]:
        """The audit's part of the printed summary."""
        verdict = "OK" if self.ok else "FAILED"
        out = [
            f"Audit: {verdict}",
            f"  valid sales             {self.sales:>8}   (distinct sale_id; {self.not_matched} events not matched)",
            f"  in the lake once        {self.in_lake:>8}   (after the dedup view)",
            f"  in the error prefix     {self.in_error_prefix:>8}",
            f"  parked in the DLQ       {self.in_dead_letters:>8}",
            f"  invalid, in the DLQ     {self.rejected_in_dead_letters:>8}   (of {self.invalid_events} invalid events)",
            f"  lost                    {self.lost:>8}",
            f"  twice after dedup       {self.duplicated_after_dedup:>8}",
        ]
        if self.unexpected_in_lake:
            out.append(f"  in the lake, never sent {self.unexpected_in_lake:>8}")
        for reason, count in sorted(self.parked_reasons.items()):
            examples = ", ".join(self.parked_examples.get(reason, []))
            out.append(f"  parked: {reason}: {count} (e.g. {examples})")
        if self.lost_examples:
            out.append(f"  lost, e.g.: {', '.join(self.lost_examples)}")
        return out


def fingerprint(event: Any) -> bytes:
    """A 12-byte digest of an event's JSON (key order ignored): how an invalid event is recognised in the DLQ.

    orjson for speed; the stdlib for what orjson refuses (integers past 64 bits, lone surrogates). The DLQ copy
    of an event went through JSON, and JSON again gives the same text, so both sides take the same path.
    """
    try:
        text = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        text = json.dumps(event, sort_keys=True, default=repr, ensure_ascii=True).encode()
    return hashlib.blake2b(text, digest_size=12).digest()


class Audit:
    """Feed :meth:`expect` every event the run is given (as it streams past), then call :meth:`finish`."""

    def __init__(self, validator: SaleValidator, event_pattern: Mapping[str, Any]) -> None:
        self._validator = validator
        self._pattern = event_pattern
        self._sales: dict[bytes, int] = {}
        self._invalid: Counter[bytes] = Counter()
        self._not_matched = 0

    def expect(self, event: Any, kind: str | None = None) -> None:
        """Remember what ``event`` must become: a sale in the lake, or a rejection in the DLQ.

        ``kind`` is what the generator meant the event to be (``valid``, ``retry``, ``republish``, ``invalid``,
        ``unmatched``): an oracle independent of the fan-out, and cheap (no schema validation of 1,024 floats per
        event). Without it (events from a file) the fan-out's validator decides.
        """
        if kind == "unmatched" or not isinstance(event, dict) or not matches(self._pattern, event):
            self._not_matched += 1
            return
        if kind in _SALE_KINDS:
            detail = event["detail"]
            key: bytes | None = bytes.fromhex(sale_id(detail["tenantId"], detail["productId"], detail["soldDate"]))
        elif kind == "invalid":
            key = None
        else:
            key = self._sale_key(event)
        if key is None:
            self._invalid[fingerprint(event)] += 1
        else:
            self._sales[key] = _EXPECTED

    def observe(self, events: Iterable[Any]) -> Iterator[Any]:
        """Pass ``events`` (the runner's generated events: ``.event`` and ``.kind``) through, expecting each."""
        for generated in events:
            self.expect(generated.event, None if generated.kind == "file" else generated.kind)
            yield generated

    def _sale_key(self, event: Any) -> bytes | None:
        try:
            return bytes.fromhex(self._validator.validate(event).sale_id)
        except InvalidSaleEvent:
            return None

    def finish(
        self,
        *,
        lake_dir: Path,
        table_name: str,
        table_prefix: str,
        partition_keys: Sequence[Mapping[str, Any]],
        error_prefix_root: str,
        dead_letters: Iterable[Mapping[str, Any]],
        claim_status: Callable[[Any], str | None] | None = None,
        lake_table: Any = None,
    ) -> AuditReport:
        """Account for every expected event in the mirrored lake, its error prefix and the dead letters.

        ``claim_status(event)`` (optional) tells what the idempotency table holds for a sale parked in the DLQ
        (e.g. ``INPROGRESS, held``): why its last delivery failed, which the DLQ message itself does not say.
        ``lake_table`` (optional): the lake as an Arrow table (an Iceberg table's scan) instead of Parquet files.
        """
        report = AuditReport(sales=len(self._sales), invalid_events=sum(self._invalid.values()))
        report.not_matched = self._not_matched
        self._read_lake(lake_dir, table_name, table_prefix, partition_keys, report, lake_table=lake_table)
        reasons: dict[bytes, str] = {}
        for failed_key, reason in _error_records(lake_dir / error_prefix_root, report):
            self._park(failed_key, _IN_ERRORS, reason, reasons)
        found_invalid: Counter[bytes] = Counter()
        for body in dead_letters:
            event, reason = _dead_letter_event(body)
            parked = self._sale_key(event) if isinstance(event, dict) else None
            if parked is None:
                found_invalid[fingerprint(event)] += 1
                continue
            if claim_status is not None and parked in self._sales and parked not in reasons:
                reason = f"{reason}; idempotency claim {claim_status(event) or 'absent (released)'}"
            self._park(parked, _IN_DLQ, reason, reasons)
        self._settle(report, reasons)
        for digest, expected in self._invalid.items():
            found = min(found_invalid.get(digest, 0), expected)
            report.rejected_in_dead_letters += found
            if found < expected:
                report.lost += expected - found
                _example(report.lost_examples, f"invalid event {digest.hex()[:12]}")
        return report

    def _park(self, key: bytes, flag: int, reason: str, reasons: dict[bytes, str]) -> None:
        if key in self._sales:
            self._sales[key] |= flag
            reasons.setdefault(key, reason)

    def _settle(self, report: AuditReport, reasons: dict[bytes, str]) -> None:
        for key, flags in self._sales.items():
            if flags & _IN_LAKE:
                report.in_lake += 1
                continue
            if flags & (_IN_ERRORS | _IN_DLQ):
                if flags & _IN_ERRORS:
                    report.in_error_prefix += 1
                else:
                    report.in_dead_letters += 1
                reason = reasons.get(key, "unknown")
                report.parked_reasons[reason] += 1
                _example(report.parked_examples.setdefault(reason, []), key.hex())
                continue
            report.lost += 1
            _example(report.lost_examples, f"sale {key.hex()}")

    def _read_lake(
        self,
        lake_dir: Path,
        table_name: str,
        table_prefix: str,
        partition_keys: Sequence[Mapping[str, Any]],
        report: AuditReport,
        *,
        lake_table: Any = None,
    ) -> None:
        if lake_table is None and not any(path.is_file() for path in (lake_dir / table_prefix).rglob("*.parquet")):
            return
        connection = connect(
            lake_dir, table_name=table_name, table_prefix=table_prefix, partition_keys=partition_keys, table=lake_table
        )
        try:
            cursor = connection.execute("SELECT sale_id, count(*) FROM sales_history_dedup GROUP BY sale_id")
            while rows := cursor.fetchmany(_FETCH):
                for sale_id, copies in rows:
                    key = _key(sale_id)
                    if key is None or key not in self._sales:
                        report.unexpected_in_lake += 1
                        continue
                    self._sales[key] |= _IN_LAKE
                    report.duplicated_after_dedup += copies - 1
            # An event id may identify one row only: two sales under one event id would mean a mixed-up record.
            (twice,) = connection.execute(
                "SELECT count(*) - count(DISTINCT event_id) FROM sales_history_dedup"
            ).fetchone() or (0,)
            report.duplicated_after_dedup += int(twice)
        finally:
            connection.close()


def _key(sale_id: Any) -> bytes | None:
    try:
        return bytes.fromhex(sale_id) if isinstance(sale_id, str) else None
    except ValueError:
        return None


def _example(examples: list[str], text: str) -> None:
    if len(examples) < _EXAMPLES:
        examples.append(text)


def _error_records(root: Path, report: AuditReport) -> Iterator[tuple[bytes, str]]:
    """``(sale key, reason)`` for every record under the error prefix (``errors/<error-output-type>/...``)."""
    if not root.is_dir():
        return
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        error_type = path.relative_to(root).parts[0]
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if not line.strip():
                    continue
                envelope = json.loads(line)
                code = envelope.get("errorCode") or envelope.get("ErrorCode") or "unknown"
                key = _sale_in_raw(envelope.get("rawData"))
                if key is None:
                    report.unattributed_error_records += 1
                    continue
                yield key, f"error prefix {error_type}: {code}"


def _sale_in_raw(raw: Any) -> bytes | None:
    """The sale key in an error record's ``rawData``: the fan-out's record (compact, or JSON with ``saleId``) or a
    lake row (``sale_id``)."""
    if not isinstance(raw, str):
        return None
    try:
        data = base64.b64decode(raw, validate=True)
        record = sale_record.decode(data) if sale_record.is_compact(data) else json.loads(data)
    except (binascii.Error, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    return _key(record.get("saleId", record.get("sale_id")))


def _dead_letter_event(body: Mapping[str, Any]) -> tuple[Any, str]:
    """The event a DLQ message holds, and why it is there (the kinds of :mod:`fanout_lambda.dead_letter_body`)."""
    decoded = dead_letter_body.decode_parsed(body)
    error = decoded.error
    if decoded.kind == "failed-after-retries":  # Lambda's on-failure destination record, direct mode
        condition = error.get("condition") or "RetriesExhausted"
        return decoded.event, f"DLQ: fan-out failed every attempt ({condition}: {error.get('errorType')})"
    if decoded.kind == "rejected":
        return decoded.event, f"DLQ: rejected ({error.get('errorType')}: {error.get('field')} {error.get('reason')})"
    # EventBridge could not deliver, or the buffer queue's redrive after max_receive_count: the event itself
    return dict(body), "DLQ: event moved by a redrive (receive limit reached) or undeliverable by EventBridge"
