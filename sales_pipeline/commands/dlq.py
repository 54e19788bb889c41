"""``sales-pipeline dlq``."""

from __future__ import annotations

import argparse

from sales_pipeline.commands._legacy import register_from


def register(parser: argparse.ArgumentParser) -> None:
    register_from("operations.dlq", parser)
