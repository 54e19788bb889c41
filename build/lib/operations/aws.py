"""boto3 clients with the AWS CLI's conventions: ``--region``, ``--profile``, ``--endpoint-url``.

Credentials come from the default chain (environment, profile, SSO, instance role) unless an endpoint is
given that has none configured (a moto_server): then dummy credentials are used, since a local endpoint only
needs requests signed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from operations.errors import OperatorError
from operations.outputs import StackOutputs

__all__ = ["AwsOptions"]


@dataclass
class AwsOptions:
    """How to reach the stack; builds one client per service, lazily."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_values(
        cls, *, region: str | None, profile: str | None, endpoint_url: str | None, outputs: StackOutputs
    ) -> AwsOptions:
        """Options as given (``--region``, ``--profile``, ``--endpoint-url``), falling back to what the outputs
        say (region, local endpoint)."""
        return cls(
            region=region or outputs.get("aws_region"),
            profile=profile,
            endpoint_url=endpoint_url or outputs.get("endpoint_url"),
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
