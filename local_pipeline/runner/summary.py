"""What a run did, in counters: :class:`RunSummary`, the summary printed at the end and ``summary.json``."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_pipeline.audit import AuditReport
from local_pipeline.dashboards import QueryResult
from local_pipeline.firehose import StreamStats
from local_pipeline.lambda_service import ASYNC_RETRY_DELAYS_MS
from local_pipeline.runner.files import DEAD_LETTERS_FILE, OUTPUTS_FILE, SUMMARY_FILE

__all__ = ["ASYNC_ATTEMPTS", "RunSummary", "format_summary", "write_summary"]

#: Lambda's asynchronous invocation attempts (EventBridge → Lambda): the first try plus two retries.
ASYNC_ATTEMPTS = 1 + len(ASYNC_RETRY_DELAYS_MS)


@dataclass
class RunSummary:
    """What happened: counters only, so a run of any size summarises in constant memory."""

    trigger: str = "queue"
    region: str = "us-east-1"
    source: str = "generated"
    events_total: int = 0
    not_matched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letter_kinds: Counter[str] = field(default_factory=Counter)
    fanout_invocations: int = 0
    fanout_errors: int = 0
    events_retried: int = 0
    max_batch: int = 0
    max_batch_bytes: int = 0
    max_queue_age_seconds: float = 0.0
    firehose_requests_per_second_quota: int = 0
    firehose_streams: int = 1
    firehose_bytes_per_second_quota: int = 0
    #: The simulated moment of the run's first event (ingest and delivery are measured from it).
    first_event_ms: int = 0
    stream: StreamStats = field(default_factory=StreamStats)
    metric_datapoints: int = 0
    metric_names: set[str] = field(default_factory=set)
    lake_keys: int = 0
    error_keys: int = 0
    lake: Path | None = None
    mirrored: int = 0
    seconds: float = 0.0
    simulated_seconds: float = 0.0
    dashboards: list[QueryResult] = field(default_factory=list)
    faults: str = "none"
    faults_injected: Counter[str] = field(default_factory=Counter)
    fanout_retries: Counter[str] = field(default_factory=Counter)
    audit: AuditReport | None = None
    #: Peak resident sets (bytes): this process's, and the embedded DynamoDB child's (None against an endpoint).
    peak_rss_bytes: int = 0
    dynamodb_peak_rss_bytes: int | None = None
    #: --table-format, and for an Iceberg lake the table's current metadata file (its path in --out).
    lake_table_format: str = "parquet"
    iceberg_metadata_location: str | None = None
    #: Each DynamoDB table's and index's write figures (CapacityLimitedDynamoDB.report()).
    dynamodb: list[dict[str, Any]] = field(default_factory=list)

    @property
    def peak_memory_bytes(self) -> int:
        """Both processes' peaks added: an upper bound on what the run held at once."""
        return self.peak_rss_bytes + (self.dynamodb_peak_rss_bytes or 0)

    @property
    def sent(self) -> int:
        """Events the rule delivered to the trigger."""
        return self.events_total - self.not_matched

    @property
    def dead_letters(self) -> int:
        """Messages left in the dead-letter queue."""
        return sum(self.dead_letter_kinds.values())

    @property
    def events_per_second(self) -> float:
        """End-to-end throughput: events through the whole pipeline per wall-clock second."""
        return self.events_total / self.seconds if self.seconds else 0.0

    def _since_first(self, moment_ms: int) -> float:
        """Simulated seconds from the run's first event to ``moment_ms`` (0 when it never happened)."""
        return round(max(0, moment_ms - self.first_event_ms) / 1000, 3) if moment_ms else 0.0

    @property
    def ingest_floor_seconds(self) -> float:
        """The least time Firehose's byte quota allows to accept what it accepted: bytes / (quota x streams)."""
        capacity = self.firehose_bytes_per_second_quota * self.firehose_streams
        return self.stream.incoming_bytes / capacity if capacity else 0.0

    @property
    def dynamodb_write_units_per_new_sale(self) -> float:
        """Write units of the writes a new sale makes (its item, index entry, claim and completion) per new sale:
        everything consumed but the failed conditional claims of duplicates, over the sales processed."""
        spent = sum(row["write_units"] - row["failed_condition_write_units"] for row in self.dynamodb)
        return round(spent / self.outcomes["processed"], 2) if self.outcomes["processed"] else 0.0

    @property
    def dynamodb_floor_seconds(self) -> float:
        """The least time the tables' starting capacity allows to take what they took: the busiest table's or
        index's write units over its warm throughput (a burst shorter than 30 minutes never scales past it)."""
        return round(
            max((row["write_units"] / row["warm_write_units_per_second"] for row in self.dynamodb), default=0.0), 3
        )

    def dynamodb_fields(self) -> dict[str, Any]:
        """summary.json's DynamoDB keys: totals over every table and index, then each one's figures."""
        rows = self.dynamodb
        return {
            "dynamodb_write_units": sum(row["write_units"] for row in rows),
            "dynamodb_throttled_requests": sum(row["throttled_requests"] for row in rows),
            # The busiest second of any one table or index: what its capacity must cover.
            "dynamodb_peak_write_units_per_second": max(
                (row["peak_write_units_per_second"] for row in rows), default=0
            ),
            "dynamodb_write_throttle_events": sum(row["throttle_events"] for row in rows),
            "dynamodb_write_units_per_new_sale": self.dynamodb_write_units_per_new_sale,
            "dynamodb_warm_write_units_per_second": rows[0]["warm_write_units_per_second"] if rows else 0,
            "dynamodb_floor_seconds": self.dynamodb_floor_seconds,
            "dynamodb_tables": {row["name"]: {k: v for k, v in row.items() if k != "name"} for row in rows},
        }

    def as_json(self) -> dict[str, Any]:
        """The keys of ``summary.json`` (issue 8's list, then extras)."""
        stats = self.stream
        return {
            "events_total": self.events_total,
            "not_matched": self.not_matched,
            "processed": self.outcomes["processed"],
            "duplicates": self.outcomes["duplicate"],
            "rejected": self.outcomes["rejected"],
            "failed": self.outcomes["failed"],
            "dead_letters": self.dead_letters,
            "trigger": self.trigger,
            "region": self.region,
            "fanout_invocations": self.fanout_invocations,
            "firehose_put_requests": stats.put_requests + stats.throttled_requests,
            "firehose_throttled_requests": stats.throttled_requests,
            "firehose_peak_requests_per_second": stats.peak_requests_per_second,
            "firehose_requests_per_second_quota": self.firehose_requests_per_second_quota,
            "lake_rows": stats.rows_delivered,
            "lake_objects": stats.objects_written,
            "partitions": len(stats.partitions),
            "wall_seconds": round(self.seconds, 3),
            "events_per_second": round(self.events_per_second, 1),
            "max_delivery_latency_seconds": stats.max_delivery_latency_ms / 1000,
            # Extras.
            "peak_rss_mb": _mb(self.peak_rss_bytes),
            "dynamodb_peak_rss_mb": None if self.dynamodb_peak_rss_bytes is None else _mb(self.dynamodb_peak_rss_bytes),
            "peak_memory_mb": _mb(self.peak_memory_bytes),
            "source": self.source,
            "events_retried": self.events_retried,
            "fanout_errors": self.fanout_errors,
            "firehose_throttled_records": stats.throttled_records,
            "firehose_records_in": stats.incoming_records,
            "dead_letters_by_kind": dict(sorted(self.dead_letter_kinds.items())),
            "max_batch_messages": self.max_batch,
            "max_batch_payload_bytes": self.max_batch_bytes,
            "max_queue_age_seconds": self.max_queue_age_seconds,
            "error_objects": stats.error_objects_written,
            "transform_invocations": stats.invocations,
            "simulated_seconds": round(self.simulated_seconds, 3),
            "metric_datapoints": self.metric_datapoints,
            # Faults (--faults) and what answered them; the audit of every event the run was given.
            "faults": self.faults,
            "faults_injected": dict(sorted(self.faults_injected.items())),
            "fanout_retries": dict(sorted(self.fanout_retries.items())),
            "transform_invocation_errors": stats.invocation_errors,
            "s3_put_retries": stats.s3_put_retries,
            "s3_discarded_records": stats.s3_discarded_records,
            # Bursts drain at the quota: the streams, their byte quota (each), what they accepted and when.
            "firehose_streams": self.firehose_streams,
            "firehose_bytes_per_second_quota": self.firehose_bytes_per_second_quota,
            "firehose_bytes_in": stats.incoming_bytes,
            "ingest_drain_seconds": self._since_first(stats.last_accepted_ms),
            "last_sale_in_lake_seconds": self._since_first(stats.last_delivered_ms),
            "lake_table_format": self.lake_table_format,
            "iceberg_metadata_location": self.iceberg_metadata_location,
            # DynamoDB under a burst: write units and throttles against the tables' capacity.
            **self.dynamodb_fields(),
            **(self.audit.summary_fields() if self.audit is not None else {}),
        }


