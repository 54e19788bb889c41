"""One local run: generate or read events, route them through the rule, the fan-out and the local Firehose,
mirror the lake, summarise and run the dashboards.

The handlers are the real ones, called as AWS calls them: the fan-out with one EventBridge event and a
Lambda context, the transform with Firehose's transformation event. Their log lines and EMF metrics go to
``lambda_log`` (default: discarded) so the progress and summary stay readable.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pipeline_config
from fanout_lambda import handler as fanout_handler
from fanout_lambda.settings import FanoutSettings
from local_pipeline.aws import EmbeddedAws
from local_pipeline.config import StreamConfig
from local_pipeline.context import LambdaContext, function_arn
from local_pipeline.dashboards import QueryResult, render, run_dashboards
from local_pipeline.eventbridge import matches
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock, StreamStats
from local_pipeline.generator import BurstSpec, GeneratedEvent, events_from_file, generate
from operations import outputs
from operations.report import write_report
from transform_lambda import handler as transform_handler

__all__ = ["DEFAULT_EVENTS", "LAKE_MARKER", "RunError", "RunOptions", "RunSummary", "run"]

#: Measured on a 2-core machine: the default run finishes well under a minute (see BENCHMARKS.md).
DEFAULT_EVENTS = 3000
#: Marks a folder this tool created, so a re-run may replace it and never deletes anything else.
LAKE_MARKER = ".sales-pipeline-lake"
#: Lambda's asynchronous invocation retries (EventBridge → Lambda): the first try plus two.
ASYNC_ATTEMPTS = 3
#: The local fan-out function's name (its ARN appears in on-failure destination records).
FANOUT_FUNCTION = "sales-fanout-local"
#: The run's stack outputs in ``terraform output -json`` shape, in ``--out``: what the operator commands read.
OUTPUTS_FILE = "outputs.json"
#: The self-contained HTML report (``sales-pipeline report``), in ``--out``.
REPORT_FILE = "report.html"


class RunError(RuntimeError):
    """The run cannot start or finish (an unsafe output folder, an unreadable events file)."""


@dataclass(frozen=True)
class RunOptions:
    """What ``sales-pipeline run`` was asked to do."""

    events: int = DEFAULT_EVENTS
    seed: int = 7
    events_file: Path | None = None
    endpoint_url: str | None = None
    out: Path = Path("lake")
    burst_seconds: int = 900
    region: str = "us-east-1"
    dashboards: bool = True
    lambda_log: Path | None = None


@dataclass
class RunSummary:
    """What happened, for the summary, the tests and BENCHMARKS.md."""

    events_total: int = 0
    not_matched: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    stream: StreamStats = field(default_factory=StreamStats)
    metric_datapoints: int = 0
    metric_names: set[str] = field(default_factory=set)
    lake_keys: list[str] = field(default_factory=list)
    error_keys: list[str] = field(default_factory=list)
    mirrored: int = 0
    seconds: float = 0.0
    dashboards: list[QueryResult] = field(default_factory=list)
    events: list[GeneratedEvent] = field(default_factory=list, repr=False)

    @property
    def rejected_in_dlq(self) -> list[dict[str, Any]]:
        """DLQ messages the fan-out wrote for events it rejected (not on-failure destination records)."""
        return [m for m in self.dead_letters if "requestContext" not in m]

    @property
    def failed_in_dlq(self) -> list[dict[str, Any]]:
        """On-failure destination records: events whose fan-out invocation failed every attempt."""
        return [m for m in self.dead_letters if "requestContext" in m]

    @property
    def sent(self) -> int:
        """Events the rule delivered to the fan-out."""
        return self.events_total - self.not_matched

    @property
    def events_per_second(self) -> float:
        """End-to-end throughput: events through the whole pipeline per wall-clock second."""
        return self.events_total / self.seconds if self.seconds else 0.0


def run(options: RunOptions, *, out: IO[str] = sys.stdout) -> RunSummary:
    """Run the pipeline end to end; print progress, the summary and the dashboards to ``out``."""
    started = time.perf_counter()  # end to end: generating the burst is part of the run
    config = StreamConfig.from_declarations()
    lake = _prepare_out(options.out)
    events = _load_events(options)
    summary = RunSummary(events_total=len(events), events=events)
    with (
        EmbeddedAws(region=options.region, endpoint_url=options.endpoint_url) as aws,
        _lambda_output(options.lambda_log),
    ):
        aws.create_resources()
        clock = SimulatedClock(events[0].arrival_ms if events else 0)
        stream = LocalDeliveryStream(
            config,
            transform=transform_handler.lambda_handler,
            s3=aws.client("s3"),
            bucket=aws.names.lake_bucket,
            clock=clock,
            cloudwatch=aws.client("cloudwatch"),
            region=options.region,
        )
        fanout_handler.configure(
            settings=_fanout_settings(aws, config),
            dynamodb=aws.client("dynamodb"),
            firehose=stream,
            sqs=aws.client("sqs"),
        )
        sqs = aws.client("sqs")

        def on_failure(record: dict[str, Any]) -> None:
            # The fan-out's on-failure destination is its DLQ (the same queue Terraform wires as the destination).
            sqs.send_message(QueueUrl=aws.queue_url, MessageBody=json.dumps(record, default=repr))

        try:
            _publish(
                events,
                config,
                stream,
                summary,
                progress=_progress(out, len(events)),
                on_failure=on_failure,
                fanout_arn=function_arn(FANOUT_FUNCTION, options.region),
            )
        finally:
            fanout_handler.reset()
        # Let the buffering interval elapse after the last event, then flush what is left.
        stream.advance_to(clock.now_ms + config.buffering_interval_seconds * 1000)
        stream.close()
        summary.stream = stream.stats
        summary.metric_datapoints = stream.metrics_put
        summary.metric_names = aws.metric_names("AWS/Firehose")
        summary.dead_letters = aws.read_dead_letters()
        keys = list(aws.keys())
        summary.lake_keys = [k for k in keys if k.startswith(config.table_prefix)]
        summary.error_keys = [k for k in keys if not k.startswith(config.table_prefix)]
        summary.mirrored = aws.mirror(lake)
        outputs.write(lake / OUTPUTS_FILE, aws.stack_outputs(config))
        # The operator's report, read back through the same clients: monitor verdicts, delivery, dashboards.
        cw, sqs_client, values = aws.client("cloudwatch"), aws.client("sqs"), aws.stack_outputs(config)
        dashboards_on = lake if options.dashboards else None
        write_report(lake / REPORT_FILE, cloudwatch=cw, sqs=sqs_client, outputs=values, lake_dir=dashboards_on)
    summary.seconds = time.perf_counter() - started
    print(format_summary(summary, lake, config.active_partitions_limit), file=out)
    if options.dashboards and summary.lake_keys:
        summary.dashboards = run_dashboards(
            lake,
            table_name=config.table_name,
            table_prefix=config.table_prefix,
            partition_keys=config.glue_table["partition_keys"],
        )
        for result in summary.dashboards:
            print("\n" + render(result), file=out)
    return summary


def _publish(
    events: list[GeneratedEvent],
    config: StreamConfig,
    stream: LocalDeliveryStream,
    summary: RunSummary,
    *,
    progress: Callable[[int, RunSummary], None],
    on_failure: Callable[[dict[str, Any]], None],
    fanout_arn: str,
) -> None:
    for index, generated in enumerate(events, start=1):
        stream.advance_to(generated.arrival_ms)
        if not matches(config.event_pattern, generated.event):
            summary.not_matched += 1
        else:
            outcome = _invoke_fanout(generated.event, on_failure, fanout_arn)
            summary.outcomes[outcome] += 1
        progress(index, summary)


def _invoke_fanout(event: dict[str, Any], on_failure: Callable[[dict[str, Any]], None], fanout_arn: str) -> str:
    """Invoke as Lambda's async invocation does: retry a raising handler, then hand the event to the on-failure
    destination (the DLQ) with Lambda's invocation record around it."""
    error: Exception | None = None
    for _attempt in range(ASYNC_ATTEMPTS):
        context = LambdaContext(FANOUT_FUNCTION)
        try:
            response = fanout_handler.lambda_handler(event, context)
        except Exception as exc:  # the handler raising is Lambda's cue to retry
            error = exc
            continue
        return str(response.get("outcome", "unknown"))
    failure = error if error is not None else RuntimeError("no attempt was made")
    on_failure(destination_record(event, failure, attempts=ASYNC_ATTEMPTS, function_arn=fanout_arn))
    return "failed"


