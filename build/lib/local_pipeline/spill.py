"""Bodies a simulated queue holds, kept in a temporary file instead of memory.

A burst of 50,000 sale events offered at 5,000 events/s sits almost whole in the buffer queue (or in Lambda's
asynchronous retry queue) while the fan-out drains it at the rate Firehose allows: ~11 KB of JSON each, over
half a gigabyte as Python strings. The queues keep each body here, written once when it arrives and read back
at each delivery, so a run's memory does not grow with the size of the backlog (the operating system's page
cache holds what is read often). The file is deleted when it is closed or the process ends.
"""

from __future__ import annotations

import os
import tempfile
import threading
import weakref
from pathlib import Path
from typing import NamedTuple

__all__ = ["BodyFile", "BodyRef"]


class BodyRef(NamedTuple):
    """Where one body is in the file."""

    offset: int
    length: int


class BodyFile:
    """An append-only temporary file of byte strings; threads may put and get at the same time (the fan-out's
    pool sends dead letters from several threads at once)."""

    def __init__(self) -> None:
        handle, name = tempfile.mkstemp(prefix="sales-pipeline-bodies-")
        Path(name).unlink()  # nameless from the start: the space is freed when the descriptor is closed
        self._fd = handle
        self._end = 0
        self._reserve = threading.Lock()
        self._finalizer = weakref.finalize(self, os.close, handle)

    def put(self, body: bytes) -> BodyRef:
        """Write ``body`` at the end of the file; return where it is."""
        with self._reserve:  # each body gets its own range; the writes themselves may overlap in time
            ref = BodyRef(self._end, len(body))
            self._end += len(body)
        written = os.pwrite(self._fd, body, ref.offset)
        if written != len(body):  # pragma: no cover - a full disk
            raise OSError(f"short write: {written} of {len(body)} bytes")
        return ref

    def get(self, ref: BodyRef) -> bytes:
        """The body written at ``ref``."""
        data = os.pread(self._fd, ref.length, ref.offset)
        if len(data) != ref.length:  # pragma: no cover - the file is ours alone
            raise OSError(f"short read at {ref.offset}: {len(data)} of {ref.length} bytes")
        return data

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._end

    def close(self) -> None:
        """Delete the file (also done when this object is collected)."""
        self._finalizer()