def write_summary(path: Path, summary: RunSummary) -> None:
    """``summary.json``: :meth:`RunSummary.as_json`, indented."""
    path.write_text(json.dumps(summary.as_json(), indent=2) + "\n", encoding="utf-8")


def format_summary(summary: RunSummary, lake: Path, limit: int) -> str:
    """The end-of-run summary."""
    stats = summary.stream
    outcomes = summary.outcomes
    offered = "read" if summary.source == "read" else "generated"
    kinds = summary.dead_letter_kinds
    failed_how = (
        f"fan-out failed all {ASYNC_ATTEMPTS} asynchronous attempts"
        if summary.trigger == "direct"
        else "past the buffer queue's receive limit"
    )
    requests = stats.put_requests + stats.throttled_requests
    lines = [
        "",
        f"Summary (trigger: {summary.trigger}, region: {summary.region})",
        f"  events {offered:<16} {summary.events_total:>8}",
        f"  not matched by the rule {summary.not_matched:>8}   (not delivered, as in AWS)",
        f"  events sent to fan-out  {summary.sent:>8}   ({summary.fanout_invocations} fan-out invocations, "
        f"{summary.fanout_errors} failed)",
        f"  processed (new sales)   {outcomes['processed']:>8}",
        f"  duplicates skipped      {outcomes['duplicate']:>8}   (retried deliveries and re-published sales)",
        f"  events rejected         {outcomes['rejected']:>8}   (in the DLQ: {kinds['rejected_by_fanout']})",
        f"  events retried          {summary.events_retried:>8}",
        f"  failed (in the DLQ)     {outcomes['failed']:>8}   ({failed_how})",
        f"  firehose put requests   {requests:>8}   ({stats.throttled_requests} throttled; peak "
        f"{stats.peak_requests_per_second}/s against a quota of {summary.firehose_requests_per_second_quota}/s; "
        f"{stats.throttled_records} records throttled)",
        f"  firehose records in     {stats.incoming_records:>8}   "
        f"({stats.incoming_bytes / max(1, stats.incoming_records):,.0f} bytes each; {summary.firehose_streams} "
        f"stream(s) of {summary.firehose_bytes_per_second_quota / 2**20:g} MiB/s)",
        f"  ingest drained in       {summary.as_json()['ingest_drain_seconds']:>8.1f} s "
        f"(simulated, from the first event; floors: Firehose's byte quota {summary.ingest_floor_seconds:.1f} s, "
        f"DynamoDB's capacity {summary.dynamodb_floor_seconds:.1f} s)",
        *_dynamodb_lines(summary),
        f"  transform invocations   {stats.invocations:>8}   ({stats.invocation_errors} failed)",
        f"  processing failures     {stats.processing_failed:>8}",
        f"  conversion failures     {stats.conversion_failed:>8}",
        f"  partition limit hits    {stats.partition_exceeded:>8}",
        f"  rows delivered          {stats.rows_delivered:>8}",
        _objects_line(summary, limit),
        f"  error objects           {stats.error_objects_written:>8}",
        f"  max delivery latency    {stats.max_delivery_latency_ms / 1000:>8.1f} s (simulated: bus arrival to S3)",
        f"  metrics put             {summary.metric_datapoints:>8}   (per-minute statistic sets: AWS/Firehose, "
        f"AWS/DynamoDB, AWS/Lambda, AWS/SQS, the fan-out's EMF)",
        f"  dead letters            {summary.dead_letters:>8}   ({DEAD_LETTERS_FILE})",
        f"  lake mirrored to        {lake}  ({summary.mirrored} objects; {SUMMARY_FILE}, {OUTPUTS_FILE})",
        f"  wall time               {summary.seconds:>8.1f} s   ({summary.events_per_second:,.0f} events/s end to end)",
        f"  peak memory             {_mb(summary.peak_memory_bytes):>8.0f} MB  ({_memory_parts(summary)})",
    ]
    if summary.iceberg_metadata_location is not None:
        lines.append(f"  iceberg table           {summary.iceberg_metadata_location}  (its current metadata file)")
    if summary.faults != "none":
        injected = ", ".join(f"{name} {count}" for name, count in sorted(summary.faults_injected.items()))
        answered = ", ".join(f"{name} {count}" for name, count in sorted(summary.fanout_retries.items()))
        lines += [
            f"  faults                  {summary.faults}",
            f"  faults injected         {injected or 'none drawn'}",
            f"  answered by             {answered or 'nothing needed'}; transform invocation errors "
            f"{stats.invocation_errors}, S3 put retries {stats.s3_put_retries}",
        ]
    if summary.audit is not None:
        lines += ["", *summary.audit.lines()]
    return "\n".join(lines)


