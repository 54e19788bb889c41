"""``sales-pipeline``: find the command, load its module (and only its module), parse, run.

argparse with lazy subcommands rather than Click or Typer: every command's flags, messages and exit status
(2 for a usage error) are argparse's today, and the operator commands' tests pin them; a table of one-line
helps gives ``--help`` without importing any command, and only the command named on the line is loaded.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """A command: its name, the module that registers it, and its one line in ``sales-pipeline --help``."""

    name: str
    module: str
    help: str


#: Every command, in ``--help`` order. Each module has ``register(parser)``: it adds the command's arguments,
#: description and subcommands to ``parser`` and sets ``handler=`` (``(args) -> exit status``).
COMMANDS: tuple[Command, ...] = (
    Command(
        "run",
        "sales_pipeline.commands.run",
        "generate (or read) a burst of sale events and run it through the whole pipeline",
    ),
    Command(
        "generate",
        "sales_pipeline.commands.generate",
        "write the seeded burst `run` would generate as JSONL (one EventBridge event per line)",
    ),
    Command(
        "monitor",
        "sales_pipeline.commands.monitor",
        "is Firehose delivery healthy right now? (exit 0 OK, 1 warning, 2 critical, 3 unknown)",
    ),
    Command(
        "report",
        "sales_pipeline.commands.report",
        "write one self-contained HTML report: monitor verdicts, delivery charts, dashboard charts",
    ),
    Command("dlq", "sales_pipeline.commands.dlq", "list, show and replay the dead-letter queue"),
    Command(
        "errors",
        "sales_pipeline.commands.errors",
        "list and reprocess the records Firehose put under its error prefix",
    ),
    Command(
        "send",
        "sales_pipeline.commands.send",
        "publish a JSONL file of events to the stack's bus (load test a deployed stack)",
    ),
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser for ``sales-pipeline``. With ``only``, that command is loaded in full and the others are
    one-line stubs (enough for ``sales-pipeline --help``); without it, every command is loaded."""
    parser = argparse.ArgumentParser(
        prog="sales-pipeline",
        description="Run the carousel sales pipeline on this machine: the real Lambdas, a local Firehose that "
        "buffers, transforms, partitions and writes Parquet, and the Athena dashboards on DuckDB.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        sub = commands.add_parser(command.name, help=command.help, description=command.help)
        if only is None or command.name == only:
            importlib.import_module(command.module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sales-pipeline`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    named = _named_command(arguments)
    try:
        parser = build_parser(only=named)
    except ModuleNotFoundError as exc:  # `run`/`generate` in an install of the operator commands alone
        sys.stderr.write(
            f"sales-pipeline {named}: error: needs the local runtime, which this install lacks ({exc}): "
            "pip install 'carousel-sales-pipeline[local]'\n"
        )
        return 2
    args = parser.parse_args(arguments)
    from operations.errors import OperatorError  # noqa: PLC0415 - light, but only needed once a command runs

    try:
        status: int = args.handler(args)
    except OperatorError as exc:
        sys.stderr.write(f"sales-pipeline {args.command}: error: {exc}\n")
        return exc.exit_status
    return status


def _named_command(arguments: Sequence[str]) -> str | None:
    """The command the line names (its first word that is not an option), or ``""`` when it names none, so
    that ``sales-pipeline --help`` and a mistyped command load no command module."""
    names = {command.name for command in COMMANDS}
    for word in arguments:
        if not word.startswith("-"):
            return word if word in names else ""
    return ""
