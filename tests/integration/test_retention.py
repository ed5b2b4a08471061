"""Retention on DynamoDB Local: every item of a finished run carries `expires_at` (DynamoDB TTL deletes it after
that), items of unfinished runs never do, and a retention cut short is finished by the sweeper."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agentflow import keys
from agentflow.graph import validate_graph
from agentflow.store import Store
from agentflow.store.dynamo import deserialize_item
from agentflow_local.dynamodb import DynamoDBLocal
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]
NOW = 2_000_000_000.0  # the stack's clock: fixed, so expiries are exact
DAY = 86_400


def make_stack(dynamodb_local: DynamoDBLocal, retention_days: float | None) -> LocalStack:
    config = LocalStackConfig(
        root=ROOT,
        dynamodb_endpoint=dynamodb_local.endpoint,
        table_name=f"t-{uuid.uuid4().hex[:10]}",
        log_level="WARNING",
        clock=lambda: NOW,
        retention_days=retention_days,
    )
    return LocalStack(config)


@pytest.fixture
def stacks(dynamodb_local: DynamoDBLocal) -> Iterator[Callable[[float | None], LocalStack]]:
    saved = dict(os.environ)
    started: list[LocalStack] = []

    def start(retention_days: float | None) -> LocalStack:
        stack = make_stack(dynamodb_local, retention_days).start()
        started.append(stack)
        return stack

    try:
        yield start
    finally:
        for stack in started:
            stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def items_of(store: Store, execution_id: str) -> list[dict[str, Any]]:
    response = store.client.query(
        TableName=store.table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": keys.execution_pk(execution_id)}},
        ConsistentRead=True,
    )
    return [i for i in (deserialize_item(raw) for raw in response["Items"]) if i]


def idempotency_item(store: Store, user: str, key: str) -> dict[str, Any] | None:
    raw = store.client.get_item(
        TableName=store.table,
        Key={"PK": {"S": keys.idempotency_pk(user, key)}, "SK": {"S": keys.IDEMPOTENCY}},
        ConsistentRead=True,
    ).get("Item")
    return deserialize_item(raw)


def run_to_end(stack: LocalStack, graph: dict[str, Any], inputs: dict[str, Any], key: str | None = None) -> str:
    engine, bus = stack.engine, stack.bus
    assert bus is not None
    graph_id, version = engine.register_graph("u1", validate_graph(graph))
    execution_id = engine.start_execution("u1", graph_id, version, inputs, idempotency_key=key).execution_id
    deadline = time.monotonic() + 60
    while True:
        execution = engine.store.get_execution(execution_id)
        assert execution is not None
        if execution.status in ("COMPLETED", "FAILED") and bus.wait_idle(0):
            return execution_id
        assert time.monotonic() < deadline, f"run did not finish: {execution.status}"
        time.sleep(0.05)


def in_sweep_index(store: Store, execution_id: str) -> bool:
    return any(e.execution_id == execution_id for e in store.list_active_executions())


def test_every_item_of_a_finished_run_expires_after_the_retention(stacks: Callable[..., LocalStack]) -> None:
    stack = stacks(None)  # template.yaml's default: 30 days
    store = stack.engine.store
    execution_id = run_to_end(stack, graphs.fan_out(), {"items": [1, 2, 3]}, key="order-7")
    items = items_of(store, execution_id)
    kinds = {str(i["SK"]).split("#", 1)[0] for i in items}
    assert kinds >= {"META", "STATS", "INPUTS", "NODE", "PINS"}  # every kind of item a run has (outputs: on NODE)
    expected = int(NOW + 30 * DAY)  # the run ended at NOW on the stack's clock
    assert {i["SK"]: i.get("expires_at") for i in items} == {i["SK"]: expected for i in items}
    idempotency = idempotency_item(store, "u1", "order-7")
    assert idempotency is not None and idempotency["expires_at"] == expected  # the key expires with its run
    assert not in_sweep_index(store, execution_id)


def test_failed_runs_expire_too_and_the_setting_is_honoured(stacks: Callable[..., LocalStack]) -> None:
    stack = stacks(2.5)
    execution_id = run_to_end(stack, graphs.failing(handle_error=False), {"x": 1})
    items = items_of(stack.engine.store, execution_id)
    assert next(i for i in items if i["SK"] == keys.META)["status"] == "FAILED"
    assert {i.get("expires_at") for i in items} == {int(NOW + 2.5 * DAY)}


def test_unfinished_runs_never_carry_an_expiry(stacks: Callable[..., LocalStack]) -> None:
    stack = stacks(None)
    engine, store = stack.engine, stack.engine.store
    graph_id, version = engine.register_graph("u1", validate_graph(graphs.fan_out()))
    stopped = engine.start_execution("u1", graph_id, version, {"items": list(range(40))}).execution_id
    engine.stop(stopped)  # TERMINATED: unfinished, it may be resumed at any time
    assert stack.bus is not None and stack.bus.wait_idle(60)
    items = items_of(store, stopped)
    assert next(i for i in items if i["SK"] == keys.META)["status"] == "TERMINATED"
    assert len(items) > 2 and all("expires_at" not in i for i in items)
    engine.sweep(stale_after_seconds=0)
    assert all("expires_at" not in i for i in items_of(store, stopped))  # nor does the sweeper stamp them


def test_zero_keeps_runs_forever(stacks: Callable[..., LocalStack]) -> None:
    stack = stacks(0)
    execution_id = run_to_end(stack, graphs.linear(), {"x": 1})
    store = stack.engine.store
    assert all("expires_at" not in i for i in items_of(store, execution_id))
    assert not in_sweep_index(store, execution_id)


def test_a_retention_cut_short_is_finished_by_the_sweeper(
    stacks: Callable[..., LocalStack], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = stacks(None)
    store = stack.engine.store

    def crash(self: Store, execution_id: str, expires_at: int | None, idempotency_pk: str | None) -> int:
        raise ConnectionError("the worker died while stamping")

    with monkeypatch.context() as patch:
        patch.setattr(Store, "retire", crash)
        execution_id = run_to_end(stack, graphs.linear(), {"x": 1})
    assert all("expires_at" not in i for i in items_of(store, execution_id))
    assert in_sweep_index(store, execution_id)  # still listed, so it cannot be forgotten
    report = stack.engine.sweep()
    assert report.retired == 1
    assert {i.get("expires_at") for i in items_of(store, execution_id)} == {int(NOW + 30 * DAY)}
    assert not in_sweep_index(store, execution_id)
    assert stack.engine.sweep().retired == 0