def _objects_line(summary: RunSummary, limit: int) -> str:
    """What the deliveries wrote: Parquet objects under dynamic partitions, or commits to the Iceberg table (which
    has no active-partition limit: Firehose's Iceberg destination does not partition dynamically)."""
    stats = summary.stream
    if summary.lake_table_format == "iceberg":
        return f"  iceberg commits         {stats.objects_written:>8}   in {len(stats.partitions)} partitions"
    return (
        f"  parquet objects         {stats.objects_written:>8}   in {len(stats.partitions)} partitions "
        f"(at most {stats.max_active_partitions} active at once; limit {limit})"
    )


def _dynamodb_lines(summary: RunSummary) -> list[str]:
    """DynamoDB's write units and throttles, in all and by table and index."""
    if not summary.dynamodb:
        return []
    fields = summary.dynamodb_fields()
    lines = [
        f"  dynamodb write units    {fields['dynamodb_write_units']:>8}   "
        f"({fields['dynamodb_write_units_per_new_sale']:g} per new sale; {fields['dynamodb_throttled_requests']} "
        f"requests throttled; each table and index warm at {fields['dynamodb_warm_write_units_per_second']:,}/s)",
    ]
    width = max(len(row["name"]) for row in summary.dynamodb)
    for row in summary.dynamodb:
        lines.append(
            f"    {row['name']:<{width}}  {row['write_units']:>9,} units  "
            f"peak {row['peak_write_units_per_second']:>6,}/s of {row['write_capacity_per_second']:,}/s  "
            f"{row['throttle_events']:,} throttle events"
        )
    return lines


def _mb(size: int) -> float:
    return round(size / 1_000_000, 1)


def _memory_parts(summary: RunSummary) -> str:
    if summary.dynamodb_peak_rss_bytes is None:
        return "resident set of this process"
    return (
        f"peak resident sets: {_mb(summary.peak_rss_bytes):.0f} MB this process + "
        f"{_mb(summary.dynamodb_peak_rss_bytes):.0f} MB the embedded DynamoDB"
    )
