"""One malloc arena for the whole process: the run's resident set, held down from inside."""

from __future__ import annotations

import ctypes

__all__ = ["one_malloc_arena"]

#: glibc's mallopt parameter that caps the number of malloc arenas (malloc.h).
_M_ARENA_MAX = -8


def one_malloc_arena() -> None:
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
