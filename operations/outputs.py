"""Where a stack's resources are: the JSON that ``terraform output -json`` prints.

Every operator command reads this one shape (``{"name": {"value": ..., "type": ..., "sensitive": ...}}``),
given with ``--outputs FILE`` or, by default, by running ``terraform output -json`` in ``terraform/``.
``sales-pipeline run`` writes the same shape to ``outputs.json`` in its ``--out`` folder (:func:`write`), so
the commands work against a local run on a moto_server exactly as against a real account.

The output names are Terraform's (``terraform/outputs.tf``); a local run adds ``endpoint_url`` (the
moto_server it ran against), which a Terraform stack never has.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operations.errors import OperatorError

__all__ = [
    "DEFAULT_TERRAFORM_DIR",
    "LOCAL_RUN_MARKER",
    "StackOutputs",
    "delivery_stream_names",
    "load",
    "refuse_ended_local_run",
    "write",
]

DEFAULT_TERRAFORM_DIR = Path(__file__).resolve().parents[1] / "terraform"


@dataclass(frozen=True)
class StackOutputs:
    """The outputs of one stack as plain values, with a clear error for a missing one."""

    values: Mapping[str, Any]
    source: str

    def get(self, name: str, default: Any = None) -> Any:
        """The value of output ``name``, or ``default`` when the stack has no such output."""
        return self.values.get(name, default)

    def require(self, name: str) -> Any:
        """The value of output ``name``; raise :class:`OperatorError` naming the output and the source."""
        value = self.values.get(name)
        if value is None or value == "":
            raise OperatorError(
                f"{self.source} has no output {name!r}: is it this stack's `terraform output -json` "
                "(or a local run's outputs.json)?"
            )
        return value


def delivery_stream_names(values: StackOutputs) -> list[str]:
    """Every Firehose stream of the stack, stream 0 first: output ``delivery_stream_names`` (a stack with
    ``firehose_stream_count`` streams), or ``[delivery_stream_name]`` for outputs without it (older stacks and
    local runs: one stream). Raises :class:`OperatorError` naming the output when it is not a list of names."""
    names = values.get("delivery_stream_names")
    if names is None:
        return [str(values.require("delivery_stream_name"))]
    if not isinstance(names, list | tuple) or not names or not all(isinstance(n, str) and n for n in names):
        raise OperatorError(
            f"{values.source}: output 'delivery_stream_names' is {names!r}, expected a non-empty list of stream names"
        )
    if len(set(names)) != len(names):
        raise OperatorError(f"{values.source}: output 'delivery_stream_names' names a stream twice: {names!r}")
    first = values.get("delivery_stream_name")
    if first not in (None, "") and first != names[0]:
        raise OperatorError(
            f"{values.source}: output 'delivery_stream_name' {first!r} is not the first of 'delivery_stream_names' "
            f"{names!r}"
        )
    return list(names)


def load(path: Path | None = None, *, terraform_dir: Path = DEFAULT_TERRAFORM_DIR) -> StackOutputs:
    """Read ``path`` (``terraform output -json`` shape), or run that command in ``terraform_dir``."""
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise OperatorError(f"--outputs {path}: cannot read it ({exc.strerror or exc})") from exc
        return StackOutputs(_values(text, str(path)), str(path))
    terraform = shutil.which("terraform")
    if terraform is None:
        raise OperatorError("no --outputs FILE given and `terraform` is not on the PATH to read the stack's outputs")
    result = subprocess.run(  # noqa: S603 - a fixed command, no shell
        [terraform, f"-chdir={terraform_dir}", "output", "-json", "-no-color"],
        capture_output=True,
        text=True,
        check=False,
    )
    source = f"`terraform output -json` in {terraform_dir}"
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no message"])[-1]
        raise OperatorError(f"{source} failed: {detail} (or pass --outputs FILE)")
    values = _values(result.stdout, source)
    if not values:
        raise OperatorError(f"{source} printed no outputs: has this stack been applied? (or pass --outputs FILE)")
    return StackOutputs(values, source)


#: The file ``sales-pipeline run`` leaves in its --out folder (local_pipeline.runner.LAKE_MARKER).
LOCAL_RUN_MARKER = ".sales-pipeline-lake"


def refuse_ended_local_run(
    path: Path | None, values: StackOutputs, endpoint_url: str | None, *, purpose: str = "watch it"
) -> None:
    """A local run on in-process moto leaves outputs without ``endpoint_url``: its AWS ended with the run, and
    the names in it must never be looked up in a real account. ``purpose`` ends the message (``watch it``)."""
    if path is None or endpoint_url or values.get("endpoint_url"):
        return
    if (path.resolve().parent / LOCAL_RUN_MARKER).exists():
        raise OperatorError(
            f"--outputs {path}: a local run on in-process moto, which ended with the run; run it with "
            f"--endpoint-url http://127.0.0.1:PORT (a moto_server) to {purpose}"
        )


def write(path: Path, values: Mapping[str, Any]) -> None:
    """Write ``values`` in the ``terraform output -json`` shape."""
    document = {name: {"sensitive": False, "type": _type_of(value), "value": value} for name, value in values.items()}
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _values(text: str, source: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OperatorError(f"{source} is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OperatorError(f"{source} is not the JSON object `terraform output -json` prints")
    values: dict[str, Any] = {}
    for name, item in document.items():
        if not isinstance(item, dict) or "value" not in item:
            raise OperatorError(f"{source}: output {name!r} has no 'value' (expected `terraform output -json`)")
        values[name] = item["value"]
    return values


def _type_of(value: Any) -> Any:
    # Terraform's JSON type notation, close enough for a reader; commands read only "value".
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return ["object", {key: _type_of(item) for key, item in value.items()}]
    if isinstance(value, list | tuple):
        return ["tuple", [_type_of(item) for item in value]]
    return "dynamic"
