"""The SQS limits the simulated queues (the in-process dead-letter queue, the buffer queue) enforce, declared
from the SQS docs on the simulator's side.

Never imported from the fan-out it tests (``fanout_lambda.adapters`` keeps its own copy for its sender): a
wrong constant there must meet SQS's real limit here and fail a test.
"""

from __future__ import annotations

__all__ = [
    "BATCH_MAX_ENTRIES",
    "SEND_MESSAGE_BATCH_MAX_ENTRIES",
    "SQS_MESSAGE_MAX_BYTES",
    "VISIBILITY_TIMEOUT_MAX_SECONDS",
]

# Amazon SQS Developer Guide, "Amazon SQS message quotas": a message is at most 262,144 bytes (256 KiB), the
# classic maximum and the ``MaximumMessageSize`` the stack deploys (the provider's default; moto's own default
# is larger), so the local DLQ is created with it. (SQS has since allowed queues up to 1 MiB; this stack's
# does not.)
SQS_MESSAGE_MAX_BYTES = 256 * 1024
# Amazon SQS API Reference, "SendMessageBatch" and "ChangeMessageVisibilityBatch": at most 10 entries per call.
BATCH_MAX_ENTRIES = 10
SEND_MESSAGE_BATCH_MAX_ENTRIES = BATCH_MAX_ENTRIES
# Amazon SQS API Reference, "ChangeMessageVisibility": a visibility timeout is 0 to 43,200 s (12 hours).
VISIBILITY_TIMEOUT_MAX_SECONDS = 43_200
