"""The embedded AWS the local run talks to: moto in-process by default, or any endpoint (a moto_server).

- :mod:`.embedded`: :class:`EmbeddedAws`, the session: environment, clients, resources, spilled items;
- :mod:`.resources`: the resources' names and how they are created (tables, dead-letter queue);
- :mod:`.outputs`: the stack outputs a run writes, in ``terraform output -json``'s shape;
- :mod:`.dead_letters`: the in-process dead-letter queue's send path, and reading a DLQ body back;
- :mod:`.lake`: moto's in-process S3 as the lake (the Firehose's writer, the mirror to a folder);
- :mod:`.limits`: the SQS limits the simulated queue enforces, from the SQS docs.

Every name importable from ``local_pipeline.aws`` before it became a package still is.
"""

from __future__ import annotations

from local_pipeline.aws.dead_letters import dead_letter_body
from local_pipeline.aws.embedded import SPILL_OVER_ITEMS, EmbeddedAws
from local_pipeline.aws.lake import UnsafeKeyError, safe_path
from local_pipeline.aws.limits import SQS_MESSAGE_MAX_BYTES
from local_pipeline.aws.resources import ResourceNames, create_dead_letter_queue, create_tables

__all__ = [
    "SPILL_OVER_ITEMS",
    "SQS_MESSAGE_MAX_BYTES",
    "EmbeddedAws",
    "ResourceNames",
    "UnsafeKeyError",
    "create_dead_letter_queue",
    "create_tables",
    "dead_letter_body",
    "safe_path",
]
