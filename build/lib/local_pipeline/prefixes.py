"""Firehose S3 prefix expressions and object names, evaluated the way the service evaluates them.

Expressions are ``!{namespace:value}`` with the namespaces ``partitionKeyFromLambda``,
``partitionKeyFromQuery``, ``timestamp`` (a Java ``DateTimeFormatter`` pattern, evaluated on the approximate
arrival time of the OLDEST record in the object, UTC) and ``firehose`` (``error-output-type`` or
``random-string``). Object keys are ``<evaluated prefix><stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid><ext>``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime

__all__ = ["PrefixEvaluationError", "evaluate", "format_java_datetime", "object_key", "partition_key_names"]

_EXPRESSION = re.compile(r"!\{([A-Za-z]+):([^}]*)\}")


class PrefixEvaluationError(ValueError):
    """A prefix expression cannot be evaluated for a record (an unknown key, namespace or pattern)."""


def partition_key_names(prefix: str) -> list[str]:
    """The ``partitionKeyFromLambda`` keys a prefix refers to, in order."""
    return [value for namespace, value in _EXPRESSION.findall(prefix) if namespace == "partitionKeyFromLambda"]


def evaluate(
    prefix: str,
    *,
    timestamp: datetime,
    partition_keys: Mapping[str, str] | None = None,
    error_output_type: str | None = None,
    random_string: Callable[[], str] | None = None,
) -> str:
    """Evaluate every ``!{...}`` expression of ``prefix``; raise :class:`PrefixEvaluationError` if one cannot be.

    Every ``timestamp`` expression evaluates the same instant, as the service documents.
    """
    keys = partition_keys or {}

    def replace(match: re.Match[str]) -> str:
        namespace, value = match.group(1), match.group(2)
        if namespace in {"partitionKeyFromLambda", "partitionKeyFromQuery"}:
            if value not in keys:
                raise PrefixEvaluationError(f"partition key {value!r} was not provided for {match.group(0)}")
            return keys[value]
        if namespace == "timestamp":
            return format_java_datetime(timestamp, value)
        if namespace == "firehose":
            return _firehose_value(value, error_output_type, random_string)
        raise PrefixEvaluationError(f"unknown namespace {namespace!r} in {match.group(0)}")

    return _EXPRESSION.sub(replace, prefix)


def _firehose_value(value: str, error_output_type: str | None, random_string: Callable[[], str] | None) -> str:
    if value == "error-output-type":
        if error_output_type is None:
            raise PrefixEvaluationError("!{firehose:error-output-type} is allowed only in the error output prefix")
        return error_output_type
    if value == "random-string":
        return random_string() if random_string else uuid.uuid4().hex[:11]
    raise PrefixEvaluationError(f"unknown firehose namespace value {value!r}")


def _month(moment: datetime, run: int) -> str:
    if run >= 3:  # MMM, MMMM, MMMMM are month names (Jan, January, J), not digits: refuse rather than misrender
        raise PrefixEvaluationError(f"timestamp pattern {'M' * run!r} (month as text) is not supported; use MM")
    return f"{moment.month:0{run}d}"


# Java DateTimeFormatter letters this project needs; each maps to a strftime-like rendering.
_JAVA_FIELDS: dict[str, Callable[[datetime, int], str]] = {
    "y": lambda t, n: f"{t.year % 100:02d}" if n == 2 else f"{t.year:0{n}d}",
    "u": lambda t, n: f"{t.year % 100:02d}" if n == 2 else f"{t.year:0{n}d}",
    "M": _month,
    "d": lambda t, n: f"{t.day:0{n}d}",
    "H": lambda t, n: f"{t.hour:0{n}d}",
    "m": lambda t, n: f"{t.minute:0{n}d}",
    "s": lambda t, n: f"{t.second:0{n}d}",
    "S": lambda t, n: f"{t.microsecond:06d}"[:n].ljust(n, "0"),
    "D": lambda t, n: f"{t.timetuple().tm_yday:0{n}d}",
}


def format_java_datetime(moment: datetime, pattern: str) -> str:
    """Render ``moment`` with a Java ``DateTimeFormatter`` pattern (numeric fields and quoted literals)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "'":
            end = pattern.find("'", i + 1)
            if end == -1:
                raise PrefixEvaluationError(f"unterminated quote in timestamp pattern {pattern!r}")
            out.append("'" if end == i + 1 else pattern[i + 1 : end])
            i = end + 1
            continue
        if char.isalpha():
            run = len(pattern) - i - len(pattern[i:].lstrip(char))
            render = _JAVA_FIELDS.get(char)
            if render is None:
                raise PrefixEvaluationError(f"timestamp pattern letter {char!r} is not supported in {pattern!r}")
            out.append(render(moment, run))
            i += run
            continue
        out.append(char)
        i += 1
    return "".join(out)


def object_key(
    evaluated_prefix: str, *, stream_name: str, stream_version: int, delivered_at: datetime, file_extension: str = ""
) -> str:
    """The key Firehose gives an object: the evaluated prefix, then the stream, version, time and a UUID."""
    stamp = delivered_at.strftime("%Y-%m-%d-%H-%M-%S")
    return f"{evaluated_prefix}{stream_name}-{stream_version}-{stamp}-{uuid.uuid4()}{file_extension}"
