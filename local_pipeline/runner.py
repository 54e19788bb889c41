"""One local run: stream generated (or read) events through the rule, the chosen trigger, the fan-out and the
local Firehose on a simulated clock; mirror the lake; write the summary, the dead letters and the outputs.

The handlers are the real ones, called as AWS calls them. Each AWS service moto leaves out is simulated in a
module of its own (:mod:`.eventbridge`, :mod:`.buffer_queue`, :mod:`.lambda_service`, :mod:`.firehose`); the
run wires them in :func:`build_services` and drives them in :func:`simulate`. A caller that wants to alter a
service (fault injection, an audit) passes ``wrap`` to :func:`run`: it receives the :class:`Services` before
the first event and returns them, changed as it likes; the handlers never branch on it.

Time: events arrive at their simulated moments; the trigger invokes the fan-out at simulated moments (a
batch when it closes, an asynchronous retry after Lambda's wait); the delivery stream's buffers and quotas
follow the same clock. Nothing sleeps: a burst of 900 simulated seconds costs only the work it does.

Memory: events are generated (or read) one at a time and forgotten once the rule, the queue or Lambda is done
with them; summaries are counters. Only the queue's backlog and the stream's buffers hold events, as in AWS.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import random
import resource
import socket
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import orjson

import pipeline_config
from fanout_lambda import handler as fanout_handler
from fanout_lambda.adapters import BulkReport, FirehoseSender, Pending
from fanout_lambda.claims import IdempotencyRecords
from fanout_lambda.sale import idempotency_key
from fanout_lambda.settings import FanoutSettings
from fanout_lambda.validation import validator
from local_pipeline import out_folder
from local_pipeline.audit import Audit, AuditReport
from local_pipeline.aws import EmbeddedAws, dead_letter_body
from local_pipeline.buffer_queue import BufferQueue, BufferQueueSettings
from local_pipeline.collector import fewer_collections
from local_pipeline.config import StreamConfig
from local_pipeline.dashboards import QueryResult, render, run_dashboards
from local_pipeline.eventbridge import matches
from local_pipeline.faults import (
    FaultInjector,
    FaultSpec,
    FaultyDynamoDB,
    FaultyFirehose,
    FaultyS3,
    FaultySqs,
    ProcessClock,
    crashable,
    faulty_transform,
)
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock, StreamStats
from local_pipeline.generator import BadEventsFile, BurstSpec, GeneratedEvent, count_events, events_from_file, generate
from local_pipeline.lambda_service import (
    ASYNC_RETRY_DELAYS_MS,
    AsyncInvoker,
    InvocationTiming,
    LambdaFunction,
    destination_record,
)
from local_pipeline.metrics import EmfLogSink, MetricsRecorder
from local_pipeline.progress import Progress
from operations import outputs
from operations.report import write_report
from transform_lambda import handler as transform_handler

__all__ = [
    "DEFAULT_EVENTS",
    "FANOUT_FUNCTION",
    "OUTPUTS_FILE",
    "SUMMARY_FILE",
    "TRANSFORM_FUNCTION",
    "RunError",
    "RunOptions",
    "RunSummary",
    "Services",
    "build_services",
    "destination_record",
    "run",
    "simulate",
]

#: Measured on a 2-core machine: the default run finishes well under a minute (see BENCHMARKS.md).
DEFAULT_EVENTS = 3000
#: Lambda's asynchronous invocation attempts (EventBridge → Lambda): the first try plus two retries.
ASYNC_ATTEMPTS = 1 + len(ASYNC_RETRY_DELAYS_MS)
#: The local functions' names (their ARNs appear in on-failure destination records and metrics).
FANOUT_FUNCTION = "sales-fanout-local"
TRANSFORM_FUNCTION = "sales-transform-local"
#: Files the run writes at the top of ``--out``.
OUTPUTS_FILE = "outputs.json"
SUMMARY_FILE = "summary.json"
#: The self-contained HTML report (``sales-pipeline report``), in ``--out``.
REPORT_FILE = "report.html"
DEAD_LETTERS_FILE = "dead_letters.jsonl"
#: The fan-out's function timeout (pipeline.json, Terraform's default): a context's remaining time at start.
FANOUT_TIMEOUT_MS = pipeline_config.fanout_timeout_seconds() * 1000
#: Socket timeout of the ``--endpoint-url`` check.
_ENDPOINT_CHECK_SECONDS = 3.0

Trigger = Literal["queue", "direct"]


class RunError(RuntimeError):
    """The run cannot start or finish (an unusable output folder, an unreadable events file, ...)."""


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
    trigger: Trigger | None = None  # None: pipeline.json's fanout_trigger, as Terraform's default
    timing: InvocationTiming = field(default_factory=InvocationTiming)
    faults: FaultSpec = field(default_factory=FaultSpec)  # --faults: injected from the run's seed

    def resolved_trigger(self) -> Trigger:
        """The trigger this run uses."""
        declared = pipeline_config.load()["fanout_trigger"]
        trigger = self.trigger or declared
        if trigger not in {"queue", "direct"}:
            raise RunError(f"trigger must be 'queue' or 'direct', got {trigger!r}")
        return trigger


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
            **(self.audit.summary_fields() if self.audit is not None else {}),
        }


class TriggerService(Protocol):
    """How the rule's matched events reach the fan-out: the buffer queue or asynchronous invocation."""

    def next_due(self) -> int | None:
        """The simulated moment of the next thing to happen, or None."""

    def step(self) -> None:
        """Do what is due at the simulated now."""

    def idle(self) -> bool:
        """Nothing waiting, nothing in flight."""


