"""TEMPORARY (removed when the operator commands' parsers move here): adapt ``operations.X.register``."""

from __future__ import annotations

import argparse
import importlib
from typing import Any


class _OneParser:
    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._parser = parser

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        for key in ("description", "epilog", "formatter_class"):
            if key in kwargs:
                setattr(self._parser, key, kwargs[key])
        return self._parser


def register_from(module: str, parser: argparse.ArgumentParser) -> None:
    importlib.import_module(module).register(_OneParser(parser))
