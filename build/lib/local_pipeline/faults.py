"""Fault injection for the local runtime: failing AWS services, answered by the pipeline's real code paths.

``sales-pipeline run --faults dynamodb-throttle=0.1,fanout-crash=0.02`` wraps the clients and services the
runner hands to the handlers and to the local Firehose; the handlers themselves are never changed. Each fault is
injected where AWS would produce it:

- ``dynamodb-throttle``: a fan-out DynamoDB call fails with ``ProvisionedThroughputExceededException`` or
  ``ThrottlingException`` (a botocore ``ClientError``, as after botocore's own retries); a BatchWriteItem either
  fails so or succeeds with some requests in ``UnprocessedItems``.
- ``firehose-unavailable``: a PutRecordBatch call fails as a whole with ``ServiceUnavailableException``.
- ``firehose-partial``: a PutRecordBatch call succeeds with some entries failed (``FailedPutCount > 0``).
- ``fanout-crash``: the fan-out invocation dies as a timeout would: after its DynamoDB writes, at its
  PutRecordBatch, before Firehose accepted anything. :class:`FanoutCrash` is a ``BaseException`` the handler
  cannot catch, and every later AWS call of the same invocation raises it too, so no clean-up runs: the
  idempotency claims stay INPROGRESS. :func:`crashable` reports it to the runtime as Lambda's timeout.
- ``transform-error``: a transform invocation fails (Firehose retries it ``NumberOfRetries`` times, then writes
  the batch to ``processing-failed``).
- ``s3-unavailable``: an S3 PutObject by the local Firehose fails (503 SlowDown / ServiceUnavailable, 500
  InternalError); Firehose retries the delivery, nothing is dropped.
- ``sqs-redelivery``: the buffer queue delivers a message again although it was deleted (at-least-once).

Rates are probabilities per call (per invocation for ``transform-error``, per deleted message for
``sqs-redelivery``), drawn from the run's seed: the same seed and spec inject the same faults. Draws for calls
the fan-out makes concurrently (its thread pool) are keyed on the call's content and how often that content was
sent, not on arrival order, so thread scheduling cannot change which calls fail.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from local_pipeline.client_errors import client_error
from local_pipeline.clock import ProcessClock  # re-exported: the runner wires it with the faults

__all__ = [
    "FAULTS",
    "FanoutCrash",
    "FaultInjector",
    "FaultSpec",
    "FaultSpecError",
    "FaultyDynamoDB",
    "FaultyFirehose",
    "FaultyS3",
    "FaultySqs",
    "ProcessClock",
    "TaskTimedOut",
    "client_error",
    "crashable",
    "faulty_transform",
]

#: Every fault this module can inject, with what it does (the ``--help`` text and the one-line errors list them).
FAULTS: Mapping[str, str] = {
    "dynamodb-throttle": "fan-out DynamoDB calls throttled; BatchWriteItem returns UnprocessedItems",
    "firehose-unavailable": "PutRecordBatch fails as a whole with ServiceUnavailableException",
    "firehose-partial": "PutRecordBatch succeeds with some entries failed (FailedPutCount > 0)",
    "fanout-crash": "the fan-out invocation times out after its DynamoDB writes, before Firehose accepts",
    "transform-error": "a transform invocation fails; Firehose retries, then writes processing-failed",
    "s3-unavailable": "an S3 PutObject by Firehose fails; Firehose retries the delivery",
    "sqs-redelivery": "the buffer queue delivers a deleted message again (at-least-once)",
}

_THROTTLES = ("ProvisionedThroughputExceededException", "ThrottlingException")
_THROTTLE_MESSAGES = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was "
    "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
}
_S3_ERRORS = (
    ("SlowDown", 503, "Please reduce your request rate."),
    ("InternalError", 500, "We encountered an internal error. Please try again."),
    ("ServiceUnavailable", 503, "Service is unable to handle request."),
)
#: DynamoDB operations that read or write a table (the ones a throttle can hit).
_DYNAMODB_CALLS = frozenset(
    {
        "get_item",
        "put_item",
        "update_item",
        "delete_item",
        "batch_write_item",
        "batch_get_item",
        "query",
        "scan",
        "transact_write_items",
        "transact_get_items",
    }
)
#: Attributes that identify an item: draws are keyed on them (a sale item's ``ttl`` changes with the clock).
_KEY_ATTRIBUTES = ("id", "PK", "SK")


class FaultSpecError(ValueError):
    """A ``--faults`` value that cannot be used; the message is one line naming the part at fault."""


class FanoutCrash(BaseException):
    """The fan-out invocation died (timed out). A ``BaseException``, so ``except Exception`` in the handler or in
    Powertools cannot catch it and no clean-up (releasing claims) runs; the runtime counts a failed invocation."""


@dataclass(frozen=True)
class FaultSpec:
    """Which faults to inject, and how often: ``name=rate`` pairs, rate in [0, 1]."""

    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> FaultSpec:
        """Parse ``name=rate,name=rate`` (empty or None: no faults); raise :class:`FaultSpecError` in one line."""
        rates: dict[str, float] = {}
        for raw in (text or "").split(","):
            part = raw.strip()
            if not part:
                continue
            name, sep, value = (piece.strip() for piece in part.partition("="))
            if name not in FAULTS:
                raise FaultSpecError(f"unknown fault {name!r}; known faults: {', '.join(FAULTS)}")
            if not sep or not value:
                raise FaultSpecError(f"fault {name!r} needs a rate: {name}=RATE with RATE between 0 and 1")
            try:
                rate = float(value)
            except ValueError:
                raise FaultSpecError(f"fault {name!r}: rate {value!r} is not a number between 0 and 1") from None
            if not 0.0 <= rate <= 1.0:  # also false for NaN
                raise FaultSpecError(f"fault {name!r}: rate {value} is outside 0-1")
            if name in rates:
                raise FaultSpecError(f"fault {name!r} is given twice")
            rates[name] = rate
        return cls(tuple(rates.items()))

    def rate(self, name: str) -> float:
        """The rate of ``name`` (0 when not asked for)."""
        return dict(self.rates).get(name, 0.0)

    def __bool__(self) -> bool:
        return any(rate > 0 for _, rate in self.rates)

    def __str__(self) -> str:
        return ",".join(f"{name}={rate:g}" for name, rate in self.rates) or "none"


@dataclass
class FaultInjector:
    """Draws the faults of one run from its seed and counts what it injected.

    ``dead`` is set when a fan-out invocation crashes; every wrapped fan-out client raises :class:`FanoutCrash`
    until the runtime starts the next invocation (:meth:`begin_invocation`).
    """

    spec: FaultSpec
    seed: int = 7
    injected: Counter[str] = field(default_factory=Counter)
    dead: bool = False
    _streams: dict[str, random.Random] = field(default_factory=dict, repr=False)
    _sent: Counter[str] = field(default_factory=Counter, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def active(self, name: str) -> bool:
        """Whether ``name`` can be injected at all in this run."""
        return self.spec.rate(name) > 0

    def draw(self, name: str) -> bool:
        """Whether the next call (of a single-threaded caller) fails with ``name``: one stream per fault."""
        rate = self.spec.rate(name)
        if rate <= 0:
            return False
        with self._lock:
            stream = self._streams.setdefault(name, random.Random(f"{self.seed}/{name}"))  # noqa: S311 - not secrets
            hit = stream.random() < rate
            if hit:
                self.injected[name] += 1
        return hit

    def draw_for(self, name: str, content: bytes) -> random.Random | None:
        """Whether a call carrying ``content`` fails with ``name``, independent of thread order.

        Returns a generator seeded for this very call (to pick which entries fail), or None for no fault. The
        n-th identical send gets its own draw, so a resend can succeed.
        """
        rate = self.spec.rate(name)
        if rate <= 0:
            return None
        digest = hashlib.blake2b(content, digest_size=12).hexdigest()
        with self._lock:
            self._sent[f"{name}/{digest}"] += 1
            attempt = self._sent[f"{name}/{digest}"]
        rng = random.Random(f"{self.seed}/{name}/{digest}/{attempt}")  # noqa: S311 - reproducible, not secrets
        if rng.random() >= rate:
            return None
        with self._lock:
            self.injected[name] += 1
        return rng

    def begin_invocation(self) -> None:
        """A new fan-out invocation starts (a fresh execution environment after a crash)."""
        self.dead = False

    def crash(self) -> FanoutCrash:
        """Mark the current invocation dead; return the exception to raise."""
        self.dead = True
        return FanoutCrash("fan-out invocation timed out (injected fanout-crash)")

    def check_alive(self) -> None:
        """Raise :class:`FanoutCrash` when the current invocation already crashed: a dead process makes no calls."""
        if self.dead:
            raise FanoutCrash("fan-out invocation already timed out (injected fanout-crash)")


def _operation(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


def _item_keys(value: Any) -> Iterable[str]:
    """The identifying attribute values (``id``, ``PK``, ``SK``) anywhere in a DynamoDB request, in request order."""
    if isinstance(value, Mapping):
        for name, inner in value.items():
            if name in _KEY_ATTRIBUTES and isinstance(inner, Mapping) and isinstance(inner.get("S"), str):
                yield f"{name}={inner['S']}"
            elif isinstance(inner, Mapping | list):
                yield from _item_keys(inner)
    elif isinstance(value, list):
        for entry in value:
            yield from _item_keys(entry)


class _Proxy:
    """Forwards everything it does not override to the wrapped client."""

    def __init__(self, client: Any, injector: FaultInjector) -> None:
        self._client = client
        self._injector = injector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class FaultyDynamoDB(_Proxy):
    """The fan-out's DynamoDB client with ``dynamodb-throttle`` (and the crash's dead-process rule)."""

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if name not in _DYNAMODB_CALLS:
            return target

        def call(**kwargs: Any) -> Any:
            self._injector.check_alive()
            content = "|".join([name, str(kwargs.get("TableName", "")), *_item_keys(kwargs)]).encode()
            rng = self._injector.draw_for("dynamodb-throttle", content)
            if rng is None:
                return target(**kwargs)
            if name == "batch_write_item" and rng.random() < 0.5:
                return self._partly_unprocessed(kwargs, rng)
            code = rng.choice(_THROTTLES)
            raise client_error(code, _THROTTLE_MESSAGES[code], _operation(name), 400)

        return call

    def _partly_unprocessed(self, kwargs: dict[str, Any], rng: random.Random) -> Any:
        """Apply some requests, hand the others back in ``UnprocessedItems`` (at least one, as under throttling)."""
        kept: dict[str, list[Any]] = {}
        unprocessed: dict[str, list[Any]] = {}
        for table, requests in kwargs["RequestItems"].items():
            back = [request for request in requests if rng.random() < 0.5] or [rng.choice(requests)]
            unprocessed[table] = back
            rest = [request for request in requests if request not in back]
            if rest:
                kept[table] = rest
        response: dict[str, Any] = (
            self._client.batch_write_item(**{**kwargs, "RequestItems": kept}) if kept else {"UnprocessedItems": {}}
        )
        merged = dict(response.get("UnprocessedItems") or {})
        for table, requests in unprocessed.items():
            merged[table] = [*merged.get(table, []), *requests]
        return {**response, "UnprocessedItems": merged}


class FaultyFirehose(_Proxy):
    """The Firehose client the fan-out sees: ``firehose-unavailable``, ``firehose-partial`` and ``fanout-crash``."""

    def put_record_batch(self, DeliveryStreamName: str, Records: list[Mapping[str, Any]]) -> Any:  # noqa: N803
        """PutRecordBatch with the injected failures; accepted entries reach the real stream."""
        injector = self._injector
        injector.check_alive()
        content = b"\x1e".join(bytes(record["Data"]) for record in Records)
        if injector.draw_for("fanout-crash", content) is not None:
            raise injector.crash()
        if injector.draw_for("firehose-unavailable", content) is not None:
            raise client_error("ServiceUnavailableException", "Slow down.", "PutRecordBatch", 503)
        rng = injector.draw_for("firehose-partial", content)
        if rng is None:
            return self._client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=Records)
        failed = {i for i in range(len(Records)) if rng.random() < 0.5} or {rng.randrange(len(Records))}
        accepted = [record for i, record in enumerate(Records) if i not in failed]
        real: dict[str, Any] = (
            self._client.put_record_batch(DeliveryStreamName=DeliveryStreamName, Records=accepted)
            if accepted
            else {"FailedPutCount": 0, "Encrypted": False, "RequestResponses": []}
        )
        answers = iter(real["RequestResponses"])
        responses = [
            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "Slow down."} if i in failed else next(answers)
            for i in range(len(Records))
        ]
        return {
            **real,
            "FailedPutCount": int(real.get("FailedPutCount", 0)) + len(failed),
            "RequestResponses": responses,
        }


class FaultySqs(_Proxy):
    """The fan-out's SQS client (its dead-letter queue): no fault of its own, but a crashed invocation sends nothing."""

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not name.startswith("send_message"):
            return target

        def call(**kwargs: Any) -> Any:
            self._injector.check_alive()
            return target(**kwargs)

        return call


