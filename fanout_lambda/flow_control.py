"""Flow control inside an invocation: what a throughput refusal is, and how long to keep resending it.

Firehose (``ServiceUnavailableException``, for a whole call or for entries under ``FailedPutCount``) and
DynamoDB (``ProvisionedThroughputExceededException``, ``ThrottlingException``, BatchWriteItem's
``UnprocessedItems``) refuse work they have no capacity for now; the same work succeeds a little later. Such a
refusal is resent with capped exponential backoff and full jitter for as long as the invocation's remaining
time allows (its deadline leaves ``fanout_flow_control_margin_seconds`` to release claims and answer), not a
fixed number of times. A failure that is not about throughput (access denied, a missing table, a bug) is not
resent in place: it fails the sales it carried at once, or after ``max_attempts`` when it is a transient
server error (``InternalFailure``).

What an invocation still could not deliver for throughput is reported as throttled: the handler lists its
message for redelivery and backs its visibility off (see :mod:`fanout_lambda.handler`), so a backlog spreads
out instead of coming back in waves, and never reaches the dead-letter queue for that reason.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["THROUGHPUT_CODES", "Backoff", "error_code", "is_throughput", "retry_throughput"]

#: Error codes that mean "no capacity now, try again": Firehose's and DynamoDB's throttling, SDK-wide throttles.
THROUGHPUT_CODES = frozenset(
    {
        "ServiceUnavailableException",  # Firehose: a call past the request quota, an entry past records/bytes
        "ProvisionedThroughputExceededException",  # DynamoDB: partition or provisioned capacity
        "ThrottlingException",  # DynamoDB on-demand maximum; any service's API rate
        "RequestLimitExceeded",  # DynamoDB: account-level request throttling
        "LimitExceededException",  # Firehose: a control-plane rate
        "Throttling",
        "TooManyRequestsException",
    }
)

_T = TypeVar("_T")


def error_code(error: BaseException) -> str | None:
    """The AWS error code of an SDK error (botocore's ``ClientError``), else None."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_throughput(error: BaseException | str | None) -> bool:
    """Whether ``error`` (an exception or an error code) is a refusal for throughput."""
    if error is None:
        return False
    if isinstance(error, str):
        return error in THROUGHPUT_CODES
    if getattr(error, "throughput", False):  # our own DeliveryIncomplete / WriteIncomplete
        return True
    return error_code(error) in THROUGHPUT_CODES


class Backoff:
    """Capped exponential backoff with full jitter, bounded by the invocation's deadline for throughput.

    :meth:`start` sets the deadline of the invocation that begins (``None``: no deadline known, e.g. no Lambda
    context; throughput refusals are then resent ``max_attempts`` times, as any other transient failure).
    ``clock`` and ``sleep`` are injectable: the local runtime passes its simulated timeline.
    """

    def __init__(
        self,
        max_attempts: int,
        base_delay: float,
        max_delay: float,
        sleep: Callable[[float], None],
        jitter: Callable[[float, float], float],
        *,
        clock: Callable[[], float] = time.monotonic,
        max_throughput_attempts: int = 512,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.jitter = jitter
        self.clock = clock
        #: A bound that holds even when the clock never moves (a test's fake sleep): not reached in practice,
        #: the deadline comes first (a 27 s budget at <= 1 s a pause is a few dozen attempts).
        self.max_throughput_attempts = max_throughput_attempts
        self.deadline: float | None = None
        #: Resends allowed since :meth:`start` (the invocation's), across the threads that share this backoff.
        self.resends = 0
        self._lock = threading.Lock()

    def start(self, budget_seconds: float | None) -> None:
        """An invocation begins with ``budget_seconds`` to spend on resends (None: no deadline)."""
        self.deadline = None if budget_seconds is None else self.clock() + max(0.0, budget_seconds)
        with self._lock:
            self.resends = 0

    def retry(self, attempt: int, *, throughput: bool) -> bool:
        """Before ``attempt`` (2, 3, ...): pause and return True, or return False when it must not be made."""
        if throughput and self.deadline is not None:
            if attempt > self.max_throughput_attempts:
                return False
        elif attempt > self.max_attempts:
            return False
        delay = self.jitter(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2)))
        if self.deadline is not None and self.clock() + delay > self.deadline:
            return False
        with self._lock:
            self.resends += 1
        self.sleep(delay)
        return True

    def pause(self, attempt: int) -> None:
        """Sleep before ``attempt`` (2, 3, ...), whatever the deadline (the dead-letter queue's resends)."""
        self.sleep(self.jitter(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 2))))


def retry_throughput(call: Callable[[], _T], backoff: Backoff) -> _T:
    """``call()``, resent while it is refused for throughput and the backoff allows; anything else raises."""
    attempt = 1
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            if not is_throughput(exc) or not backoff.retry(attempt, throughput=True):
                raise