def destination_record(event: Any, error: BaseException, *, attempts: int, function_arn: str) -> dict[str, Any]:
    """The record Lambda sends an asynchronous invocation's on-failure destination after the last retry
    (AWS Lambda guide, "Capturing records of Lambda asynchronous invocations": example invocation record)."""
    return {
        "version": "1.0",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {
            "errorMessage": str(error),
            "errorType": type(error).__name__,
            "stackTrace": traceback.format_exception(error)[1:],
        },
    }


def _fanout_settings(aws: EmbeddedAws, config: StreamConfig) -> FanoutSettings:
    return FanoutSettings(
        sales_table_name=aws.names.sales_table,
        idempotency_table_name=aws.names.idempotency_table,
        delivery_stream_name=config.stream_name,
        dead_letter_queue_url=aws.queue_url,
        embedding_dimension=pipeline_config.embedding_dimension(),
    )


def _load_events(options: RunOptions) -> list[GeneratedEvent]:
    spec = BurstSpec(events=options.events, seed=options.seed, burst_seconds=options.burst_seconds)
    if options.events_file is None:
        return generate(spec)
    try:
        return list(events_from_file(options.events_file, start=spec.start, burst_seconds=spec.burst_seconds))
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read events from {options.events_file}: {exc}") from exc


def _prepare_out(out: Path) -> Path:
    lake = out.resolve()
    if lake.exists():
        if not lake.is_dir():
            raise RunError(f"--out {out} exists and is not a folder")
        if any(lake.iterdir()) and not (lake / LAKE_MARKER).exists():
            raise RunError(f"--out {out} is not empty and was not written by sales-pipeline; choose another folder")
        shutil.rmtree(lake)
    lake.mkdir(parents=True)
    # Marked at once: a run that fails half-way leaves a folder the next run may still replace.
    (lake / LAKE_MARKER).write_text("written by sales-pipeline run; safe to delete\n", encoding="utf-8")
    return lake


