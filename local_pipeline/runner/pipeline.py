"""One run, end to end: pre-flight checks, the embedded AWS and the wired services, the simulation, the end
phase, the audit and the report, all written into a staging folder that becomes ``--out`` only when the run
succeeded; then the summary and the dashboards printed."""

from __future__ import annotations

import contextlib
import dataclasses
import resource
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import glue_schemas
import pipeline_config
from fanout_lambda import handler as fanout_handler
from fanout_lambda.validation import validator
from local_pipeline import out_folder
from local_pipeline.audit import Audit
from local_pipeline.aws import EmbeddedAws
from local_pipeline.collector import fewer_collections
from local_pipeline.config import StreamConfig
from local_pipeline.dashboards import render
from local_pipeline.progress import Progress
from local_pipeline.runner import end
from local_pipeline.runner.accounting import audit_run
from local_pipeline.runner.files import DEAD_LETTERS_FILE, REPORT_FILE, SUMMARY_FILE
from local_pipeline.runner.loop import simulate
from local_pipeline.runner.malloc import one_malloc_arena
from local_pipeline.runner.options import RunError, RunOptions, events, preflight
from local_pipeline.runner.summary import RunSummary, format_summary, write_summary
from local_pipeline.runner.wiring import Services, build_services
from transform_lambda import handler as transform_handler

if TYPE_CHECKING:
    from local_pipeline.iceberg_table import LakeTable

__all__ = ["run"]


def run(
    options: RunOptions,
    *,
    out: IO[str] = sys.stdout,
    wrap: Callable[[Services], Services] | None = None,
) -> RunSummary:
    """Run the pipeline end to end; print progress, the summary and the dashboards to ``out``.

    ``wrap`` receives the :class:`Services` before the first event and returns them, changed as it likes
    (fault injection, an audit, a test's spy).
    """
    previous = transform_handler.lake  # --table-format configures the transform for this run only
    try:
        with fewer_collections():
            return _run(options, out, wrap)
    finally:
        transform_handler.configure(previous)


def _run(options: RunOptions, out: IO[str], wrap: Callable[[Services], Services] | None) -> RunSummary:
    started = time.perf_counter()  # end to end: generating the burst is part of the run
    one_malloc_arena()
    trigger = options.resolved_trigger()
    total = preflight(options)
    config = dataclasses.replace(StreamConfig.from_declarations(), table_format=options.table_format)
    summary = RunSummary(
        trigger=trigger, region=options.region, source="generated" if options.events_file is None else "read"
    )
    summary.faults = str(options.faults)
    summary.lake_table_format = options.table_format
    if options.table_format not in glue_schemas.TABLE_FORMATS:
        raise RunError(f"--table-format must be one of {', '.join(glue_schemas.TABLE_FORMATS)}")
    audit = Audit(validator(pipeline_config.embedding_dimension()), config.event_pattern)
    staged = out_folder.staging(options.out)
    try:
        with (
            EmbeddedAws(region=options.region, endpoint_url=options.endpoint_url) as aws,
            _lambda_output(options.lambda_log) as lambda_log,
            (staged / DEAD_LETTERS_FILE).open("w", encoding="utf-8") as dead_letters,
        ):
            aws.create_resources(buffer_queue=trigger == "queue")
            lake_table = _iceberg_table(options, config, staged)
            services = build_services(
                aws, config, options, trigger, lambda_log=lambda_log, dead_letters=dead_letters, iceberg=lake_table
            )
            if wrap is not None:
                services = wrap(services)
            progress = Progress(total, _progress_stream(out), detail=lambda: _progress_detail(summary, services))
            # The process clock follows the simulated clock while the handlers run (their idempotency claims read
            # the wall clock); it is released before the end phase, which stamps metrics against the real clock.
            with services.process_clock or contextlib.nullcontext():
                try:
                    simulate(audit.observe(events(options, total)), services, summary, progress=progress.update)
                finally:
                    progress.close()
                    fanout_handler.reset()
            end.finish(services, summary, staged)
            # The pipeline's wall time ends at the mirrored lake, as before; the audit and the report read it back.
            summary.seconds = time.perf_counter() - started
            dead_letters.flush()  # written as they arrived; the audit reads the file
            # An Iceberg lake is read once, as its scan (the table's deletes applied), by the audit and the dashboards.
            scanned = lake_table.scan() if lake_table is not None else None
            summary.iceberg_metadata_location = lake_table.metadata_location if lake_table is not None else None
            summary.audit = audit_run(audit, services, staged, lake_table=scanned)
            # Run once, for the report here and the printout below (the committed folder holds the same files).
            results = end.dashboards(config, summary, staged, wanted=options.dashboards, lake_table=scanned)
            end.report(staged / REPORT_FILE, services, results)
        summary.peak_rss_bytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
        if aws.dynamodb_process is not None:
            summary.dynamodb_peak_rss_bytes = aws.dynamodb_process.peak_rss_bytes
        write_summary(staged / SUMMARY_FILE, summary)
        lake = out_folder.commit(staged, options.out)
    except BaseException:
        out_folder.discard(staged)
        raise
    summary.lake = lake
    print(format_summary(summary, lake, config.active_partitions_limit), file=out)
    summary.dashboards = results or []
    for result in summary.dashboards:
        print("\n" + render(result), file=out)
    return summary


def _iceberg_table(options: RunOptions, config: StreamConfig, staged: Path) -> LakeTable | None:
    """For ``--table-format iceberg``: the run's Iceberg table (created at ``--out``, written through ``staged``),
    and the transform configured as Terraform's LAKE_TABLE_FORMAT / LAKE_DATABASE_NAME would configure it."""
    if options.table_format != "iceberg":
        transform_handler.configure(transform_handler.LakeTarget())
        return None
    from local_pipeline.iceberg_table import LakeTable  # noqa: PLC0415 - pyiceberg only for an Iceberg run

    transform_handler.configure(transform_handler.LakeTarget("iceberg", str(config.glue_table["database"])))
    return LakeTable(staged, options.out, config.table_prefix, config.glue_table)


@contextlib.contextmanager
def _lambda_output(path: Path | None) -> Iterator[IO[str] | None]:
    """The ``--lambda-log`` file, open for the run (None: the handlers' output is not kept)."""
    if path is None:
        yield None
        return
    with path.open("a", encoding="utf-8") as stream:
        yield stream


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
