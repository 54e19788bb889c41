"""What the bulk adapters share: a report per input position, and chunk calls in flight on a pool."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

__all__ = ["BulkReport", "Pending", "submit_tasks"]


@dataclass
class BulkReport:
    """What a bulk operation did: the input positions not written (with why), calls made, entries resent."""

    failed: dict[int, BaseException] = field(default_factory=dict)
    calls: int = 0
    resent: int = 0
    error_codes: list[str] = field(default_factory=list)
    #: Per input position, the id the service gave the entry (SQS message ids).
    ids: dict[int, str] = field(default_factory=dict)

    def absorb(self, other: BulkReport) -> None:
        """Add ``other`` (another chunk of the same operation) to this report."""
        self.failed.update(other.failed)
        self.calls += other.calls
        self.resent += other.resent
        self.error_codes.extend(other.error_codes)
        self.ids.update(other.ids)


class Pending:
    """Chunk calls submitted to a pool; :meth:`result` waits for all of them and merges their reports."""

    def __init__(self, futures: list[Future[BulkReport]], report: BulkReport | None = None) -> None:
        self._futures = futures
        self._report = report or BulkReport()

    def result(self) -> BulkReport:
        """The merged report. A ``BaseException`` in a call (not an SDK error) propagates: nothing can clean up."""
        for future in self._futures:
            self._report.absorb(future.result())
        self._futures = []
        return self._report


def submit_tasks(
    executor: Executor, tasks: Sequence[Callable[[], BulkReport]], report: BulkReport | None = None
) -> Pending:
    """Start ``tasks`` on ``executor``; their reports merge into ``report`` when waited for."""
    return Pending([executor.submit(task) for task in tasks], report)
