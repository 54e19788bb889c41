"""A Lambda context object with the attributes the runtime passes and Powertools reads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["ACCOUNT_ID", "FANOUT_FUNCTION", "TRANSFORM_FUNCTION", "LambdaContext", "function_arn"]

ACCOUNT_ID = "123456789012"

#: The local run's function names (its ``outputs.json`` names them as a stack's outputs do).
FANOUT_FUNCTION = "sales-fanout-local"
TRANSFORM_FUNCTION = "sales-transform-local"


def function_arn(function_name: str, region: str) -> str:
    """The unqualified-alias ARN AWS reports for ``$LATEST``."""
    return f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"


@dataclass
class LambdaContext:
    """What ``context`` looks like inside a python3.12 Lambda: names, limits, ids and the remaining time."""

    function_name: str
    region: str = "us-east-1"
    memory_limit_in_mb: int = 512
    timeout_ms: int = 60_000
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining: Callable[[], int] | None = None

    @property
    def invoked_function_arn(self) -> str:
        """The ARN the function was invoked with."""
        return function_arn(self.function_name, self.region)

    @property
    def log_group_name(self) -> str:
        """The log group Lambda writes to."""
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        """A log stream name in Lambda's format."""
        return f"2026/01/01/[{self.function_version}]{self.aws_request_id.replace('-', '')}"

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out (the full timeout: local calls are not timed)."""
        return self.remaining() if self.remaining else self.timeout_ms
