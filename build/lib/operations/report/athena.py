"""The dashboard queries run in the stack's Athena workgroup, and their results read back (every page)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import athena_queries
from operations.errors import OperatorError

__all__ = ["DashboardResult", "load_dashboard_queries", "run_athena_dashboards"]


@dataclass(frozen=True)
class DashboardResult:
    """One dashboard query's result: file name (without .sql), column names, rows."""

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]


def load_dashboard_queries(queries_dir: Path | None = None) -> list[tuple[str, str]]:
    """``(name, sql)`` of every dashboard query (view definitions left out: the stack has them deployed): the
    :mod:`athena_queries` package's, or those of the ``*.sql`` files in ``queries_dir`` (tests give one)."""
    if queries_dir is None:
        return athena_queries.dashboard_queries()
    queries = []
    for path in sorted(queries_dir.glob("*.sql")):
        sql = path.read_text(encoding="utf-8")
        if not athena_queries.creates_view(sql):
            queries.append((path.stem, sql))
    return queries


def run_athena_dashboards(
    athena: Any,
    *,
    workgroup: str,
    database: str,
    queries_dir: Path | None = None,
    timeout_seconds: float = 300.0,
    poll_seconds: float = 1.0,
) -> list[DashboardResult]:
    """Run every dashboard query in the stack's Athena workgroup and read the results back (every page)."""
    results = []
    for name, sql in load_dashboard_queries(queries_dir):
        execution = athena.start_query_execution(
            QueryString=sql, WorkGroup=workgroup, QueryExecutionContext={"Database": database}
        )["QueryExecutionId"]
        deadline = time.monotonic() + timeout_seconds
        while True:
            status = athena.get_query_execution(QueryExecutionId=execution)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in ("FAILED", "CANCELLED"):
                reason = status.get("StateChangeReason", "no reason given")
                raise OperatorError(f"Athena query {name} {status['State']}: {reason}", exit_status=1)
            if time.monotonic() > deadline:
                raise OperatorError(f"Athena query {name} did not finish in {timeout_seconds:.0f} s", 1)
            time.sleep(poll_seconds)
        results.append(_athena_result(athena, name, execution))
    return results


def _athena_result(athena: Any, name: str, execution: str) -> DashboardResult:
    columns: list[str] = []
    types: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=execution):
        result_set = page["ResultSet"]
        if not columns:
            info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
            columns = [c["Name"] for c in info]
            types = [c.get("Type", "varchar") for c in info]
        for row in result_set.get("Rows", []):
            cells = [d.get("VarCharValue") for d in row.get("Data", [])]
            if cells == columns:  # the header row Athena puts first for a SELECT
                continue
            rows.append(tuple(_athena_value(cell, kind) for cell, kind in zip(cells, types, strict=False)))
    return DashboardResult(name, columns, rows)


def _athena_value(cell: str | None, kind: str) -> Any:
    if cell is None:
        return None
    if kind in ("tinyint", "smallint", "integer", "bigint"):
        return int(cell)
    if kind in ("double", "float", "real", "decimal"):
        return float(cell)
    return cell
