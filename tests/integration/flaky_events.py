"""An EventBridge client wrapper that rejects chosen entries with an ErrorCode, as PutEvents can on AWS.

moto never reports ``FailedEntryCount`` for a well-formed entry; this wrapper gives the entries a predicate
picks an ``ErrorCode`` (``FailedEntryCount`` counts them) and passes the others to the real client, so the
accepted ones really reach the bus.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from operations.aws import AwsOptions

#: ``(entry, attempt of this entry) -> ErrorCode or None``; attempts count from 1 per distinct Detail.
Rule = Callable[[dict[str, Any], int], str | None]


class FlakyEvents:
    """Wraps a boto3 ``events`` client; ``rule`` decides which entries fail."""

    def __init__(self, real: Any, rule: Rule) -> None:
        self._real = real
        self._rule = rule
        self.calls: list[int] = []  # entries per put_events call
        self.attempts: dict[str, int] = {}

    def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        assert len(Entries) <= 10, "PutEvents takes at most 10 entries"
        self.calls.append(len(Entries))
        codes = []
        for entry in Entries:
            attempt = self.attempts[entry["Detail"]] = self.attempts.get(entry["Detail"], 0) + 1
            codes.append(self._rule(entry, attempt))
        passed = [entry for entry, code in zip(Entries, codes, strict=True) if code is None]
        real = iter(self._real.put_events(Entries=passed)["Entries"] if passed else [])
        results = [next(real) if code is None else {"ErrorCode": code, "ErrorMessage": "injected"} for code in codes]
        return {"FailedEntryCount": sum(1 for code in codes if code), "Entries": results}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def inject(monkeypatch: pytest.MonkeyPatch, rule: Rule) -> list[FlakyEvents]:
    """Make every ``events`` client the commands build a :class:`FlakyEvents`; return the wrappers made."""
    made: list[FlakyEvents] = []
    original = AwsOptions.client

    def client(self: AwsOptions, service: str) -> Any:
        real = original(self, service)
        if service != "events":
            return real
        wrapper = FlakyEvents(real, rule)
        made.append(wrapper)
        return wrapper

    monkeypatch.setattr(AwsOptions, "client", client)
    return made