@dataclass
class Services:
    """The simulated AWS of one run. Replace any part (e.g. wrap ``stream``) before :func:`simulate`."""

    aws: EmbeddedAws
    config: StreamConfig
    clock: SimulatedClock
    metrics: MetricsRecorder
    stream: LocalDeliveryStream
    fanout: LambdaFunction
    transform: LambdaFunction
    deliver: Callable[[dict[str, Any]], None]
    trigger: TriggerService
    trigger_name: Trigger
    in_flight: InFlight
    buffer_queue: BufferQueue | None = None
    async_invoker: AsyncInvoker | None = None
    emf: EmfLogSink | None = None
    faults: FaultInjector | None = None
    process_clock: ProcessClock | None = None
    dead_letters: DeadLetterGauge | None = None


class DeadLetterGauge:
    """Every message the dead-letter queue receives: its ``AWS/SQS`` metrics (messages sent, visible, age of
    the oldest), its kind, and its body written to ``sink`` (``dead_letters.jsonl``), one per line.

    Nothing consumes the DLQ during a run, so what was sent is what is left in it: the visible count is every
    message sent so far, the oldest is the first one, and the file is written as messages arrive instead of
    read back at the end (moto's ReceiveMessage took minutes for a few thousand large messages).
    """

    def __init__(
        self, metrics: MetricsRecorder, clock: SimulatedClock, queue_name: str, sink: IO[str] | None = None
    ) -> None:
        self._metrics = metrics
        self._clock = clock
        self._dimensions = {"QueueName": queue_name}
        self._sink = sink
        self._lock = threading.Lock()  # the fan-out sends its dead letters from its thread pool
        self.sent = 0
        self.kinds: Counter[str] = Counter()
        self._first_ms: int | None = None

    def record(self, bodies: list[str]) -> None:
        """These message bodies arrived now."""
        now = self._clock.now_ms
        with self._lock:
            for body in bodies:
                self.kinds[_dead_letter_kind(body)] += 1
                if self._sink is not None:
                    # The body as the queue holds it, one per line (re-serialised only if it spans lines).
                    self._sink.write((body if "\n" not in body else json.dumps(json.loads(body))) + "\n")
            if bodies:
                self.sent += len(bodies)
                self._first_ms = now if self._first_ms is None else self._first_ms
                self._metrics.add("AWS/SQS", "NumberOfMessagesSent", len(bodies), "Count", now, self._dimensions)
        self.depth()

    def depth(self) -> None:
        """Record the queue's depth and oldest message's age at the simulated now."""
        now = self._clock.now_ms
        age = (now - self._first_ms) / 1000 if self._first_ms is not None else 0
        add = self._metrics.add
        add("AWS/SQS", "ApproximateNumberOfMessagesVisible", self.sent, "Count", now, self._dimensions)
        add("AWS/SQS", "ApproximateAgeOfOldestMessage", age, "Seconds", now, self._dimensions)