class FaultyS3(_Proxy):
    """The local Firehose's S3 client with ``s3-unavailable`` on PutObject."""

    def put_object(self, **kwargs: Any) -> Any:
        """PutObject, failing before anything is stored when the fault is drawn."""
        if self._injector.draw("s3-unavailable"):
            code, status, message = _S3_ERRORS[self._injector.injected["s3-unavailable"] % len(_S3_ERRORS)]
            raise client_error(code, message, "PutObject", status)
        return self._client.put_object(**kwargs)


def faulty_transform(transform: Callable[[Any, Any], Any], injector: FaultInjector) -> Callable[[Any, Any], Any]:
    """The transform Lambda as Firehose invokes it, failing (as a function error or timeout) when drawn."""

    def invoke(event: Any, context: Any) -> Any:
        if injector.draw("transform-error"):
            raise TransformFailed("transform invocation failed (injected transform-error)")
        return transform(event, context)

    return invoke


class TransformFailed(RuntimeError):
    """An injected transform invocation failure (Firehose sees a function error)."""


class TaskTimedOut(RuntimeError):
    """How the runtime reports a crashed fan-out invocation: Lambda's "Task timed out" function error."""


def crashable(
    handler: Callable[[Any, Any], Any],
    injector: FaultInjector,
    *,
    on_crash: Callable[[], None],
    timeout_seconds: float = 30.0,
) -> Callable[[Any, Any], Any]:
    """The fan-out as the Lambda service runs it when invocations can crash.

    Each invocation starts alive; one that crashes is reported as a timed-out invocation (an ``Exception``, so the
    runtime's retries and redeliveries answer it), after ``on_crash`` has replaced the dead execution environment.
    """

    def invoke(event: Any, context: Any) -> Any:
        injector.begin_invocation()
        try:
            return handler(event, context)
        except FanoutCrash as crash:
            on_crash()
            raise TaskTimedOut(f"Task timed out after {timeout_seconds:.2f} seconds (injected fanout-crash)") from crash

    return invoke
