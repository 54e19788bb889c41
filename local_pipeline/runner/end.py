"""The end phase of a run: counters into the summary, the metrics put, the lake mirrored and ``outputs.json``
written (into the staging folder); then the dashboards, run once on the mirrored lake, for the printout and
for the report alike."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from local_pipeline.config import StreamConfig
from local_pipeline.dashboards import QueryResult, run_dashboards
from local_pipeline.runner.files import OUTPUTS_FILE
from local_pipeline.runner.summary import RunSummary
from local_pipeline.runner.wiring import Services
from operations import outputs
from operations.report import write_report

__all__ = ["dashboards", "finish", "report"]

#: The fan-out's EMF metrics that say what answered a fault (summary.json's fanout_retries).
_RETRY_METRICS = ("SalesFailed", "SalesInProgress", "SalesThrottled", "FirehoseResends", "DynamoDBResends")


def finish(services: Services, summary: RunSummary, staged: Path) -> None:
    """Counters into the summary; metrics put; DLQ, lake and outputs written into the staging folder."""
    aws, config = services.aws, services.config
    summary.stream = services.stream.stats
    summary.simulated_seconds = (services.clock.now_ms - (services.metrics.first_ms or services.clock.now_ms)) / 1000
    summary.firehose_requests_per_second_quota = services.stream.quota.requests_per_second
    summary.firehose_streams = len(services.stream.names)
    summary.firehose_bytes_per_second_quota = services.stream.quota.bytes_per_second
    summary.dynamodb = services.dynamodb.report() if services.dynamodb is not None else []
    summary.fanout_invocations = services.fanout.invocations
    summary.fanout_errors = services.fanout.errors
    emf: dict[str, float] = services.emf.totals if services.emf is not None else {}
    summary.outcomes["processed"] = int(emf.get("SalesProcessed", 0))
    summary.outcomes["duplicate"] = int(emf.get("SalesDuplicate", 0))
    summary.outcomes["rejected"] = int(emf.get("SalesRejected", 0))
    if services.buffer_queue is not None:
        queue = services.buffer_queue.stats
        summary.outcomes["failed"] = queue.moved_to_dlq
        summary.events_retried = queue.retried_messages
        summary.max_batch, summary.max_batch_bytes = queue.max_batch, queue.max_batch_bytes
        summary.max_queue_age_seconds = queue.max_age_ms / 1000
    if services.async_invoker is not None:
        summary.outcomes["failed"] = services.async_invoker.stats.failed_events
        summary.events_retried = services.async_invoker.stats.retried_events
    if services.faults is not None:
        summary.faults_injected = Counter(services.faults.injected)
    summary.fanout_retries = Counter(
        {
            name: int(emf.get(name, 0))
            for name in ("SalesFailed", "SalesInProgress", "FirehoseResends", "DynamoDBResends", "SalesThrottled")
            if emf.get(name)
        }
    )
    if services.buffer_queue is not None:
        queue = services.buffer_queue.stats
        summary.fanout_retries.update(
            {"queue_redeliveries": queue.redeliveries, "sqs_duplicate_deliveries": queue.duplicate_deliveries}
        )
    if services.async_invoker is not None:
        summary.fanout_retries["async_retry_attempts"] = (
            services.async_invoker.stats.attempts - services.async_invoker.stats.events
        )
    summary.metric_datapoints = services.metrics.put(aws.client("cloudwatch"))
    summary.metric_names = aws.metric_names("AWS/Firehose")
    summary.dead_letter_kinds = services.dead_letters.kinds if services.dead_letters is not None else Counter()
    for key in aws.keys():  # noqa: SIM118 - the lake bucket's keys, not a dict's
        if key.startswith(config.table_prefix):
            summary.lake_keys += 1
        else:
            summary.error_keys += 1
    summary.mirrored = aws.mirror(staged)
    outputs.write(
        staged / OUTPUTS_FILE,
        aws.stack_outputs(config, trigger=services.trigger_name, stream_names=services.stream.names),
    )


def dashboards(
    config: StreamConfig, summary: RunSummary, lake_dir: Path, *, wanted: bool, lake_table: Any = None
) -> list[QueryResult] | None:
    """The dashboard queries on the mirrored lake under ``lake_dir``, or on ``lake_table`` (an Iceberg table's
    scan) (None: not wanted, ``--no-dashboards``; none when nothing reached the lake: DuckDB would refuse to read
    an empty glob)."""
    if not wanted:
        return None
    if (not summary.lake_keys) if lake_table is None else not lake_table.num_rows:
        return []
    return run_dashboards(
        lake_dir,
        table_name=config.table_name,
        table_prefix=config.table_prefix,
        partition_keys=config.glue_table["partition_keys"],
        table=lake_table,
    )


def report(path: Path, services: Services, results: list[QueryResult] | None) -> None:
    """The operator's report, read back through the run's own clients: monitor verdicts, delivery, and the
    dashboards' ``results`` (None: not run, and the page says so)."""
    aws = services.aws
    values = aws.stack_outputs(services.config, trigger=services.trigger_name, stream_names=services.stream.names)
    write_report(
        path,
        cloudwatch=aws.client("cloudwatch"),
        sqs=aws.client("sqs"),
        outputs=values,
        dashboards=results,
    )
