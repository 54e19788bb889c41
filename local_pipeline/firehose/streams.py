"""Several identical Direct PUT streams of one stack (``firehose.stream_count``), as the fan-out sees them.

Each stream keeps its own Direct PUT quotas (they are per stream: N streams carry N times as much) and writes
into the same lake layout, its objects named after it. The fan-out's one Firehose client reaches them all by
``DeliveryStreamName``; an invocation's waits between resends are one timeline, whichever stream it calls.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from local_pipeline.context import ACCOUNT_ID
from local_pipeline.firehose.core import StreamStats
from local_pipeline.firehose.quotas import DirectPutQuota, put_record_batch_error
from local_pipeline.firehose.stream import LocalDeliveryStream

__all__ = ["DeliveryStreams", "stream_names"]


def stream_names(first: str, count: int) -> list[str]:
    """The streams' names: the first as declared, the others with ``-2``, ``-3``, ... (as Terraform names them)."""
    return [first, *(f"{first}-{n}" for n in range(2, count + 1))]


class DeliveryStreams:
    """The stack's streams: ``put_record_batch`` by name, time and the end of the run for all of them."""

    def __init__(self, build: Callable[[str], LocalDeliveryStream], names: Sequence[str]) -> None:
        self.streams = [build(name) for name in names]
        self._by_name = {stream.config.stream_name: stream for stream in self.streams}

    @property
    def names(self) -> list[str]:
        """Every stream's name, the first one first."""
        return [stream.config.stream_name for stream in self.streams]

    @property
    def quota(self) -> DirectPutQuota:
        """Each stream's Direct PUT quotas (the same for all)."""
        return self.streams[0].quota

    @property
    def stats(self) -> StreamStats:
        """The streams' counters added up (peaks and the last acceptance: the largest)."""
        total = StreamStats()
        for stream in self.streams:
            for field in dataclasses.fields(StreamStats):
                mine, theirs = getattr(total, field.name), getattr(stream.stats, field.name)
                if isinstance(mine, set):
                    mine |= theirs
                elif field.name.startswith(("peak_", "max_", "s3_max_", "last_")):
                    setattr(total, field.name, max(mine, theirs))
                else:
                    setattr(total, field.name, mine + theirs)
        return total

    def put_record_batch(self, DeliveryStreamName: str, Records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's parameter names
        """PutRecordBatch to the named stream, with its own quotas."""
        stream = self._by_name.get(DeliveryStreamName)
        if stream is None:
            raise put_record_batch_error(
                "ResourceNotFoundException", f"Firehose {DeliveryStreamName} under account {ACCOUNT_ID} not found."
            )
        return stream.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=Records)

    def new_invocation(self) -> None:
        """A new invocation of the caller starts now (see :meth:`LocalDeliveryStream.new_invocation`)."""
        for stream in self.streams:
            stream.new_invocation()

    def new_timeline(self, after_ms: int = 0) -> None:
        """The calling thread starts afresh, ``after_ms`` into the current invocation."""
        for stream in self.streams:
            stream.new_timeline(after_ms)

    def wait(self, ms: int) -> None:
        """Let ``ms`` of simulated time pass for the calling thread, whichever stream it calls next."""
        for stream in self.streams:
            stream.wait(ms)

    def longest_wait_ms(self) -> int:
        """How long the current invocation's longest timeline has waited (its time beyond the modelled work)."""
        return self.streams[0].longest_wait_ms()

    def caller_now_ms(self) -> int:
        """The calling thread's simulated now."""
        return self.streams[0].caller_now_ms()

    def advance_to(self, now_ms: int) -> None:
        """Let simulated time pass: every stream's due flushes, in time order across the streams."""
        while True:
            dues = [(due, n) for n, stream in enumerate(self.streams) if (due := stream.next_due_ms()) is not None]
            due, first = min(dues, default=(None, 0))
            if due is None or due > now_ms:
                break
            self.streams[first].advance_to(due)
        for stream in self.streams:
            stream.advance_to(now_ms)

    def close(self) -> None:
        """End of the run: every stream flushes its buffers and puts its metrics."""
        for stream in self.streams:
            stream.close()