class MeteredSqs:
    """The fan-out's SQS client: it reports the messages sent to the dead-letter queue to a
    :class:`DeadLetterGauge` (what CloudWatch would count), and sends batches to that queue through
    :meth:`EmbeddedAws.send_dead_letters` (moto's own SendMessageBatch is quadratic in the queue's length);
    every other call goes to the real client unchanged."""

    def __init__(self, aws: EmbeddedAws, gauge: DeadLetterGauge) -> None:
        self._aws = aws
        self._client = aws.client("sqs")
        self._gauge = gauge

    def send_message(self, **kwargs: Any) -> Any:
        """SendMessage, recorded once it succeeded."""
        response = self._client.send_message(**kwargs)
        self._gauge.record([kwargs["MessageBody"]])
        return response

    def send_message_batch(self, **kwargs: Any) -> Any:
        """SendMessageBatch, its successful entries recorded."""
        if kwargs.get("QueueUrl") == self._aws.queue_url and set(kwargs) == {"QueueUrl", "Entries"}:
            response = self._aws.send_dead_letters(kwargs["Entries"])
        else:
            response = self._client.send_message_batch(**kwargs)
        sent = {entry["Id"] for entry in response.get("Successful", [])}
        self._gauge.record([entry["MessageBody"] for entry in kwargs["Entries"] if entry["Id"] in sent])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class InFlight:
    """Bus arrival moments of the events the pipeline is still working on, for the delivery latency.

    An event is added when the rule delivers it and forgotten once its message is deleted (queue) or its
    invocation settled (direct); a record reaching Firehose is traced back to it by its ``eventId``.
    """

    def __init__(self) -> None:
        self._arrivals: dict[str, list[int]] = {}

    def add(self, event_id: str, arrival_ms: int) -> None:
        """An event (or another copy of it) entered the pipeline."""
        entry = self._arrivals.get(event_id)
        if entry is None:
            self._arrivals[event_id] = [arrival_ms, 1]
        else:
            entry[0] = min(entry[0], arrival_ms)
            entry[1] += 1

    def done(self, event_id: str | None) -> None:
        """One copy of an event left the pipeline."""
        entry = self._arrivals.get(event_id) if event_id is not None else None
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self._arrivals[event_id]  # type: ignore[arg-type]

    def origin_of(self, data: bytes) -> int | None:
        """The bus arrival of the event a Firehose record carries (found by its ``eventId``)."""
        start = data.rfind(b'"eventId":"')
        if start < 0:
            return None
        start += len(b'"eventId":"')
        end = data.find(b'"', start)
        entry = self._arrivals.get(data[start:end].decode(errors="replace"))
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._arrivals)


def run(
    options: RunOptions,
    *,
    out: IO[str] = sys.stdout,
    wrap: Callable[[Services], Services] | None = None,
) -> RunSummary:
    """Run the pipeline end to end; print progress, the summary and the dashboards to ``out``."""
    with fewer_collections():
        return _run(options, out, wrap)


