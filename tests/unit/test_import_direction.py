"""Imports point one way: contracts <- the two Lambdas <- operations <- local_pipeline <- the CLI.

Every import is read with ``ast``, at module level and inside functions, so a lazy import cannot hide a
dependency that points up. Nothing outside ``tests/`` imports ``tests``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

#: Each package's layer: a module may import its own package and packages of a lower layer only.
LAYERS: dict[str, int] = {
    "pipeline_config": 0,
    "glue_schemas": 0,
    "athena_queries": 0,
    "fanout_lambda": 1,
    "transform_lambda": 1,
    "operations": 2,
    "local_pipeline": 3,
    "sales_pipeline": 4,
    # Tools at the top: they may use every layer, never the tests.
    "benchmarks": 5,
    "scripts": 5,
}


def imported_packages(source: str, module: str) -> list[tuple[int, str]]:
    """``(line, top-level package)`` of every absolute or relative import in ``source`` (any depth)."""
    found = []
    package = module.split(".", maxsplit=1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return found


def violations(source: str, module: str) -> list[str]:
    """Every import in ``source`` (the module ``module``) that points up, sideways or into ``tests``."""
    own = module.split(".", maxsplit=1)[0]
    problems = []
    for line, target in imported_packages(source, module):
        if target == own:
            continue
        if target == "tests":
            problems.append(f"{module}:{line} imports tests")
        elif target in LAYERS and LAYERS[target] >= LAYERS[own]:
            problems.append(f"{module}:{line} imports {target} (layer {LAYERS[target]} >= its own {LAYERS[own]})")
    return problems


def project_modules() -> list[tuple[str, Path]]:
    modules = []
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules.append((dotted, path))
    return modules


def test_every_import_points_down() -> None:
    modules = project_modules()
    assert len(modules) > 50  # the walk found the project
    problems = [p for dotted, path in modules for p in violations(path.read_text(encoding="utf-8"), dotted)]
    assert problems == []


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("operations.report", "def f():\n    from local_pipeline.dashboards import connect\n"),
        ("operations.monitor", "import sales_pipeline.cli\n"),
        ("fanout_lambda.handler", "from transform_lambda import records\n"),
        ("pipeline_config", "import fanout_lambda\n"),
        ("benchmarks.fanout", "from tests.support import moto_clients\n"),
    ],
)
def test_an_import_that_points_up_is_reported(module: str, source: str) -> None:
    assert len(violations(source, module)) == 1


def test_imports_that_point_down_are_allowed() -> None:
    source = "import pipeline_config\nfrom operations import outputs\nfrom .firehose import limits\n"
    assert violations(source, "local_pipeline.runner") == []


def test_the_operator_library_parses_no_command_line() -> None:
    # Parsing is the CLI's (sales_pipeline/commands): operations takes typed parameters.
    importers = [
        dotted
        for dotted, path in project_modules()
        if dotted.startswith("operations")
        and "argparse" in {target for _, target in imported_packages(path.read_text(encoding="utf-8"), dotted)}
    ]
    assert importers == []


def test_no_module_outside_the_tests_is_over_450_lines() -> None:
    long = {
        dotted: count
        for dotted, path in project_modules()
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 450
    }
    assert long == {}
