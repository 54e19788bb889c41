"""What ``sales-pipeline run`` was asked to do, and every check an argument can fail before anything starts."""

from __future__ import annotations

import os
import socket
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pipeline_config
from local_pipeline import out_folder
from local_pipeline.dynamodb.limits import NEW_TABLE_WRITE_UNITS, TABLE_WRITE_QUOTA_UNITS
from local_pipeline.faults import FaultSpec
from local_pipeline.generator import BadEventsFile, BurstSpec, GeneratedEvent, count_events, events_from_file, generate
from local_pipeline.lambda_service import InvocationTiming

__all__ = ["DEFAULT_EVENTS", "RunError", "RunOptions", "Trigger", "events", "preflight"]

#: Measured on a 2-core machine: the default run finishes well under a minute (see BENCHMARKS.md).
DEFAULT_EVENTS = 3000
#: Socket timeout of the ``--endpoint-url`` check.
_ENDPOINT_CHECK_SECONDS = 3.0

Trigger = Literal["queue", "direct"]
#: The most streams a run (and Terraform's firehose_stream_count) deploys.
MAX_FIREHOSE_STREAMS = 50


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
    firehose_streams: int | None = None  # None: pipeline.json's firehose.stream_count, as Terraform's default
    table_format: str = "parquet"  # --table-format: "parquet" or "iceberg", as Terraform's lake_table_format
    #: The write capacity each table and index starts with (None: a new on-demand table's 4,000 units/s).
    dynamodb_warm_writes: int | None = None

    def resolved_firehose_streams(self) -> int:
        """How many Direct PUT streams this run deploys."""
        count = self.firehose_streams or int(pipeline_config.load()["firehose"]["stream_count"])
        if not 1 <= count <= MAX_FIREHOSE_STREAMS:
            raise RunError(f"--firehose-streams must be from 1 to {MAX_FIREHOSE_STREAMS}, got {count}")
        return count

    def resolved_dynamodb_warm_writes(self) -> int:
        """The write units per second each table and index serves at the start of this run."""
        warm = NEW_TABLE_WRITE_UNITS if self.dynamodb_warm_writes is None else self.dynamodb_warm_writes
        if not 1 <= warm <= TABLE_WRITE_QUOTA_UNITS:
            raise RunError(
                f"--dynamodb-warm-writes must be from 1 to {TABLE_WRITE_QUOTA_UNITS:,} (DynamoDB's default per-table "
                f"quota), got {warm}"
            )
        return warm

    def resolved_trigger(self) -> Trigger:
        """The trigger this run uses."""
        declared = pipeline_config.load()["fanout_trigger"]
        trigger = self.trigger or declared
        if trigger not in {"queue", "direct"}:
            raise RunError(f"trigger must be 'queue' or 'direct', got {trigger!r}")
        return trigger


def preflight(options: RunOptions) -> int:
    """Every check a user's argument can fail, before anything is created; return the number of events."""
    options.resolved_dynamodb_warm_writes()
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


def events(options: RunOptions, total: int) -> Iterator[GeneratedEvent]:
    """The run's events, one at a time: the seeded burst, or ``--events`` spread over the burst's seconds."""
    spec = BurstSpec(events=options.events, seed=options.seed, burst_seconds=options.burst_seconds)
    if options.events_file is None:
        return generate(spec)
    return events_from_file(options.events_file, start=spec.start, burst_seconds=spec.burst_seconds, total=total)


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
