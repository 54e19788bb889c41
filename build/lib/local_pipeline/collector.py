"""The garbage collector's settings for a local run (the run's own process and the embedded DynamoDB's).

A run holds a large, long-lived heap (moto's backends, botocore's service models, the embedded DynamoDB's
tables) while it allocates and drops millions of containers. With CPython's default thresholds (700, 10, 10)
the oldest generation was collected every second or so, each pass walking the whole long-lived heap: five
full collections took 0.40 s of the default run's 6 s (gc callbacks), and 8% of the embedded DynamoDB's time.

So during a run, what the process already held (its imports) is frozen out of the collector's sight, and the
oldest generation is collected ten times less often. The young generations keep their default thresholds:
some garbage is cyclic (each request moto's stubber answers in this process leaves a werkzeug request holding
its body in a cycle, and at 100,000 events a body is a Parquet object of megabytes), and collecting the
youngest generation every 5,000 allocations instead of 700 raised the 100,000-event run's resident set from
403 MB to 599 MB. Measured on the default run (gc callbacks): 0.55 s of collection with the defaults (and
the fan-out's batches still in reference cycles, see ``fanout_lambda.batch._without_traceback``), 0.17 s now.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

#: CPython's thresholds for the two young generations; the oldest is collected every 100 collections of the
#: middle one instead of every 10 (and still only when it has grown by a quarter since, as CPython requires).
RUN_THRESHOLDS = (700, 10, 100)


_lock = threading.Lock()
_depth = 0
_before: tuple[int, ...] = ()


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Inside: :data:`RUN_THRESHOLDS`, and everything already allocated (after one full collection, so no
    garbage of an earlier run is frozen with it) out of the collector's sight. Only the outermost exit undoes
    both (``gc.unfreeze`` releases everything frozen: nothing else in this process freezes)."""
    global _depth, _before  # noqa: PLW0603 - one setting per process, shared by nested or concurrent runs
    with _lock:
        if _depth == 0:
            _before = gc.get_threshold()
            gc.collect()
            gc.freeze()
            gc.set_threshold(*RUN_THRESHOLDS)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_before)
                gc.unfreeze()
