"""The delivery latency's other end: when each event still in the pipeline arrived on the bus."""

from __future__ import annotations

from typing import Any

__all__ = ["InFlight", "event_id"]


class InFlight:
    """Bus arrival moments of the events the pipeline is still working on, for the delivery latency.

    An event is added when the rule delivers it and forgotten once its message is deleted (queue) or its
    invocation settled (direct); a record reaching Firehose is traced back to it by its ``eventId``.
    """

    def __init__(self) -> None:
        self._arrivals: dict[str, list[int]] = {}

    def add(self, event_id: str, arrival_ms: int) -> None:
        """An event (or another copy of it) entered the pipeline."""
        entry = self._arrivals.get(event_id)
        if entry is None:
            self._arrivals[event_id] = [arrival_ms, 1]
        else:
            entry[0] = min(entry[0], arrival_ms)
            entry[1] += 1

    def done(self, event_id: str | None) -> None:
        """One copy of an event left the pipeline."""
        entry = self._arrivals.get(event_id) if event_id is not None else None
        if entry is not None:
            entry[1] -= 1
            if entry[1] <= 0:
                del self._arrivals[event_id]  # type: ignore[arg-type]

    def origin_of(self, data: bytes) -> int | None:
        """The bus arrival of the event a Firehose record carries (found by its ``eventId``)."""
        start = data.rfind(b'"eventId":"')
        if start < 0:
            return None
        start += len(b'"eventId":"')
        end = data.find(b'"', start)
        entry = self._arrivals.get(data[start:end].decode(errors="replace"))
        return entry[0] if entry is not None else None

    def __len__(self) -> int:
        return len(self._arrivals)


def event_id(event: Any) -> str | None:
    """An EventBridge event's ``id`` (None when it has none: such an event is not traced)."""
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None