def _run(options: RunOptions, out: IO[str], wrap: Callable[[Services], Services] | None) -> RunSummary:
    started = time.perf_counter()  # end to end: generating the burst is part of the run
    _one_malloc_arena()
    trigger = options.resolved_trigger()
    total = _preflight(options)
    config = StreamConfig.from_declarations()
    summary = RunSummary(
        trigger=trigger, region=options.region, source="generated" if options.events_file is None else "read"
    )
    summary.faults = str(options.faults)
    audit = Audit(validator(pipeline_config.embedding_dimension()), config.event_pattern)
    staged = out_folder.staging(options.out)
    try:
        with (
            EmbeddedAws(region=options.region, endpoint_url=options.endpoint_url) as aws,
            _lambda_output(options.lambda_log) as lambda_log,
            (staged / DEAD_LETTERS_FILE).open("w", encoding="utf-8") as dead_letters,
        ):
            aws.create_resources(buffer_queue=trigger == "queue")
            services = build_services(aws, config, options, trigger, lambda_log=lambda_log, dead_letters=dead_letters)
            if wrap is not None:
                services = wrap(services)
            progress = Progress(total, _progress_stream(out), detail=lambda: _progress_detail(summary, services))
            # The process clock follows the simulated clock while the handlers run (their idempotency claims read
            # the wall clock); it is released before the end phase, which stamps metrics against the real clock.
            with services.process_clock or contextlib.nullcontext():
                try:
                    simulate(audit.observe(_events(options, total)), services, summary, progress=progress.update)
                finally:
                    progress.close()
                    fanout_handler.reset()
            _finish(services, summary, staged)
            # The pipeline's wall time ends at the mirrored lake, as before; the audit and the report read it back.
            summary.seconds = time.perf_counter() - started
            dead_letters.flush()  # written as they arrived; the audit reads the file
            summary.audit = _audit(audit, services, staged)
            # The operator's report, read back through the same clients: monitor verdicts, delivery, dashboards.
            values = aws.stack_outputs(config, trigger=services.trigger_name)
            write_report(staged / REPORT_FILE, cloudwatch=aws.client("cloudwatch"), sqs=aws.client("sqs"),
                         outputs=values, lake_dir=staged if options.dashboards else None)  # fmt: skip
        summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        if aws.dynamodb_process is not None:
            summary.dynamodb_peak_rss_bytes = aws.dynamodb_process.peak_rss_bytes
        _write_json(staged / SUMMARY_FILE, summary.as_json())
        lake = out_folder.commit(staged, options.out)
    except BaseException:
        out_folder.discard(staged)
        raise
    summary.lake = lake
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


def build_services(
    aws: EmbeddedAws,
    config: StreamConfig,
    options: RunOptions,
    trigger: Trigger,
    *,
    lambda_log: IO[str] | None = None,
    dead_letters: IO[str] | None = None,
) -> Services:
    """Wire the simulated services of one run (the embedded AWS already holds its resources); every message
    the dead-letter queue receives is written to ``dead_letters``."""
    clock = SimulatedClock(0)
    metrics = MetricsRecorder()
    in_flight = InFlight()
    # Fault injection wraps clients and services only (local_pipeline/faults.py); with no --faults nothing is.
    faults = FaultInjector(options.faults, options.seed) if options.faults else None
    process_clock = ProcessClock(clock)
    transform = LambdaFunction(
        TRANSFORM_FUNCTION,
        transform_handler.lambda_handler
        if faults is None
        else faulty_transform(transform_handler.lambda_handler, faults),
        clock=clock,
        region=options.region,
        metrics=metrics,
        timeout_ms=300_000,
    )
    stream = LocalDeliveryStream(
        config,
        transform=transform,
        s3=aws.lake_writer() if faults is None else FaultyS3(aws.lake_writer(), faults),
        bucket=aws.names.lake_bucket,
        clock=clock,
        region=options.region,
        transform_function_name=TRANSFORM_FUNCTION,
        metrics=metrics,
        origin_of=in_flight.origin_of,
    )
    dlq = DeadLetterGauge(metrics, clock, aws.names.dead_letter_queue, dead_letters)
    fanout = LambdaFunction(
        FANOUT_FUNCTION,
        _afresh(
            stream,
            process_clock.wrap(_fanout_entry(aws, config, stream, faults, dlq, jitter=_seeded_jitter(options.seed))),
        ),
        clock=clock,
        region=options.region,
        metrics=metrics,
        timeout_ms=FANOUT_TIMEOUT_MS,
    )
    emf = EmfLogSink(recorder=metrics, now_ms=lambda: clock.now_ms, forward=lambda_log)

    def to_dlq(body: str) -> None:
        aws.put_dead_letter(body)
        dlq.record([body])

    services = Services(
        aws=aws,
        config=config,
        clock=clock,
        metrics=metrics,
        stream=stream,
        fanout=fanout,
        transform=transform,
        deliver=lambda event: None,
        trigger=_Idle(),
        trigger_name=trigger,
        in_flight=in_flight,
        emf=emf,
        faults=faults,
        process_clock=process_clock,
        dead_letters=dlq,
    )
    if trigger == "queue":
        queue = BufferQueue(
            BufferQueueSettings.from_declarations(),
            function=fanout,
            clock=clock,
            dead_letter=to_dlq,
            queue_name=aws.names.buffer_queue,
            region=options.region,
            timing=options.timing,
            metrics=metrics,
            on_done=lambda message: in_flight.done(message.key),
            redeliver=None if faults is None or not faults.active("sqs-redelivery") else _redelivery(faults),
        )

        def send(event: dict[str, Any]) -> None:
            queue.send(orjson.dumps(event).decode(), key=_event_id(event))

        services.buffer_queue, services.trigger, services.deliver = queue, queue, send
    else:
        invoker = AsyncInvoker(
            fanout,
            clock=clock,
            on_failure=lambda record: to_dlq(json.dumps(record, default=repr)),
            timing=options.timing,
            on_settled=lambda event: in_flight.done(_event_id(event)),
        )
        services.async_invoker, services.trigger, services.deliver = invoker, invoker, invoker.invoke
    return services


