"""The simulated AWS of one run, wired: the delivery stream and its transform, the fan-out with its clients, the
dead-letter queue's gauge, and the trigger between the rule and the fan-out (the buffer queue, or Lambda's
asynchronous invocation). Fault injection wraps clients and services here; the handlers never branch on it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

import orjson

import pipeline_config
from fanout_lambda import handler as fanout_handler
from fanout_lambda.settings import FanoutSettings
from local_pipeline.aws import EmbeddedAws
from local_pipeline.buffer_queue import BufferQueue, BufferQueueSettings
from local_pipeline.config import StreamConfig
from local_pipeline.context import FANOUT_FUNCTION, TRANSFORM_FUNCTION
from local_pipeline.dynamodb import CapacityLedger, CapacityLimitedDynamoDB
from local_pipeline.faults import (
    FaultInjector,
    FaultyDynamoDB,
    FaultyFirehose,
    FaultyS3,
    FaultySqs,
    ProcessClock,
    crashable,
    faulty_transform,
)
from local_pipeline.firehose import LocalDeliveryStream, SimulatedClock
from local_pipeline.firehose.streams import DeliveryStreams, stream_names
from local_pipeline.lambda_service import AsyncInvoker, LambdaFunction
from local_pipeline.metrics import EmfLogSink, MetricsRecorder
from local_pipeline.runner.dead_letters import DeadLetterGauge, MeteredSqs
from local_pipeline.runner.latency import InFlight, event_id
from local_pipeline.runner.options import RunOptions, Trigger
from local_pipeline.runner.sender import ChunksInTurn, StagesInTurn, afresh, on_timeline, seeded_jitter
from transform_lambda import handler as transform_handler

if TYPE_CHECKING:  # pyiceberg loads in ~1 s: a Parquet run never imports it
    from local_pipeline.iceberg_table import LakeTable

__all__ = ["FANOUT_TIMEOUT_MS", "Services", "TriggerService", "build_services"]

#: The fan-out's function timeout (pipeline.json, Terraform's default): a context's remaining time at start.
FANOUT_TIMEOUT_MS = pipeline_config.fanout_timeout_seconds() * 1000


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
    stream: DeliveryStreams
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
    #: The fan-out's DynamoDB client, its writes admitted against the tables' capacity (its figures: report()).
    dynamodb: CapacityLimitedDynamoDB | None = None


def build_services(
    aws: EmbeddedAws,
    config: StreamConfig,
    options: RunOptions,
    trigger: Trigger,
    *,
    lambda_log: IO[str] | None = None,
    dead_letters: IO[str] | None = None,
    iceberg: LakeTable | None = None,
) -> Services:
    """Wire the simulated services of one run (the embedded AWS already holds its resources); every message
    the dead-letter queue receives is written to ``dead_letters``; ``iceberg``: the streams deliver to that table."""
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
    lake = aws.lake_writer() if faults is None else FaultyS3(aws.lake_writer(), faults)
    stream = DeliveryStreams(
        lambda name: LocalDeliveryStream(
            dataclasses.replace(config, stream_name=name),
            transform=transform,
            s3=lake,
            bucket=aws.names.lake_bucket,
            clock=clock,
            region=options.region,
            transform_function_name=TRANSFORM_FUNCTION,
            metrics=metrics,
            origin_of=in_flight.origin_of,
            iceberg=iceberg,
        ),
        stream_names(config.stream_name, options.resolved_firehose_streams()),
    )
    dlq = DeadLetterGauge(metrics, clock, aws.names.dead_letter_queue, dead_letters)
    sqs = MeteredSqs(aws, dlq)
    sqs.now_ms = stream.caller_now_ms
    dynamodb = CapacityLimitedDynamoDB(
        aws.client("dynamodb"),
        CapacityLedger(options.resolved_dynamodb_warm_writes()),
        now_ms=stream.caller_now_ms,
        metrics=metrics,
    )
    entry = _fanout_entry(
        dynamodb, aws, config, stream, faults, metered_sqs=sqs, trigger=trigger, jitter=seeded_jitter(options.seed)
    )
    fanout = LambdaFunction(
        FANOUT_FUNCTION,
        afresh(stream, process_clock.wrap(entry)),
        clock=clock,
        region=options.region,
        metrics=metrics,
        timeout_ms=FANOUT_TIMEOUT_MS,
        waited_ms=stream.longest_wait_ms,
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
        dynamodb=dynamodb,
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
            queue.send(orjson.dumps(event).decode(), key=event_id(event))

        services.buffer_queue, services.trigger, services.deliver = queue, queue, send
        sqs.buffer_queue = queue
    else:
        invoker = AsyncInvoker(
            fanout,
            clock=clock,
            on_failure=lambda record: to_dlq(json.dumps(record, default=repr)),
            timing=options.timing,
            on_settled=lambda event: in_flight.done(event_id(event)),
        )
        services.async_invoker, services.trigger, services.deliver = invoker, invoker, invoker.invoke
    return services


def _fanout_entry(
    capacity_limited: CapacityLimitedDynamoDB,
    aws: EmbeddedAws,
    config: StreamConfig,
    stream: DeliveryStreams,
    faults: FaultInjector | None,
    *,
    metered_sqs: MeteredSqs,
    trigger: Trigger,
    jitter: Callable[[float, float], float],
) -> Callable[[Any, Any], Any]:
    """Configure the fan-out's container (its clients wrapped when faults are injected); return its entry point.

    A crashed invocation's environment is replaced, as Lambda replaces one after a timeout: the dead invocation's
    pool threads are waited for (so none of them writes after its death), then a fresh service is built.
    """
    sqs: Any = metered_sqs
    dynamodb: Any = capacity_limited
    firehose: Any = stream
    if faults is not None:
        dynamodb, firehose, sqs = (
            FaultyDynamoDB(dynamodb, faults),
            FaultyFirehose(stream, faults),
            FaultySqs(sqs, faults),
        )

    def build() -> Any:
        service = fanout_handler.configure(
            settings=_fanout_settings(aws, config, stream.names, trigger), dynamodb=dynamodb, firehose=firehose, sqs=sqs
        )
        service.batch.sender = ChunksInTurn(firehose, stream.names, stream=stream, jitter=jitter)
        # DynamoDB's throttles are resent on the same simulated timeline as Firehose's (one flow control), each
        # call of a stage on its own timeline from the stage's start, in turn (reproducible).
        service.batch.executor = StagesInTurn(stream)
        for writer in (service.batch.store.writer, service.batch.records.writer):
            on_timeline(writer.backoff, stream, jitter)
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


class _Idle:
    """No trigger yet (:func:`build_services` sets the run's)."""

    def next_due(self) -> int | None:
        return None

    def step(self) -> None:
        return None

    def idle(self) -> bool:
        return True


def _fanout_settings(aws: EmbeddedAws, config: StreamConfig, streams: list[str], trigger: Trigger) -> FanoutSettings:
    """The fan-out's settings as Terraform would set its environment, naming the embedded AWS's resources:
    ``DELIVERY_STREAM_NAME`` lists every stream, ``BUFFER_QUEUE_URL`` is set with the queue trigger."""
    return FanoutSettings(
        sales_table_name=aws.names.sales_table,
        idempotency_table_name=aws.names.idempotency_table,
        delivery_stream_name=",".join(streams),
        dead_letter_queue_url=aws.queue_url,
        embedding_dimension=pipeline_config.embedding_dimension(),
        buffer_queue_url=aws.buffer_queue_url if trigger == "queue" else None,
    )