@contextlib.contextmanager
def _lambda_output(path: Path | None) -> Iterator[None]:
    """Send the handlers' structured logs and EMF lines to ``path`` (or nowhere) for the run."""
    target = path if path is not None else Path(os.devnull)
    with target.open("a", encoding="utf-8") as stream, contextlib.redirect_stdout(stream):
        handlers = [
            handler
            for module in (fanout_handler, transform_handler)
            for handler in module.logger.handlers
            if isinstance(handler, logging.StreamHandler)
        ]
        previous = [handler.setStream(stream) for handler in handlers]
        try:
            yield
        finally:
            for handler, old in zip(handlers, previous, strict=True):
                if old is not None:
                    handler.setStream(old)


def _progress(out: IO[str], total: int) -> Callable[[int, RunSummary], None]:
    step = max(1, total // 10)
    started = time.perf_counter()

    def report(done: int, summary: RunSummary) -> None:
        if done % step and done != total:
            return
        rate = done / max(time.perf_counter() - started, 1e-9)
        outcomes = summary.outcomes
        print(
            f"  [{done:>6}/{total}] processed {outcomes['processed']}, duplicates {outcomes['duplicate']}, "
            f"rejected {outcomes['rejected']}, not matched {summary.not_matched}  ({rate:,.0f} events/s)",
            file=sys.__stdout__ if out is sys.stdout else out,
            flush=True,
        )

    return report


def format_summary(summary: RunSummary, lake: Path, limit: int) -> str:
    """The end-of-run summary."""
    stats = summary.stream
    outcomes = summary.outcomes
    lines = [
        "",
        "Summary",
        f"  events generated        {summary.events_total:>8}",
        f"  not matched by the rule {summary.not_matched:>8}   (not delivered, as in AWS)",
        f"  events sent to fan-out  {summary.sent:>8}",
        f"  processed (new sales)   {outcomes['processed']:>8}",
        f"  duplicates skipped      {outcomes['duplicate']:>8}   (retried deliveries and re-published sales)",
        f"  events rejected         {outcomes['rejected']:>8}   (in the DLQ: {len(summary.rejected_in_dlq)})",
        f"  failed (in the DLQ)     {outcomes['failed']:>8}   (fan-out failed all {ASYNC_ATTEMPTS} attempts; "
        f"destination records in the DLQ: {len(summary.failed_in_dlq)})",
        f"  firehose records in     {stats.incoming_records:>8}   ({stats.put_requests} PutRecordBatch calls)",
        f"  transform invocations   {stats.invocations:>8}   ({stats.invocation_errors} failed)",
        f"  processing failures     {stats.processing_failed:>8}",
        f"  conversion failures     {stats.conversion_failed:>8}",
        f"  partition limit hits    {stats.partition_exceeded:>8}",
        f"  rows delivered          {stats.rows_delivered:>8}",
        f"  parquet objects         {stats.objects_written:>8}   in {len(stats.partitions)} partitions "
        f"(at most {stats.max_active_partitions} active at once; limit {limit})",
        f"  error objects           {stats.error_objects_written:>8}",
        f"  metrics put             {summary.metric_datapoints:>8}   "
        f"(AWS/Firehose datapoints; {len(summary.metric_names)} metric names read back from CloudWatch)",
        f"  lake mirrored to        {lake}  ({summary.mirrored} objects)",
        f"  wall time               {summary.seconds:>8.1f} s   ({summary.events_per_second:,.0f} events/s end to end)",
    ]
    return "\n".join(lines)