def _fanout_entry(
    aws: EmbeddedAws,
    config: StreamConfig,
    stream: LocalDeliveryStream,
    faults: FaultInjector | None,
    dlq: DeadLetterGauge,
    *,
    jitter: Callable[[float, float], float],
) -> Callable[[Any, Any], Any]:
    """Configure the fan-out's container (its clients wrapped when faults are injected); return its entry point.

    A crashed invocation's environment is replaced, as Lambda replaces one after a timeout: the dead invocation's
    pool threads are waited for (so none of them writes after its death), then a fresh service is built.
    """
    sqs: Any = MeteredSqs(aws, dlq)
    dynamodb: Any = aws.client("dynamodb")
    firehose: Any = stream
    if faults is not None:
        dynamodb, firehose, sqs = (
            FaultyDynamoDB(dynamodb, faults),
            FaultyFirehose(stream, faults),
            FaultySqs(sqs, faults),
        )

    def build() -> Any:
        service = fanout_handler.configure(
            settings=_fanout_settings(aws, config), dynamodb=dynamodb, firehose=firehose, sqs=sqs
        )
        service.batch.sender = _ChunksInTurn(firehose, config.stream_name, stream=stream, jitter=jitter)
        return service

    current = [build()]
    if faults is None:
        return fanout_handler.lambda_handler

    def replace_environment() -> None:
        current[0].executor.shutdown(wait=True)
        current[0] = build()

    return crashable(
        fanout_handler.lambda_handler,
        faults,
        on_crash=replace_environment,
        timeout_seconds=FANOUT_TIMEOUT_MS / 1000,
    )


def _redelivery(faults: FaultInjector) -> Callable[[Any], bool]:
    return lambda message: faults.draw("sqs-redelivery")


