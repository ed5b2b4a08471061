"""Property: whatever sequence of transitions is asked for, an execution and a node never leave their tables."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentflow import keys
from agentflow.statuses import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    ExecutionStatus,
    NodeStatus,
    allowed_sources,
)
from agentflow.store import Store
from agentflow.store.dynamo import serialize

EXEC_TARGETS = [s for s in ExecutionStatus if allowed_sources(EXECUTION_TRANSITIONS, s)]
NODE_TARGETS = [s for s in NodeStatus if s is not NodeStatus.RUNNING and allowed_sources(NODE_TRANSITIONS, s)]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # fresh ids per example
@given(targets=st.lists(st.sampled_from(EXEC_TARGETS), max_size=12))
def test_execution_sequences_stay_in_the_table(moto_table: tuple[Any, str], targets: list[ExecutionStatus]) -> None:
    client, table = moto_table
    store = Store(client, table)
    execution_id = str(uuid.uuid4())
    client.put_item(
        TableName=table,
        Item={"PK": {"S": keys.execution_pk(execution_id)}, "SK": {"S": keys.META}}
        | {
            k: serialize(v)
            for k, v in {"status": "INCOMPLETE", "pending": 0, "history": [{"status": "INCOMPLETE"}]}.items()
        },
    )
    current = ExecutionStatus.INCOMPLETE
    for target in targets:
        result = store.transition_execution(execution_id, target)
        assert result.won == (target in EXECUTION_TRANSITIONS[current])
        if result.won:
            current = target
        assert result.status == current.value
    history = [ExecutionStatus(h["status"]) for h in store.get_execution(execution_id).history]  # type: ignore[union-attr]
    for source, target in itertools.pairwise(history):
        assert target in EXECUTION_TRANSITIONS[source]
    assert history[-1] is current


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # fresh ids per example
@given(steps=st.lists(st.one_of(st.sampled_from(NODE_TARGETS), st.just("claim")), max_size=12))
def test_node_sequences_stay_in_the_table(moto_table: tuple[Any, str], steps: list[Any]) -> None:
    client, table = moto_table
    store = Store(client, table)
    execution_id = str(uuid.uuid4())
    client.put_item(
        TableName=table,
        Item={"PK": {"S": keys.execution_pk(execution_id)}, "SK": {"S": keys.node_sk("n", 0)}}
        | {k: serialize(v) for k, v in {"status": "INCOMPLETE", "attempts": 0}.items()},
    )
    current = NodeStatus.INCOMPLETE
    for step in steps:
        if step == "claim":
            result = store.claim_node(execution_id, "n", 0, lease_seconds=600)
            # a live lease is never taken over, so only QUEUED may be claimed here
            assert result.won == (current is NodeStatus.QUEUED)
            if result.won:
                current = NodeStatus.RUNNING
        else:
            result = store.transition_node(execution_id, "n", 0, step)
            assert result.won == (step in NODE_TRANSITIONS[current])
            if result.won:
                current = step
        assert result.status == current.value
