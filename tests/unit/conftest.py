"""Unit fixtures: moto in-process (no sockets). Fine for sequential logic; races belong to integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentflow.config import Settings
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.store import Store
from agentflow_local.dynamodb import ensure_table
from tests.conftest import table_properties
from tests.support.clock import FakeClock


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
