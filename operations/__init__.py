"""Operator commands: they talk to a deployed stack (or a local run on a moto_server) through boto3 only.

Kept apart from ``local_pipeline`` because they run against real accounts: nothing here imports the local
runtime, moto, pyarrow or DuckDB at module level. Every command finds the stack's resources in the JSON that
``terraform output -json`` prints (:mod:`operations.outputs`) and builds its clients with the AWS CLI's
conventions (:mod:`operations.aws`). One module per command, each exposing ``register(subparsers)``.
"""

from __future__ import annotations

#: The operator command modules the ``sales-pipeline`` CLI registers, in ``--help`` order. Each module has
#: ``register(subparsers)``, which adds its parser and sets ``handler=`` (``(args) -> exit status``).
COMMAND_MODULES: tuple[str, ...] = (
    "operations.monitor",
    "operations.report",
    "operations.dlq",
    "operations.errors_prefix",
    "operations.send",
)
