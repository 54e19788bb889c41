"""TEMPORARY: the report's interface while it changes (delete this module once the change is merged).

``operations.report.write_report`` is changing from running the dashboards itself (``lake_dir=``) to taking
their results (``dashboards=``), so that a run executes them once. Until that change is merged the old
interface is the one installed: it is given the lake folder instead, where it runs the same queries on the same
files (the same page). Once merged, :mod:`.end` imports ``write_report`` from ``operations.report`` directly.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from operations import report
from operations.report import DashboardResult

__all__ = ["write_report"]


def write_report(path: Path, *, dashboards: Sequence[DashboardResult] | None = None, **kwargs: Any) -> Path:
    """``operations.report.write_report`` with the dashboards' results, whichever interface it has."""
    options: dict[str, Any] = dict(kwargs)
    if "dashboards" in inspect.signature(report.write_report).parameters:
        options["dashboards"] = dashboards
    else:  # the old interface: it runs them on the lake folder, the one the results were computed on
        options["lake_dir"] = path.parent if dashboards is not None else None
    result: Path = report.write_report(path, **options)
    return result