def _audit(audit: Audit, services: Services, staged: Path) -> AuditReport:
    """Account for every event offered: the mirrored lake, its error prefix and ``dead_letters.jsonl``."""
    config = services.config

    def dead_letters() -> Iterator[dict[str, Any]]:
        with (staged / DEAD_LETTERS_FILE).open(encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield dead_letter_body(line)

    return audit.finish(
        lake_dir=staged,
        table_name=config.table_name,
        table_prefix=config.table_prefix,
        partition_keys=config.glue_table["partition_keys"],
        error_prefix_root=config.error_output_prefix.split("!", 1)[0],
        dead_letters=dead_letters(),
        claim_status=_claim_status(services),
    )


def _claim_status(services: Services) -> Callable[[Any], str | None]:
    """What the idempotency table holds for a sale (read once the run is over, at its simulated end)."""
    records = IdempotencyRecords(services.aws.client("dynamodb"), services.aws.names.idempotency_table)
    end_ms = services.clock.now_ms
    check = validator(pipeline_config.embedding_dimension())

    def status(event: Any) -> str | None:
        record_id = records.record_id(idempotency_key(check.validate(event)))
        item = (
            services.aws.client("dynamodb")
            .get_item(TableName=records.table_name, Key={"id": {"S": record_id}}, ConsistentRead=True)
            .get("Item")
        )
        if item is None:
            return None
        state = str(item["status"]["S"])
        expiry = item.get("in_progress_expiration", {}).get("N")
        if state == "INPROGRESS" and expiry is not None:
            state += ", lapsed" if int(expiry) < end_ms else ", still held at the end of the run"
        return state

    return status


def _seeded_jitter(seed: int) -> Callable[[float, float], float]:
    """The jitter of the fan-out's Firehose backoff in a local run: drawn from the run's seed, so a run is
    reproducible (one generator for the run, so a container rebuilt after a crash goes on with it)."""
    return random.Random(seed).uniform  # noqa: S311 - simulated jitter, reproducible by design


class _ChunksInTurn(FirehoseSender):
    """The fan-out's Firehose sender in a local run: the same class, limits and resends, but a batch's
    PutRecordBatch chunks go one after the other in the invoking thread instead of side by side on the pool,
    each from the invocation's start on its own simulated timeline (as parallel chunks would).

    Its backoff between resends (capped exponential, full jitter, up to ~1.75 s over 4 attempts) waits on that
    timeline (:meth:`LocalDeliveryStream.wait`), not on the wall clock: a resend that crosses into the next
    simulated second meets that second's quota, as in AWS, while the shared clock and every other invocation
    (they run side by side in AWS) go on unaffected.

    On the pool, which of a batch's two chunks met an exhausted quota first, and which drew which jitter,
    depended on thread scheduling: a throttled burst gave different figures from run to run. In turn, a
    seeded run gives the same figures every time.
    """

    def __init__(
        self, client: Any, stream_name: str, *, stream: LocalDeliveryStream, jitter: Callable[[float, float], float]
    ) -> None:
        super().__init__(client, stream_name, sleep=lambda seconds: stream.wait(round(seconds * 1000)), jitter=jitter)
        self._stream = stream

    def submit(self, records: Sequence[bytes], executor: Executor) -> Pending:
        return super().submit(records, _InTurn())

    def _deliver_chunk(self, chunk: list[tuple[int, bytes]]) -> BulkReport:
        self._stream.new_timeline()
        return super()._deliver_chunk(chunk)


class _InTurn(Executor):
    """An executor that runs each task at once, in the submitting thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # as a pool's future would hold it
            future.set_exception(exc)
        return future


def _afresh(stream: LocalDeliveryStream, handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """``handler`` with the stream told each time an invocation starts (its waits begin from the shared clock)."""

    def invoke(event: Any, context: Any) -> Any:
        stream.new_invocation()
        return handler(event, context)

    return invoke


def simulate(
    events: Iterator[GeneratedEvent],
    services: Services,
    summary: RunSummary,
    *,
    progress: Callable[[int], None] = lambda done: None,
) -> None:
    """Offer every event at its arrival moment, then let the trigger and the stream finish their work."""
    clock = services.clock
    pattern = services.config.event_pattern
    with _emf_capture(services.emf):
        for generated in events:
            if summary.events_total == 0:
                clock.now_ms = generated.arrival_ms  # the clock starts with the burst
            _run_until(services, generated.arrival_ms)
            summary.events_total += 1
            if matches(pattern, generated.event):
                event_id = _event_id(generated.event)
                if event_id is not None:
                    services.in_flight.add(event_id, generated.arrival_ms)
                services.deliver(generated.event)
            else:
                summary.not_matched += 1
            progress(summary.events_total)
        _drain(services)
        # Let the buffering interval elapse after the last event, then flush what is left.
        services.stream.advance_to(clock.now_ms + services.config.buffering_interval_seconds * 1000)
        services.stream.close()


def _run_until(services: Services, moment_ms: int) -> None:
    """Everything due up to ``moment_ms``, in time order, then the clock at ``moment_ms``."""
    trigger, stream, clock = services.trigger, services.stream, services.clock
    while True:
        due = trigger.next_due()
        if due is None or due > moment_ms:
            break
        due = max(due, clock.now_ms)
        stream.advance_to(due)
        clock.advance_to(due)
        trigger.step()
    stream.advance_to(moment_ms)
    clock.advance_to(moment_ms)


def _drain(services: Services) -> None:
    while not services.trigger.idle():
        due = services.trigger.next_due()
        if due is None:
            break
        _run_until(services, max(due, services.clock.now_ms))


def _finish(services: Services, summary: RunSummary, staged: Path) -> None:
    """Counters into the summary; metrics put; DLQ, lake and outputs written into the staging folder."""
    aws, config = services.aws, services.config
    summary.stream = services.stream.stats
    summary.simulated_seconds = (services.clock.now_ms - (services.metrics.first_ms or services.clock.now_ms)) / 1000
    summary.firehose_requests_per_second_quota = services.stream.quota.requests_per_second
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
        {name: int(emf.get(name, 0)) for name in ("SalesFailed", "SalesInProgress", "FirehoseResends") if emf.get(name)}
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
    outputs.write(staged / OUTPUTS_FILE, aws.stack_outputs(config, trigger=services.trigger_name))


class _Idle:
    def next_due(self) -> int | None:
        return None

    def step(self) -> None:
        return None

    def idle(self) -> bool:
        return True


def _dead_letter_kind(text: str) -> str:
    """Which of the DLQ's message kinds (COMMON.md) a body is."""
    try:
        body = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "not_json"
    if not isinstance(body, dict):
        return "not_json"
    if "requestContext" in body:
        return "fanout_failed_after_async_retries"
    if "errorType" in body and ("event" in body or "eventGzipBase64" in body):
        return "rejected_by_fanout"
    return "fanout_failed_past_max_receive_count"


def _event_id(event: Any) -> str | None:
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None


def _fanout_settings(aws: EmbeddedAws, config: StreamConfig) -> FanoutSettings:
    return FanoutSettings(
        sales_table_name=aws.names.sales_table,
        idempotency_table_name=aws.names.idempotency_table,
        delivery_stream_name=config.stream_name,
        dead_letter_queue_url=aws.queue_url,
        embedding_dimension=pipeline_config.embedding_dimension(),
    )


def _preflight(options: RunOptions) -> int:
    """Every check a user's argument can fail, before anything is created; return the number of events."""
    try:
        out_folder.check(options.out)
    except out_folder.OutFolderError as exc:
        raise RunError(str(exc)) from exc
    if options.lambda_log is not None:
        _check_lambda_log(options.lambda_log)
    if options.endpoint_url is not None:
        _check_endpoint(options.endpoint_url)
    if options.events_file is None:
        return options.events
    try:
        return count_events(options.events_file)
    except BadEventsFile as exc:
        raise RunError(str(exc)) from exc
    except OSError as exc:
        raise RunError(f"cannot read --events {options.events_file}: {exc.strerror or exc}") from exc


def _check_lambda_log(path: Path) -> None:
    target = path.expanduser().absolute()
    if target.is_dir():
        raise RunError(f"--lambda-log {path} is a folder, not a file")
    if not target.parent.is_dir():
        raise RunError(f"--lambda-log {path}: folder {target.parent} does not exist")
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        raise RunError(f"--lambda-log {path} is not writable")


def _check_endpoint(url: str) -> None:
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in {"http", "https"} or not parsed.hostname:
        raise RunError(f"--endpoint-url {url} is not an http(s) URL such as http://127.0.0.1:5000")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=_ENDPOINT_CHECK_SECONDS):
            pass
    except OSError as exc:
        raise RunError(
            f"--endpoint-url {url}: nothing answers at {parsed.hostname}:{port} ({exc.strerror or exc}); "
            "start the server (e.g. moto_server -p 5000) or drop --endpoint-url to use the embedded moto"
        ) from exc


