"""The garbage collector's settings for a local run (the run's own process and the embedded DynamoDB's).

A run builds and drops millions of small containers (every event's 1,024-float embedding as a list, parsed and
serialised several times over; every DynamoDB request's dicts) while holding a large, long-lived heap (moto's
backends, botocore's service models, the tables in the embedded DynamoDB). With CPython's default thresholds
the allocations set off a full collection every few hundred milliseconds, each walking the whole long-lived
heap: five full collections took 0.40 s of the default run's 6 s, and 10% of the embedded DynamoDB's time.
Almost none of this garbage is cyclic (reference counting frees it), so the young generation is collected
less often and the older ones rarely; what the process held before the run (imports) is moved out of the
collector's sight for good (``gc.freeze``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Collect the young generation every 20,000 net allocations (CPython's default: 700), the middle one every
#: 20 young collections and the oldest every 20 middle ones (defaults 10, 10).
RUN_THRESHOLDS = (20_000, 20, 20)


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Inside: :data:`RUN_THRESHOLDS`, and everything already allocated frozen. On exit both are undone."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
