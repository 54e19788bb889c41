from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from fanout_lambda import handler as fanout
from tests import support


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and region for every test: nothing may reach a real AWS account."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", support.REGION)
    monkeypatch.setenv("AWS_REGION", support.REGION)
    monkeypatch.delenv("EMBEDDING_DIMENSION", raising=False)
    monkeypatch.delenv("DYNAMODB_EMBEDDING_ENCODING", raising=False)


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto in-process with the fan-out's resources created and its environment variables set."""
    from moto import mock_aws

    with mock_aws():
        session = boto3.session.Session(region_name=support.REGION)
        names = support.create_resources(session)
        env = {
            "SALES_TABLE_NAME": support.SALES_TABLE,
            "IDEMPOTENCY_TABLE_NAME": support.IDEMPOTENCY_TABLE,
            "DELIVERY_STREAM_NAME": support.STREAM,
            "DEAD_LETTER_QUEUE_URL": names["queue_url"],
        }
        previous = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        fanout.reset()
        try:
            yield {"session": session, **names}
        finally:
            fanout.reset()
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