def _events(options: RunOptions, total: int) -> Iterator[GeneratedEvent]:
    spec = BurstSpec(events=options.events, seed=options.seed, burst_seconds=options.burst_seconds)
    if options.events_file is None:
        return generate(spec)
    return events_from_file(options.events_file, start=spec.start, burst_seconds=spec.burst_seconds, total=total)


@contextlib.contextmanager
def _lambda_output(path: Path | None) -> Iterator[IO[str] | None]:
    """The ``--lambda-log`` file, open for the run (None: the handlers' output is not kept)."""
    if path is None:
        yield None
        return
    with path.open("a", encoding="utf-8") as stream:
        yield stream


@contextlib.contextmanager
def _emf_capture(sink: EmfLogSink | None) -> Iterator[None]:
    """Send the handlers' structured logs and EMF lines to ``sink`` (CloudWatch Logs' part) for the run."""
    target: Any = sink if sink is not None else open(os.devnull, "w")  # noqa: SIM115, PTH123
    handlers = [
        handler
        for module in (fanout_handler, transform_handler)
        for handler in module.logger.handlers
        if isinstance(handler, logging.StreamHandler)
    ]
    previous = [handler.setStream(target) for handler in handlers]
    try:
        with contextlib.redirect_stdout(target):
            yield
    finally:
        for handler, old in zip(handlers, previous, strict=True):
            if old is not None:
                handler.setStream(old)
        target.flush()


