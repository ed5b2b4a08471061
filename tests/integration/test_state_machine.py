"""Every status transition on real DynamoDB semantics (DynamoDB Local): allowed ones win, forbidden ones raise,
lost races hand back the current item without a second read, and concurrent racers have exactly one winner."""

from __future__ import annotations

import itertools
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agentflow import keys
from agentflow.statuses import (
    EXECUTION_TRANSITIONS,
    NODE_TRANSITIONS,
    REVIEW_TRANSITIONS,
    ExecutionStatus,
    NodeStatus,
    ReviewStatus,
)
from agentflow.store import Meter, Store
from agentflow.store.dynamo import serialize
from agentflow.store.reviews import Decision

E, N = ExecutionStatus, NodeStatus


def put_execution(store: Store, status: E, pending: int = 0) -> str:
    execution_id = str(uuid.uuid4())
    item = {
        "execution_id": execution_id,
        "status": status.value,
        "pending": pending,
        "history": [{"status": status.value, "at": "t0"}],
    }
    store.client.put_item(
        TableName=store.table,
        Item={"PK": {"S": keys.execution_pk(execution_id)}, "SK": {"S": keys.META}}
        | {k: serialize(v) for k, v in item.items()},
    )
    return execution_id


def put_node(store: Store, execution_id: str, status: N, lease_until: int = 0) -> None:
    item = {"node_id": "n", "seq": 0, "status": status.value, "attempts": 1, "lease_until": lease_until}
    store.client.put_item(
        TableName=store.table,
        Item={"PK": {"S": keys.execution_pk(execution_id)}, "SK": {"S": keys.node_sk("n", 0)}}
        | {k: serialize(v) for k, v in item.items()},
    )


@pytest.fixture
def store(ddb_table: tuple[Any, str]) -> Store:
    client, name = ddb_table
    return Store(client, name)


@pytest.mark.parametrize(("source", "target"), list(itertools.product(E, E)))
def test_every_execution_transition(store: Store, source: E, target: E) -> None:
    execution_id = put_execution(store, source)
    if target in EXECUTION_TRANSITIONS[source]:
        result = store.transition_execution(execution_id, target, [source])
        assert result.won and result.status == target.value
        assert [h["status"] for h in result.item.history] == [source.value, target.value]  # type: ignore[union-attr]
    else:
        with pytest.raises(ValueError, match=rf"{source.value} -> {target.value}"):
            store.transition_execution(execution_id, target, [source])
        assert store.get_execution(execution_id).status == source.value  # type: ignore[union-attr]


@pytest.mark.parametrize(("source", "target"), list(itertools.product(N, N)))
def test_every_node_transition(store: Store, source: N, target: N) -> None:
    execution_id = str(uuid.uuid4())
    put_node(store, execution_id, source)
    if target is N.RUNNING:
        # RUNNING is entered only by a claim, which carries the lease; asking transition_node for it is a bug.
        with pytest.raises(ValueError):
            store.transition_node(execution_id, "n", 0, target, [source] if source is not N.RUNNING else None)
        claim = store.claim_node(execution_id, "n", 0, lease_seconds=60)
        # lease_until=0 has expired, so a RUNNING node can be taken over; QUEUED can be claimed; nothing else.
        assert claim.won == (source in (N.QUEUED, N.RUNNING))
        return
    if target in NODE_TRANSITIONS[source]:
        result = store.transition_node(execution_id, "n", 0, target, [source])
        assert result.won and result.status == target.value
    else:
        with pytest.raises(ValueError, match=rf"{source.value} -> {target.value}"):
            store.transition_node(execution_id, "n", 0, target, [source])
        assert store.get_node(execution_id, "n", 0).status == source.value  # type: ignore[union-attr]


@pytest.mark.parametrize("source", list(E))
def test_blocked_transition_returns_current_item_without_second_read(store: Store, source: E) -> None:
    """Default sources = every source the table allows; a status outside them loses and sees the item as is."""
    execution_id = put_execution(store, source)
    meter = Meter()
    result = store.with_meter(meter).transition_execution(execution_id, E.COMPLETED)
    assert meter.requests == 1
    if source is E.RUNNING:
        assert result.won and result.status == "COMPLETED"
    else:
        assert not result.won
        assert result.item is not None and result.item.status == source.value
        assert result.item.execution_id == execution_id


