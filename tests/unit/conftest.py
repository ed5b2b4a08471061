"""Unit fixtures: moto in-process (no sockets). Fine for sequential logic; races belong to integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentflow.config import Settings
from agentflow.credentials.crypto import LocalKeyring
from agentflow.credentials.vault import CredentialVault
from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor import start as start_module
from agentflow.llm.settings import LlmSettings
from agentflow.store import Store
from agentflow_local.dynamodb import ensure_table
from tests.conftest import table_properties
from tests.support.clock import FakeClock
from tests.support.llm_server import LlmServer, llm_server
from tests.support.network import SocketGuard, guard_sockets

# what the SDKs would read from the environment: a test's provider is the loopback server, named explicitly
PROVIDER_VARIABLES = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY")
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")

SDK_ENV = [  # everything the SDKs read from the environment: the tests that call them directly clear it
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_CUSTOM_HEADERS",
    "ANTHROPIC_PROFILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
]


@pytest.fixture
def moto_table() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        ensure_table(client, "agentflow-test", table_properties())
        yield client, "agentflow-test"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def engine(moto_table: tuple[Any, str], publisher: RecordingPublisher, clock: FakeClock) -> Engine:
    client, table = moto_table
    settings = Settings(table_name=table, event_bus_name="bus", default_lease_seconds=60)
    return Engine(Store(client, table, clock=clock), publisher, settings)


@pytest.fixture(scope="module")
def llm_provider() -> Iterator[LlmServer]:
    with llm_server() as running:
        yield running


@pytest.fixture
def llm(llm_provider: LlmServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[LlmServer]:
    """The loopback provider server, emptied, with every connection outside loopback refused."""
    for name in (*PROVIDER_VARIABLES, *PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    llm_provider.reset()
    with guard_sockets() as guard:
        yield llm_provider
    assert not llm_provider.problems
    assert not guard.violations, guard.violations


@pytest.fixture
def ai_engine(
    moto_table: tuple[Any, str], publisher: RecordingPublisher, clock: FakeClock, llm: LlmServer, tmp_path: Path
) -> Engine:
    """An engine whose platform keys are set and whose providers are the loopback server (operator settings)."""
    client, table = moto_table
    store = Store(client, table, clock=clock)
    settings = Settings(
        table_name=table,
        event_bus_name="bus",
        default_lease_seconds=60,
        llm=LlmSettings(timeout_seconds=10, openai_base_url=llm.openai_base_url, anthropic_base_url=llm.url),
    )
    env = {"OPENAI_API_KEY": "sk-platform-openai", "ANTHROPIC_API_KEY": "sk-platform-anthropic"}
    vault = CredentialVault(store, LocalKeyring(tmp_path / "credentials.key"), env=env)
    return Engine(store, publisher, settings, credentials=vault)


# For the tests that call the LLM SDKs directly (test_llm_calls, _structured, _server): they take
# `pytestmark = pytest.mark.usefixtures("sdk_env_cleared", "sockets")` and a fresh `server` per test.


@pytest.fixture
def sdk_env_cleared(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's real key, endpoint or proxy must never be used."""
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sockets() -> Iterator[SocketGuard]:
    """Every socket guarded: a connection outside loopback fails the test."""
    with guard_sockets() as guard:
        yield guard
    assert not guard.violations, guard.violations


@pytest.fixture
def server() -> Iterator[LlmServer]:
    """A provider server of the test's own, on loopback."""
    with llm_server() as started:
        yield started
        assert not started.problems, started.problems


@pytest.fixture
def ordinary_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """Input nodes queued by the start like any starting node, not run by it (executor/start_inputs.py): for tests
    that drive a run by hand from its input node."""
    monkeypatch.setattr(start_module, "run_inputs_at_start", lambda graph, execution_id, nodes, clock: nodes)


@pytest.fixture
def published(publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The node of every NodeExecutionQueued event published (the driver still takes them as it runs them)."""
    nodes: list[str] = []
    real = publisher.publish

    def publish(events: Any) -> None:
        nodes.extend(str(e.detail["node_id"]) for e in events if e.detail_type == NODE_EXECUTION_QUEUED)
        real(events)

    monkeypatch.setattr(publisher, "publish", publish)
    return nodes
