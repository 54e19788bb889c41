"""What the ``sales-pipeline`` commands share, declared once: the stack and AWS access options, ``--json``,
``--dry-run``, and the argument types (each refuses a bad value with one line naming it, never a traceback)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from operations.aws import AwsOptions
from operations.command_support import stack as load_stack
from operations.outputs import StackOutputs

__all__ = [
    "add_aws_arguments",
    "add_dry_run",
    "add_json",
    "bounded_integer",
    "integer",
    "positive",
    "positive_number",
    "stack",
]


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every operator command takes: where the stack is and how to reach it (the AWS CLI's)."""
    group = parser.add_argument_group("stack and AWS access")
    group.add_argument(
        "--outputs",
        metavar="FILE",
        help="the stack's `terraform output -json` (a local run writes outputs.json into its --out folder); "
        "default: run `terraform output -json` in terraform/",
    )
    group.add_argument("--region", help="AWS region (default: the outputs' aws_region, then the AWS config)")
    group.add_argument("--profile", help="named AWS profile (default: the default credential chain)")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS-compatible endpoint, e.g. the moto_server of a local run (default: the outputs' "
        "endpoint_url if it has one, else AWS)",
    )


def stack(args: argparse.Namespace, *, purpose: str) -> tuple[StackOutputs, AwsOptions]:
    """The stack the options of :func:`add_aws_arguments` name, and how to reach it (``purpose``: what a
    moto_server would let the user do, said when ``--outputs`` are those of a local run that has ended)."""
    return load_stack(
        Path(args.outputs) if args.outputs else None,
        region=args.region,
        profile=args.profile,
        endpoint_url=args.endpoint_url,
        purpose=purpose,
    )


def add_json(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json``: the machine-readable form of the command's output on stdout."""
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON")


def add_dry_run(parser: argparse.ArgumentParser, what: str) -> None:
    """``--dry-run``: read everything, change nothing, print what would be done."""
    parser.add_argument(
        "--dry-run", action="store_true", help=f"change nothing: read, check and print what {what} would do"
    )


def integer(text: str) -> int:
    """Any whole number."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive(text: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return value


def bounded_integer(low: int, high: int, *, why: str = "") -> Callable[[str], int]:
    """A type for a whole number from ``low`` to ``high``; ``why`` names the limit in the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}{why}, got {text!r}")
        return value

    return parse


def positive_number(unit: str) -> Callable[[str], float]:
    """A type for a finite number above 0 (``unit`` names what it counts)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = 0.0
        if not 0 < value < float("inf"):  # also refuses NaN
            raise argparse.ArgumentTypeError(f"must be a positive number of {unit}, got {text!r}")
        return value

    return parse
