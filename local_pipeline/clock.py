"""The simulated clock every simulated service of the local run shares (Firehose, Lambda, the buffer queue).

Time is epoch milliseconds that move only when the runner says so, so a 300 s buffering interval or a
two-minute retry wait costs no wall-clock time. It lives apart from any one service because all of them
read it: a service module importing another's just for the clock would tie them together for nothing.
"""

from __future__ import annotations

__all__ = ["SimulatedClock"]


class SimulatedClock:
    """Epoch milliseconds that move only when the runner says so."""

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def advance_to(self, ms: int) -> None:
        """Move forward to ``ms`` (never backwards)."""
        self.now_ms = max(self.now_ms, ms)
