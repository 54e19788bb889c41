"""The dashboard SQL and the deduplicated view: one ``.sql`` file each, in Athena's (Trino) dialect.

Terraform reads the files beside this module with ``fileset()``/``file()``; Python finds them through the
package (:func:`sql_files`), so an installed wheel carries and finds them as a checkout does.
"""

from __future__ import annotations

import re
from importlib import resources
from importlib.abc import Traversable

__all__ = ["creates_view", "dashboard_queries", "sql_files"]

_CREATES_VIEW = re.compile(r"^\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW\b", re.IGNORECASE)


def sql_files() -> list[Traversable]:
    """Every ``*.sql`` file of the package, by name."""
    files = [entry for entry in resources.files(__package__).iterdir() if entry.name.endswith(".sql")]
    return sorted(files, key=lambda entry: entry.name)


def creates_view(sql: str) -> bool:
    """Whether the statement (comments aside) creates a view, as the dedup view's file does."""
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return bool(_CREATES_VIEW.match(body))


def dashboard_queries() -> list[tuple[str, str]]:
    """``(name, sql)`` of every dashboard query, by name; view definitions left out (a stack has them deployed)."""
    queries = []
    for entry in sql_files():
        sql = entry.read_text(encoding="utf-8")
        if not creates_view(sql):
            queries.append((entry.name.removesuffix(".sql"), sql))
    return queries
