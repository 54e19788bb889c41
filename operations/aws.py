"""boto3 clients with the AWS CLI's conventions: ``--region``, ``--profile``, ``--endpoint-url``.

Credentials come from the default chain (environment, profile, SSO, instance role) unless an endpoint is
given that has none configured (a moto_server): then dummy credentials are used, since a local endpoint only
needs requests signed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from operations.errors import OperatorError
from operations.outputs import StackOutputs

__all__ = ["AwsOptions", "add_arguments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every operator command takes: where the stack is and how to reach it."""
    group = parser.add_argument_group("stack and AWS access")
    group.add_argument(
        "--outputs",
        metavar="FILE",
        help="the stack's `terraform output -json` (a local run writes outputs.json into its --out folder); "
        "default: run `terraform output -json` in terraform/",
    )
    group.add_argument("--region", help="AWS region (default: the outputs' aws_region, then the AWS config)")
    group.add_argument("--profile", help="named AWS profile (default: the default credential chain)")
    group.add_argument(
        "--endpoint-url",
        metavar="URL",
        help="an AWS-compatible endpoint, e.g. the moto_server of a local run (default: the outputs' "
        "endpoint_url if it has one, else AWS)",
    )


@dataclass
class AwsOptions:
    """How to reach the stack; builds one client per service, lazily."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace, outputs: StackOutputs) -> AwsOptions:
        """Options from the command line, falling back to what the outputs say (region, local endpoint)."""
        return cls(
            region=args.region or outputs.get("aws_region"),
            profile=args.profile,
            endpoint_url=args.endpoint_url or outputs.get("endpoint_url"),
        )

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (one per service)."""
        if service not in self._clients:
            self._clients[service] = self._session().client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def _session(self) -> Any:
        import boto3  # noqa: PLC0415 - keeps `--help` fast
        from botocore.exceptions import ProfileNotFound  # noqa: PLC0415

        try:
            session = boto3.Session(profile_name=self.profile, region_name=self.region)
        except ProfileNotFound as exc:
            raise OperatorError(f"--profile {self.profile}: no such profile in the AWS config") from exc
        if session.region_name is None:
            raise OperatorError("no region: pass --region (or set AWS_REGION / a profile region)")
        if self.endpoint_url and session.get_credentials() is None:
            session = boto3.Session(
                aws_access_key_id="testing",
                aws_secret_access_key="testing",  # noqa: S106 - a local endpoint only needs signed requests
                region_name=session.region_name,
            )
        return session
