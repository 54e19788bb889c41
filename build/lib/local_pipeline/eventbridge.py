"""EventBridge rule pattern matching, so that only events the deployed rule would deliver reach the fan-out.

moto's ``test_event_pattern`` is not implemented and a rule with a Lambda target cannot be exercised, so the
local bus matches patterns itself. Supported: exact values (strings, numbers, booleans, null), nested
objects, array-valued event fields (any element may match) and the content filters ``prefix``, ``suffix``,
``anything-but`` and ``exists``. An unsupported filter raises instead of silently matching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["UnsupportedPatternError", "matches"]

_MISSING = object()


class UnsupportedPatternError(ValueError):
    """The pattern uses an EventBridge feature this local matcher does not implement."""


def matches(pattern: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Return whether ``event`` matches the EventBridge ``pattern`` (every field of the pattern must match)."""
    for key, expected in pattern.items():
        actual = event.get(key, _MISSING) if isinstance(event, Mapping) else _MISSING
        if isinstance(expected, Mapping):
            if not isinstance(actual, Mapping) or not matches(expected, actual):
                return False
        elif isinstance(expected, Sequence) and not isinstance(expected, str):
            if not _field_matches(expected, actual):
                return False
        else:
            raise UnsupportedPatternError(f"pattern field {key!r} must be an array or an object, got {expected!r}")
    return True


def _field_matches(allowed: Sequence[Any], actual: Any) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    return any(_value_matches(rule, value) for rule in allowed for value in values) or (
        actual is _MISSING and any(_matches_missing(rule) for rule in allowed)
    )


def _matches_missing(rule: Any) -> bool:
    return isinstance(rule, Mapping) and rule.get("exists") is False


def _value_matches(rule: Any, value: Any) -> bool:
    if value is _MISSING:
        return False
    if not isinstance(rule, Mapping):
        # JSON equality: 1 == 1.0 but True is not 1.
        return (type(rule) is type(value) and rule == value) or _same_number(rule, value)
    if len(rule) != 1:
        raise UnsupportedPatternError(f"a content filter has exactly one key, got {dict(rule)!r}")
    ((name, arg),) = rule.items()
    if name == "exists":
        return bool(arg)
    if name == "prefix":
        return isinstance(value, str) and value.startswith(arg)
    if name == "suffix":
        return isinstance(value, str) and value.endswith(arg)
    if name == "anything-but":
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_value_matches(item, value) for item in excluded)
    raise UnsupportedPatternError(f"content filter {name!r} is not supported by the local matcher")


def _same_number(rule: Any, value: Any) -> bool:
    numeric = (int, float)
    return (
        isinstance(rule, numeric)
        and isinstance(value, numeric)
        and not isinstance(rule, bool)
        and not isinstance(value, bool)
        and rule == value
    )
