"""Shared fixtures. DynamoDB Local is started once per test session, and only if a test asks for it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflow.local.dynamodb import DynamoDBLocal, client_for, ensure_table
from agentflow.local.template import load_template

ROOT = Path(__file__).resolve().parents[1]


def table_properties() -> dict[str, object]:
    template = load_template(ROOT / "template.yaml")
    properties: dict[str, object] = template.resources["Table"]["Properties"]
    return properties


@pytest.fixture(autouse=True)
def _aws_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach AWS: dummy credentials, a region, and no endpoint overrides leaking in."""
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    server = DynamoDBLocal(ROOT, data_dir=None).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ddb_table(dynamodb_local: DynamoDBLocal) -> tuple[object, str]:
    """A fresh table on DynamoDB Local, shaped as template.yaml declares it."""
    client = client_for(dynamodb_local.endpoint)
    name = f"t-{uuid.uuid4().hex[:12]}"
    ensure_table(client, name, table_properties())
    return client, name