def _progress_stream(out: IO[str]) -> IO[str]:
    # The handlers' stdout is redirected during the run: progress goes to the real terminal.
    return sys.__stdout__ if out is sys.stdout and sys.__stdout__ is not None else out


def _progress_detail(summary: RunSummary, services: Services) -> str:
    emf: dict[str, float] = services.emf.totals if services.emf is not None else {}
    stats = services.stream.stats
    return (
        f"processed {int(emf.get('SalesProcessed', 0))}, duplicates {int(emf.get('SalesDuplicate', 0))}, "
        f"rejected {int(emf.get('SalesRejected', 0))}, not matched {summary.not_matched}, "
        f"firehose calls {stats.put_requests + stats.throttled_requests} ({stats.throttled_requests} throttled)"
    )


#: glibc's mallopt parameter that caps the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8


def _one_malloc_arena() -> None:
    """Have glibc's malloc serve every thread of this process from one arena.

    glibc gives each thread that allocates its own arena (up to 8 per core), and each keeps the memory its
    thread freed: the fan-out's 32-thread pool, building and parsing DynamoDB requests of 4 KB items, left
    the run's resident set at 598 MB after 20,000 events (430 MB with one arena, at the same speed: measured
    with ``MALLOC_ARENA_MAX``, which has to be set before the process starts; this is the same setting,
    made from inside). Threads created after this call use the one arena. Not glibc (macOS, musl): nothing.
    """
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(_M_ARENA_MAX, 1)
    except (OSError, AttributeError):
        pass


def _mb(size: int) -> float:
    return round(size / 1_000_000, 1)


def _memory_parts(summary: RunSummary) -> str:
    if summary.dynamodb_peak_rss_bytes is None:
        return "resident set of this process"
    return (
        f"peak resident sets: {_mb(summary.peak_rss_bytes):.0f} MB this process + "
        f"{_mb(summary.dynamodb_peak_rss_bytes):.0f} MB the embedded DynamoDB"
    )


def _write_json(path: Path, value: dict[str, Any]) -> None:
    path.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")


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
        f"  firehose records in     {stats.incoming_records:>8}",
        f"  transform invocations   {stats.invocations:>8}   ({stats.invocation_errors} failed)",
        f"  processing failures     {stats.processing_failed:>8}",
        f"  conversion failures     {stats.conversion_failed:>8}",
        f"  partition limit hits    {stats.partition_exceeded:>8}",
        f"  rows delivered          {stats.rows_delivered:>8}",
        f"  parquet objects         {stats.objects_written:>8}   in {len(stats.partitions)} partitions "
        f"(at most {stats.max_active_partitions} active at once; limit {limit})",
        f"  error objects           {stats.error_objects_written:>8}",
        f"  max delivery latency    {stats.max_delivery_latency_ms / 1000:>8.1f} s (simulated: bus arrival to S3)",
        f"  metrics put             {summary.metric_datapoints:>8}   (per-minute statistic sets: AWS/Firehose, "
        f"AWS/Lambda, AWS/SQS, the fan-out's EMF)",
        f"  dead letters            {summary.dead_letters:>8}   ({DEAD_LETTERS_FILE})",
        f"  lake mirrored to        {lake}  ({summary.mirrored} objects; {SUMMARY_FILE}, {OUTPUTS_FILE})",
        f"  wall time               {summary.seconds:>8.1f} s   ({summary.events_per_second:,.0f} events/s end to end)",
        f"  peak memory             {_mb(summary.peak_memory_bytes):>8.0f} MB  ({_memory_parts(summary)})",
    ]
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
