"""Helpers for the Terraform integration test: a moto_server on 127.0.0.1 and an offline Terraform runner.

Named apart from the local-runtime tests' helpers on purpose. Nothing here reaches beyond 127.0.0.1:
providers come from the filesystem mirror (``terraform/offline.tfrc``), every AWS endpoint is the moto
server, and the credentials are dummies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = ROOT / "terraform"
REGION = "us-east-1"
#: Every service the module talks to; each gets the moto endpoint (terraform/variables.tf `aws_endpoints`).
SERVICES = ("athena", "cloudwatch", "dynamodb", "events", "firehose", "glue", "iam", "kms", "lambda", "logs",
            "s3", "sns", "sqs", "sts")  # fmt: skip
#: Where the image keeps the hashicorp/aws provider mirror; searched for when it is not there.
DEFAULT_MIRROR = Path("/opt/tf-plugins")
#: Sibling folders the module reads with file()/fileset() relative to path.module.
MODULE_INPUTS = ("pipeline_config", "glue_schemas", "athena_queries", ".build")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with {process.returncode} before answering")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"moto_server did not answer on {endpoint} within {timeout:.0f}s")


@contextlib.contextmanager
def run_moto_server(log_path: Path) -> Iterator[str]:
    """Start the venv's ``moto_server`` on a free 127.0.0.1 port; yield its URL; always stop it."""
    executable = Path(sys.executable).with_name("moto_server")
    if not executable.exists():
        pytest.fail(f"{executable} is missing: run `make setup` (moto[server] is in the dev extra)")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(executable), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
        )
        try:
            _wait_until_up(endpoint, process)
            yield endpoint
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def moto_server_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto_server running for the whole test module (stopped in teardown)."""
    with run_moto_server(tmp_path_factory.mktemp("moto") / "moto_server.log") as endpoint:
        yield endpoint


def provider_mirror() -> Path | None:
    """The filesystem mirror holding registry.terraform.io/hashicorp/aws, or None (then the registry is used)."""
    if (DEFAULT_MIRROR / "registry.terraform.io").is_dir():
        return DEFAULT_MIRROR
    found = subprocess.run(
        ["find", "/", "-path", "*/registry.terraform.io/hashicorp/aws/*", "-name", "terraform-provider-aws*"],
        capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    for path in found:
        head, sep, _ = path.partition("/registry.terraform.io/")
        if sep:
            return Path(head)
    return None


def write_cli_config(destination: Path) -> Path | None:
    """Write the project's offline CLI config pointing at the mirror found here; None if there is no mirror."""
    mirror = provider_mirror()
    if mirror is None:
        return None
    text = (TERRAFORM_DIR / "offline.tfrc").read_text(encoding="utf-8")
    destination.write_text(text.replace(str(DEFAULT_MIRROR), str(mirror)), encoding="utf-8")
    return destination


def moto_variables(endpoint: str) -> dict[str, Any]:
    """The test variables: every endpoint at moto, provider checks off, nothing that blocks a destroy."""
    return {
        "aws_region": REGION,
        "aws_endpoints": dict.fromkeys(SERVICES, endpoint),
        "aws_skip_checks": True,
        "aws_s3_use_path_style": True,
        "dynamodb_deletion_protection_enabled": False,
        # moto 5.2 implements CreateNamedQuery/GetNamedQuery but not DeleteNamedQuery, so a destroy would
        # hang in the provider's retries: the apply/destroy cycle runs without named queries, and the test
        # checks them in a plan with this switched on.
        "athena_named_queries_enabled": False,
        # moto 5.2 answers ListTagsForResource for an Athena workgroup with "Does Not Exist" unless the
        # workgroup has tags; the provider reads tags after creating it. Tags are good practice anyway.
        "tags": {"project": "carousel-sales-pipeline", "environment": "moto-test"},
        # the injected projection here; test_terraform_variables covers the enum
        "tenant_ids": [],
    }


@dataclass
class Terraform:
    """Runs the terraform CLI on a throw-away copy of the module, offline, against moto."""

    workdir: Path
    env: dict[str, str]
    binary: str

    def run(
        self, *args: str, timeout: float = 300, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``terraform <args>`` in the module copy (``input`` on stdin); on failure show the output."""
        result = subprocess.run(
            [self.binary, *args, "-no-color"], cwd=self.workdir, env=self.env, input=input,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(
                f"terraform {command} exited {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
            )
        return result

    def outputs(self) -> dict[str, Any]:
        """``terraform output -json`` as plain values."""
        raw = json.loads(self.run("output", "-json").stdout)
        return {name: item["value"] for name, item in raw.items()}


def prepare_module_copy(base: Path) -> Path:
    """Copy terraform/*.tf to ``base/terraform`` and link the inputs it reads, so the repo stays clean.

    ``athena_queries/`` may not exist on every branch; an empty folder stands in (no named queries).
    """
    workdir = base / "terraform"
    workdir.mkdir()
    for path in TERRAFORM_DIR.glob("*.tf"):
        shutil.copy2(path, workdir / path.name)
    for name in MODULE_INPUTS:
        source = ROOT / name
        if source.is_dir():
            (base / name).symlink_to(source, target_is_directory=True)
        else:
            (base / name).mkdir()
    return workdir


def initialised_module(base: Path, endpoint: str) -> Terraform:
    """A temp copy of terraform/ under ``base`` with the moto variables file written and ``init`` done."""
    for name in ("fanout_lambda.zip", "transform_lambda.zip"):
        if not (ROOT / ".build" / name).is_file():
            pytest.fail(f".build/{name} is missing: run `make package` first (make test does)")
    workdir = prepare_module_copy(base)
    (workdir / "moto.tfvars.json").write_text(json.dumps(moto_variables(endpoint), indent=2))
    runner = Terraform(
        workdir=workdir,
        env=terraform_env(base, write_cli_config(base / "offline.tfrc")),
        binary=shutil.which("terraform") or "terraform",
    )
    runner.run("init", "-input=false", timeout=120)
    return runner


def terraform_env(base: Path, cli_config: Path | None) -> dict[str, str]:
    """Environment for terraform: dummy credentials, no checkpoint calls, data dir inside ``base``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "TF_DATA_DIR": str(base / ".terraform-data"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    if cli_config is not None:
        env["TF_CLI_CONFIG_FILE"] = str(cli_config)
    return env


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client for ``service`` at the moto endpoint with dummy credentials."""
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def firehose_processor_parameters(processor: dict[str, Any]) -> dict[str, str]:
    """A processor's parameters as a mapping."""
    return {p["ParameterName"]: p["ParameterValue"] for p in processor.get("Parameters", [])}
