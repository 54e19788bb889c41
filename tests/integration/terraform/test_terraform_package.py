"""The Lambda zips Terraform deploys (`make package`): right contents, Lambda-platform wheels, deterministic."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration import terraform_support as tfs

pytestmark = [pytest.mark.integration, pytest.mark.terraform]

FUNCTIONS = ("fanout_lambda", "transform_lambda")


def _packager() -> ModuleType:
    spec = importlib.util.spec_from_file_location("package_lambdas", tfs.ROOT / "scripts" / "package_lambdas.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zip(function: str) -> Path:
    path = tfs.ROOT / ".build" / f"{function}.zip"
    if not path.is_file():
        pytest.fail(f".build/{function}.zip is missing: run `make package` first (make test does)")
    return path


@pytest.mark.parametrize("function", FUNCTIONS)
def test_zip_holds_the_function_the_shared_packages_and_its_dependencies(function: str) -> None:
    with zipfile.ZipFile(_zip(function)) as archive:
        names = archive.namelist()
        infos = archive.infolist()
    tops = {name.split("/", 1)[0] for name in names}
    assert {function, "pipeline_config", "glue_schemas"} <= tops
    assert f"{function}/handler.py" in names or f"{function}/__init__.py" in names
    assert "pipeline_config/pipeline.json" in names
    assert "glue_schemas/sales_history.json" in names
    assert {"aws_lambda_powertools", "fastjsonschema", "orjson"} <= tops
    other = ({"fanout_lambda", "transform_lambda"} - {function}).pop()
    assert other not in tops  # each function ships only its own code
    assert not tops & {"boto3", "botocore", "s3transfer"}  # the runtime provides them
    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
    # Lambda-platform wheels: orjson's extension is built for CPython 3.12 on x86_64 Linux.
    assert (
        [n for n in names if n.startswith("orjson/") and n.endswith(".so")]
        == [n for n in names if n.startswith("orjson/orjson.cpython-312-x86_64-linux-gnu") and n.endswith(".so")]
        != []
    )
    # Deterministic layout: sorted entries, one fixed timestamp.
    assert names == sorted(names)
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


def test_write_zip_is_byte_for_byte_reproducible(tmp_path: Path) -> None:
    packager = _packager()
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "b.py").write_text("B = 2\n")
    (source / "pkg" / "a.py").write_text("A = 1\n")
    entries = {f"pkg/{p.name}": p for p in (source / "pkg").iterdir()}
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"
    packager.write_zip(first, entries)
    (source / "pkg" / "a.py").touch()  # a newer mtime must not change the archive
    packager.write_zip(second, dict(reversed(list(entries.items()))))
    assert first.read_bytes() == second.read_bytes()


def test_requirements_are_pyproject_dependencies_without_the_runtime_sdk() -> None:
    requirements = _packager().lambda_requirements()
    names = {r.split(">")[0].split("<")[0].split("=")[0].strip().lower() for r in requirements}
    assert names >= {"aws-lambda-powertools", "fastjsonschema", "orjson"}
    assert not names & {"boto3", "botocore"}
