"""The Athena dashboard queries, run on DuckDB over the local lake.

The SQL files of the ``athena_queries`` package (found through it, :func:`athena_queries.sql_files`, so an
installed wheel finds them as a checkout does) are written in Athena's (Trino) dialect and are the very files Terraform
deploys as named queries; here each is translated with sqlglot (``read="trino"``, ``write="duckdb"``), never
copied. Statements that create views (the deduplicated view) run first, so dashboards can read through them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

import athena_queries
from local_pipeline.config import StreamConfig
from operations.report import DashboardResult

__all__ = [
    "QUERIES_DIR",
    "QueryResult",
    "connect",
    "load_queries",
    "render",
    "run_dashboards",
    "run_local_dashboards",
    "translate",
]

#: The folder of the ``athena_queries`` package (the one Terraform reads), for callers that list it; the queries
#: themselves are read through the package.
QUERIES_DIR = Path(athena_queries.__file__).resolve().parent

_DUCKDB_TYPES = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "date": "DATE"}


#: One dashboard's result (file name, columns, rows): the type the report takes, so a run hands it over as is.
QueryResult = DashboardResult


def translate(sql: str) -> str:
    """One Athena (Trino) statement in DuckDB's dialect."""
    statements = [s for s in sqlglot.transpile(sql, read="trino", write="duckdb") if s.strip()]
    if len(statements) != 1:
        raise ValueError(f"expected exactly one SQL statement, found {len(statements)}")
    return statements[0]


def load_queries(queries_dir: Path | None = None) -> list[tuple[str, str]]:
    """``(name, sql)`` for every ``*.sql`` file of the ``athena_queries`` package (or of ``queries_dir``, a
    folder of others); view definitions first, then the dashboards, by name."""
    files = athena_queries.sql_files() if queries_dir is None else sorted(queries_dir.glob("*.sql"))
    if not files:
        raise FileNotFoundError(f"no .sql files in {queries_dir or 'the athena_queries package'}")
    queries = [(entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8")) for entry in files]
    return sorted(queries, key=lambda item: (not athena_queries.creates_view(item[1]), item[0]))


def connect(
    lake_dir: Path,
    *,
    table_name: str,
    table_prefix: str,
    partition_keys: Sequence[Mapping[str, Any]],
    queries_dir: Path | None = None,
    table: Any = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection where the lake under ``lake_dir/table_prefix`` is ``table_name`` and every view file
    (``CREATE VIEW``, e.g. ``sales_history_dedup``) is defined: what the dashboards, and the tests, query.

    ``table``: the lake as an Arrow table instead (an Iceberg table's scan: DuckDB's iceberg extension is
    downloaded at first use, which an offline machine cannot do, and the scan applies the table's deletes)."""
    connection = duckdb.connect()
    try:
        if table is not None:
            connection.register(table_name, table)
        else:
            hive_types = ", ".join(f"'{key['name']}': '{_DUCKDB_TYPES[key['type']]}'" for key in partition_keys)
            files = (lake_dir / table_prefix).as_posix().rstrip("/") + "/**"
            connection.execute(
                f"CREATE VIEW {table_name} AS SELECT * FROM read_parquet('{files}', "  # noqa: S608 - our own config
                f"hive_partitioning = true, hive_types = {{{hive_types}}})"
            )
        for _name, sql in load_queries(queries_dir):
            if athena_queries.creates_view(sql):
                connection.execute(translate(sql))
    except Exception:
        connection.close()
        raise
    return connection


def run_dashboards(
    lake_dir: Path,
    *,
    table_name: str,
    table_prefix: str,
    partition_keys: Sequence[Mapping[str, Any]],
    queries_dir: Path | None = None,
    table: Any = None,
) -> list[QueryResult]:
    """Expose the lake under ``lake_dir/table_prefix`` (or the Arrow ``table``) as ``table_name``, then run every
    query file."""
    connection = connect(
        lake_dir,
        table_name=table_name,
        table_prefix=table_prefix,
        partition_keys=partition_keys,
        queries_dir=queries_dir,
        table=table,
    )
    try:
        results = []
        for name, sql in load_queries(queries_dir):
            if athena_queries.creates_view(sql):
                continue
            cursor = connection.execute(translate(sql))
            columns = [column[0] for column in cursor.description or []]
            results.append(QueryResult(name, columns, cursor.fetchall()))
        return results
    finally:
        connection.close()


def render(result: QueryResult, limit: int = 12) -> str:
    """A plain-text table of the first ``limit`` rows, with the total row count."""
    shown = [[_cell(value) for value in row] for row in result.rows[:limit]]
    numeric = [bool(result.rows) and isinstance(result.rows[0][i], int | float) for i in range(len(result.columns))]
    widths = [max([len(c)] + [len(row[i]) for row in shown]) for i, c in enumerate(result.columns)]
    lines = [
        f"-- {result.name} ({len(result.rows)} rows{', first ' + str(limit) if len(result.rows) > limit else ''})",
        "  ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    lines += [
        "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(row, widths, numeric, strict=True)).rstrip()
        for row in shown
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return str(value)


def run_local_dashboards(lake_dir: Path) -> list[DashboardResult]:
    """The dashboards on a local lake folder (a run's ``--out``) with DuckDB, as results the report takes
    (``operations.report.build_report(dashboards=...)``); none while the lake holds no Parquet file yet."""
    config = StreamConfig.from_declarations()
    if not any((lake_dir / config.table_prefix).rglob("*.parquet")):
        return []  # nothing delivered: DuckDB would refuse to read an empty glob
    return run_dashboards(
        lake_dir,
        table_name=config.table_name,
        table_prefix=config.table_prefix,
        partition_keys=config.glue_table["partition_keys"],
    )
