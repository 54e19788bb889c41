"""The Firehose sender: PutRecordBatch within the service's limits, over one or more streams, with flow control.

A successful call can still reject entries (``FailedPutCount > 0``); only those are resent. A refusal for
throughput (a whole call or an entry failed with ``ServiceUnavailableException``) is resent for as long as the
invocation's deadline allows (:mod:`fanout_lambda.flow_control`), and to the next stream when the stack has
several: load moves off the stream that throttles. Any other failure of a whole call fails the records it
carried at once; other failed entries (``InternalFailure``) are resent ``max_attempts`` times.

With several streams a batch is spread by sale id (:func:`stream_index`), so a redelivered sale starts on the
same stream as its first delivery.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .bulk import BulkReport, Pending, submit_tasks
from .errors import DeliveryIncomplete
from .flow_control import Backoff, error_code, is_throughput

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_RECORDS",
    "MAX_RECORD_BYTES",
    "FirehoseSender",
    "SendReport",
    "chunk_positions",
    "chunked",
    "stream_index",
]

#: PutRecordBatch service limits.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024

#: One entry on its way: its position in the caller's records, its data, the index of the stream it goes to.
_Entry = tuple[int, bytes, int]


def stream_index(sale_id: str, streams: int) -> int:
    """The stream a sale goes to first: a stable hash of its id modulo the stream count (``errors reprocess``
    spreads records back with the same rule)."""
    return int.from_bytes(hashlib.blake2b(sale_id.encode(), digest_size=8).digest(), "big") % streams


@dataclass
class SendReport:
    """What one :meth:`FirehoseSender.send` call did."""

    records: int = 0
    calls: int = 0
    resent: int = 0
    error_codes: list[str] = field(default_factory=list)


class FirehoseSender:
    """PutRecordBatch over ``stream_names`` (one name, a comma-separated list, or a sequence) with the service
    limits, partial-failure handling and flow control boto3 leaves to the caller."""

    def __init__(
        self,
        client: Any,
        stream_names: str | Sequence[str],
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[float, float], float] = random.uniform,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = stream_names.split(",") if isinstance(stream_names, str) else list(stream_names)
        self.stream_names = tuple(name.strip() for name in names if name.strip())
        if not self.stream_names:
            raise ValueError("FirehoseSender needs at least one stream name")
        self._client = client
        self.backoff = Backoff(max_attempts, base_delay, max_delay, sleep, jitter, clock=clock)

    @property
    def stream_name(self) -> str:
        """The first stream (the only one in a one-stream stack)."""
        return self.stream_names[0]

    def send(self, records: Sequence[bytes]) -> SendReport:
        """Deliver every record to the first stream or raise (the failed call's error, or
        :class:`DeliveryIncomplete`)."""
        report = SendReport(records=len(records))
        for positions in chunk_positions(records):
            chunk = self._deliver_chunk([(i, records[i], 0) for i in positions])
            report.calls += chunk.calls
            report.resent += chunk.resent
            report.error_codes.extend(chunk.error_codes)
            if chunk.failed:
                error = next(iter(chunk.failed.values()))
                if isinstance(error, DeliveryIncomplete):
                    raise DeliveryIncomplete(
                        self.stream_name,
                        len(chunk.failed),
                        report.error_codes,
                        report.resent,
                        throughput=error.throughput,
                    )
                raise error
        return report

    def submit(self, records: Sequence[bytes], executor: Executor, keys: Sequence[str] | None = None) -> Pending:
        """Start delivering ``records`` (``keys``: their sale ids, which spread them over the streams), one
        PutRecordBatch chunk per pool task; failures reported per position."""
        report = BulkReport()
        by_stream: dict[int, list[int]] = {}
        for position, data in enumerate(records):
            if len(data) > MAX_RECORD_BYTES:
                report.failed[position] = ValueError(_too_large(len(data)))
                continue
            home = 0 if keys is None or len(self.stream_names) == 1 else stream_index(keys[position], self.count)
            by_stream.setdefault(home, []).append(position)
        tasks = []
        for stream, positions in sorted(by_stream.items()):
            kept = [records[i] for i in positions]
            tasks += [
                partial(self._deliver_chunk, [(positions[i], kept[i], stream) for i in chunk])
                for chunk in chunk_positions(kept)
            ]
        return submit_tasks(executor, tasks, report)

    @property
    def count(self) -> int:
        """How many streams the sender spreads over."""
        return len(self.stream_names)

    def _deliver_chunk(self, chunk: list[_Entry]) -> BulkReport:
        report = BulkReport()
        pending = chunk
        attempt, throughput = 1, False
        while True:
            if attempt > 1:
                if not self.backoff.retry(attempt, throughput=throughput):
                    break
                report.resent += len(pending)
            refused: list[tuple[_Entry, str]] = []
            for stream, entries in _by_stream(pending):
                refused += self._put(stream, entries, report)
            if not refused:
                return report
            throughput = all(is_throughput(code) for _, code in refused)
            # A throttled entry tries the next stream: load moves off the one that refused it.
            pending = [
                (position, data, (stream + 1) % self.count if is_throughput(code) else stream)
                for (position, data, stream), code in refused
            ]
            attempt += 1
        streams = sorted({self.stream_names[stream] for _, _, stream in pending})
        error = DeliveryIncomplete(
            ",".join(streams), len(pending), report.error_codes, report.resent, throughput=throughput
        )
        report.failed.update((position, error) for position, _, _ in pending)
        return report

    def _put(self, stream: int, entries: list[_Entry], report: BulkReport) -> list[tuple[_Entry, str]]:
        """One PutRecordBatch of ``entries`` to ``stream``; the entries refused, with their error codes."""
        report.calls += 1
        try:
            response = self._client.put_record_batch(
                DeliveryStreamName=self.stream_names[stream], Records=[{"Data": data} for _, data, _ in entries]
            )
        except Exception as exc:  # the whole call failed: only the records it carried
            if not is_throughput(exc):
                report.failed.update((position, exc) for position, _, _ in entries)
                return []
            code = error_code(exc) or "Throttled"
            report.error_codes.append(code)
            return [(entry, code) for entry in entries]
        if not response.get("FailedPutCount"):
            return []
        refused = [
            (entry, str(answer["ErrorCode"]))
            for entry, answer in zip(entries, response["RequestResponses"], strict=True)
            if answer.get("ErrorCode")
        ]
        report.error_codes.extend(code for _, code in refused)
        return refused  # FailedPutCount without an entry marked: nothing identifiable to resend


def _by_stream(entries: list[_Entry]) -> Iterator[tuple[int, list[_Entry]]]:
    groups: dict[int, list[_Entry]] = {}
    for entry in entries:
        groups.setdefault(entry[2], []).append(entry)
    yield from groups.items()


def chunk_positions(records: Sequence[bytes]) -> Iterator[list[int]]:
    """Positions of ``records`` grouped into PutRecordBatch calls of at most 500 records and 4 MiB."""
    chunk: list[int] = []
    size = 0
    for position, data in enumerate(records):
        if len(data) > MAX_RECORD_BYTES:
            raise ValueError(_too_large(len(data)))
        if chunk and (len(chunk) == MAX_BATCH_RECORDS or size + len(data) > MAX_BATCH_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(position)
        size += len(data)
    if chunk:
        yield chunk


def chunked(records: Sequence[bytes]) -> Iterator[list[bytes]]:
    """Split into PutRecordBatch calls of at most 500 records and 4 MiB; reject a record over 1,000 KiB."""
    for positions in chunk_positions(records):
        yield [records[i] for i in positions]


def _too_large(size: int) -> str:
    return f"Firehose record of {size} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
