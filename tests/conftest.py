"""Shared fixtures. DynamoDB Local is started once per test session, and only if a test asks for it."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agentflow_local.dynamodb import DynamoDBLocal, client_for, ensure_table
from agentflow_local.template import load_template

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


@dataclass
class ApiServer:
    """A running `agentflow serve`, with its own data folder and table on the session's DynamoDB Local."""

    url: str
    dev_key: str
    env: dict[str, str]
    process: subprocess.Popen[str]

    def create_key(self, user: str) -> str:
        """`agentflow keys create --user USER`, as a user would run it beside the running stack."""
        done = subprocess.run(
            [sys.executable, "-m", "agentflow_local.cli", "keys", "create", "--user", user],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()


@pytest.fixture(scope="session")
def api_server(dynamodb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    from tests.support.serving import serve_env, start_serve

    local = tmp_path_factory.mktemp("agentflow-local")
    table = f"api-{uuid.uuid4().hex[:10]}"
    env = serve_env(local, AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint, AGENTFLOW_TABLE=table)
    served = start_serve(env)
    try:
        yield ApiServer(served.url, served.key, env, served.process)
    finally:
        try:
            served.interrupt(timeout=30)
        except subprocess.TimeoutExpired:
            served.process.kill()