def test_live_lease_cannot_be_taken_over(store: Store) -> None:
    execution_id = str(uuid.uuid4())
    put_node(store, execution_id, N.QUEUED)
    first = store.claim_node(execution_id, "n", 0, lease_seconds=60)
    second = store.claim_node(execution_id, "n", 0, lease_seconds=60)
    assert first.won and first.item is not None and first.item.attempts == 2
    assert not second.won and second.item is not None and second.item.status == "RUNNING"


def test_pending_guard_blocks_finalize(store: Store) -> None:
    execution_id = put_execution(store, E.RUNNING, pending=1)
    result = store.transition_execution(execution_id, E.COMPLETED, [E.RUNNING], require_pending_zero=True)
    assert not result.won and result.item is not None and result.item.pending == 1


def race(workers: int, action: Any) -> list[Any]:
    barrier = threading.Barrier(workers)

    def run(i: int) -> Any:
        barrier.wait()
        return action(i)

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(run, range(workers)))


def test_32_workers_race_one_transition_200_rounds(store: Store) -> None:
    """Concurrent stop / complete / fail of one RUNNING execution: exactly one winner, every round."""
    targets = [E.TERMINATED, E.COMPLETED, E.FAILED]
    with ThreadPoolExecutor(32) as pool:
        for _ in range(200):
            execution_id = put_execution(store, E.RUNNING)
            barrier = threading.Barrier(32)

            def attempt(i: int, execution_id: str = execution_id, barrier: threading.Barrier = barrier) -> Any:
                barrier.wait()
                return store.transition_execution(execution_id, targets[i % 3], [E.RUNNING])

            results = list(pool.map(attempt, range(32)))
            winners = [r for r in results if r.won]
            assert len(winners) == 1
            final = winners[0].status
            assert all(r.status == final for r in results)  # losers saw the winner's item
            history = store.get_execution(execution_id).history  # type: ignore[union-attr]
            assert [h["status"] for h in history] == ["RUNNING", final]


def test_32_workers_race_one_claim(store: Store) -> None:
    for _ in range(50):
        execution_id = str(uuid.uuid4())
        put_node(store, execution_id, N.QUEUED)
        results = race(32, lambda i, e=execution_id: store.claim_node(e, "n", 0, lease_seconds=60))
        assert sum(r.won for r in results) == 1
        assert store.get_node(execution_id, "n", 0).attempts == 2  # type: ignore[union-attr]


def put_review(store: Store, status: ReviewStatus) -> str:
    execution_id = put_execution(store, E.REVIEW, pending=1)
    review_id = keys.review_id(execution_id, "n", 0)
    item = {"review_id": review_id, "execution_id": execution_id, "node_id": "n", "seq": 0, "status": status.value}
    store.client.put_item(
        TableName=store.table,
        Item={"PK": {"S": keys.execution_pk(execution_id)}, "SK": {"S": keys.review_sk(review_id)}}
        | {k: serialize(v) for k, v in item.items()},
    )
    return review_id


@pytest.mark.parametrize(("source", "target"), list(itertools.product(ReviewStatus, ReviewStatus)))
def test_every_review_transition(store: Store, source: ReviewStatus, target: ReviewStatus) -> None:
    """A review is decided once: only WAITING -> APPROVED/REJECTED lands, by any decider; nothing else moves it."""
    review_id = put_review(store, source)
    if target is ReviewStatus.WAITING:
        with pytest.raises(ValueError, match="WAITING -> WAITING"):
            store.decide_review(review_id, Decision(target), 0.0, "stop")
        return
    for by in ("person", "timeout", "stop"):
        won = store.decide_review(review_id, Decision(target), 0.0, by)  # type: ignore[arg-type]
        review = store.get_review(review_id)
        assert review is not None
        if source is ReviewStatus.WAITING and by != "timeout":  # no timeout_at: the timeout never decides it
            assert won and review.status is target
            return
        assert not won and review.status is source
    assert target not in REVIEW_TRANSITIONS[source]  # nothing but WAITING may be decided
