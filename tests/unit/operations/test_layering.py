"""The operator library stays below the local runtime and the CLI: every import read, also those in functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import operations

PACKAGE = Path(operations.__file__).resolve().parent
#: What operations must never import: the layers above it, the test suite, and argparse (parsing is the CLI's).
FORBIDDEN = ("local_pipeline", "sales_pipeline", "tests", "argparse")


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_operations_imports_nothing_above_it_nor_argparse(path: Path) -> None:
    wrong = [name for name in _imports(path) if name.split(".")[0] in FORBIDDEN]
    assert not wrong, f"{path.relative_to(PACKAGE)} imports {wrong}"


def test_no_operations_module_is_over_450_lines() -> None:
    lines = {str(p.relative_to(PACKAGE)): len(p.read_text("utf-8").splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: count for name, count in lines.items() if count > 450} == {}
