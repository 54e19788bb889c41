"""Errors an operator command reports as one line (no traceback) with an exit status."""

from __future__ import annotations

__all__ = ["OperatorError"]

#: Exit status of a command that could not do its work because of its input (argparse's usage status).
USAGE = 2


class OperatorError(RuntimeError):
    """A problem the user can act on: its message is printed as one line, the command exits ``exit_status``."""

    def __init__(self, message: str, exit_status: int = USAGE) -> None:
        super().__init__(message)
        self.exit_status = exit_status
