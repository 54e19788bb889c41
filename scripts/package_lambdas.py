"""Build the two Lambda zips deterministically: ``.build/fanout_lambda.zip`` and ``.build/transform_lambda.zip``.

Each zip holds the function's package, the shared ``pipeline_config`` and ``glue_schemas`` packages, and the
third-party dependencies from ``pyproject.toml`` installed for the Lambda platform (manylinux2014_x86_64,
CPython 3.12, wheels only). boto3/botocore are left out: the python3.12 runtime provides them.

Deterministic: entries sorted, fixed timestamps and permissions, no ``__pycache__``/``*.pyc``, so the same
sources and dependency versions give the same bytes and Terraform's ``source_code_hash`` only changes when
something real did. Run it through ``make package`` before ``terraform apply``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / ".build"

#: Lambda runtime the wheels are chosen for (matches `runtime`/`architectures` in terraform/lambda.tf).
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.12"
#: Provided by the Lambda runtime; bundling them only bloats the zip and cold start.
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Shared packages both functions import.
SHARED_PACKAGES = ("pipeline_config", "glue_schemas")
FUNCTIONS = ("fanout_lambda", "transform_lambda")

FIXED_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry
EXCLUDED_PARTS = {"__pycache__", "tests"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}


def _requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    if match is None:
        raise ValueError(f"cannot read a package name from {requirement!r}")
    return match.group(0).lower().replace("_", "-")


def lambda_requirements() -> list[str]:
    """The Lambdas' third-party requirements: pyproject's [project].dependencies minus what the runtime has."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [req for req in project["dependencies"] if _requirement_name(req) not in RUNTIME_PROVIDED]


def install_dependencies(target: Path) -> None:
    """pip-install the requirements as Lambda-platform wheels into ``target``."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--platform", PLATFORM, "--implementation", "cp", "--python-version", PYTHON_VERSION,
        "--only-binary=:all:", "--no-compile", "--target", str(target),
        *lambda_requirements(),
    ]  # fmt: skip
    subprocess.run(command, check=True)  # noqa: S603 - our interpreter, constant flags, pyproject's requirements
    # A dependency could still pull boto3 in transitively; the runtime's copy is the one to use.
    for name in RUNTIME_PROVIDED:
        for path in target.glob(f"{name}*"):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    shutil.rmtree(target / "bin", ignore_errors=True)


def _included(path: Path, base: Path) -> bool:
    rel = path.relative_to(base)
    return not (set(rel.parts) & EXCLUDED_PARTS) and path.suffix not in EXCLUDED_SUFFIXES


def _files(base: Path) -> dict[str, Path]:
    return {p.relative_to(base).as_posix(): p for p in base.rglob("*") if p.is_file() and _included(p, base)}


def write_zip(destination: Path, entries: dict[str, Path]) -> None:
    """Write ``entries`` (archive name → file) sorted, with fixed dates and permissions."""
    tmp = destination.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, so the permission bits below are honoured
            executable = entries[name].stat().st_mode & 0o111
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            archive.writestr(info, entries[name].read_bytes())
    tmp.replace(destination)


def build(function: str, dependencies: Path) -> Path:
    """Zip one function with the shared packages and the dependencies; return the zip's path."""
    entries = _files(dependencies)
    for package in (function, *SHARED_PACKAGES):
        package_dir = ROOT / package
        if not (package_dir / "__init__.py").is_file():
            raise FileNotFoundError(f"{package_dir} is not a Python package")
        entries.update({f"{package}/{name}": path for name, path in _files(package_dir).items()})
    destination = BUILD / f"{function}.zip"
    write_zip(destination, entries)
    return destination


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "functions", nargs="*", metavar="FUNCTION", help=f"any of {', '.join(FUNCTIONS)} (default: all)"
    )
    args = parser.parse_args(argv)
    unknown = set(args.functions) - set(FUNCTIONS)
    if unknown:
        parser.error(f"unknown function(s): {', '.join(sorted(unknown))}")
    BUILD.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lambda-deps-") as tmp:
        dependencies = Path(tmp)
        install_dependencies(dependencies)
        for function in args.functions or FUNCTIONS:
            path = build(function, dependencies)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            sys.stdout.write(f"{path.relative_to(ROOT)}  {path.stat().st_size:>9} bytes  sha256 {digest}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
