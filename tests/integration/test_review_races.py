"""Review decisions racing on DynamoDB Local (real conditional writes and transactions): two decisions at once,
a decision against a stop of the run, and a decision against the timeout's. Each time exactly one decision lands,
the losers get ReviewConflict holding the winner's state (the API's 409), and the node is woken once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import pytest

from agentflow.config import Settings
from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.reviews import STOPPED, ReviewConflict
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus, NodeStatus, ReviewStatus
from agentflow.store import Store
from agentflow.store.reviews import ReviewRecord
from tests.graphs import reviewed
from tests.support.clock import FakeClock
from tests.unit.driver import drain

ROUNDS = 4
RACERS = 6


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def engine(ddb_table: tuple[Any, str], publisher: RecordingPublisher, clock: FakeClock) -> Engine:
    client, table = ddb_table
    settings = Settings(table_name=table, event_bus_name="bus", default_lease_seconds=60)
    return Engine(Store(client, table, clock=clock), publisher, settings)


def paused_run(engine: Engine, publisher: RecordingPublisher, **review: Any) -> tuple[str, str]:
    graph_id, version = engine.register_graph("u1", validate_graph(reviewed(**review)))
    execution_id = engine.start_execution("u1", graph_id, version, {"x": {"n": 1}}).execution_id
    drain(engine, publisher)
    run = engine.store.get_execution(execution_id)
    assert run is not None and run.status is ExecutionStatus.REVIEW
    (node,) = [n for n in engine.store.list_nodes(execution_id) if n.node_id == "review"]
    assert node.review_id is not None
    return execution_id, node.review_id


def race(*racers: Callable[[], Any]) -> list[Any]:
    """Run every racer at once (a barrier releases them together); each answer is its result or its exception."""
    barrier = threading.Barrier(len(racers))

    def go(racer: Callable[[], Any]) -> Any:
        barrier.wait()
        try:
            return racer()
        except ReviewConflict as lost:
            return lost

    with ThreadPoolExecutor(len(racers)) as pool:
        return list(pool.map(go, racers))


def wakes(publisher: RecordingPublisher, execution_id: str) -> int:
    """The review node's queued events published since the last take (left for the driver to deliver)."""
    return sum(
        1
        for e in publisher.events
        if e.detail_type == NODE_EXECUTION_QUEUED
        and e.detail["execution_id"] == execution_id
        and e.detail["node_id"] == "review"
    )


def test_decisions_at_once_have_exactly_one_winner(engine: Engine, publisher: RecordingPublisher) -> None:
    for _ in range(ROUNDS):
        execution_id, review_id = paused_run(engine, publisher)
        answers = race(
            *[partial(engine.decide_review, "u1", review_id, i % 2 == 0, message=f"racer {i}") for i in range(RACERS)]
        )
        won = [a for a in answers if isinstance(a, ReviewRecord)]
        lost = [a for a in answers if isinstance(a, ReviewConflict)]
        assert len(won) == 1 and len(lost) == RACERS - 1, answers
        final = engine.store.get_review(review_id)
        assert final is not None and final.status is won[0].status and final.review_message == won[0].review_message
        assert all(c.review.status is final.status and c.review.review_message == final.review_message for c in lost)
        assert wakes(publisher, execution_id) == 1
        drain(engine, publisher)
        report = execution_report(engine.store, execution_id, ["approved", "rejected", "message"])
        assert report is not None and report["status"] == "COMPLETED"
        assert report["outputs"]["message"] == [won[0].review_message]


def test_a_decision_against_a_stop_lands_once(engine: Engine, publisher: RecordingPublisher) -> None:
    for _ in range(ROUNDS):
        execution_id, review_id = paused_run(engine, publisher)
        approvers = [partial(engine.decide_review, "u1", review_id, True) for _ in range(RACERS - 1)]
        answers = race(partial(engine.stop, execution_id), *approvers)
        stopped, decisions = answers[0], answers[1:]
        assert stopped.won  # a stop of a run in REVIEW always lands
        won = [a for a in decisions if isinstance(a, ReviewRecord)]
        final = engine.store.get_review(review_id)
        assert final is not None
        if won:  # an approval came first: the stop found the review decided
            assert len(won) == 1 and final.status is ReviewStatus.APPROVED
        else:  # the stop came first: it rejected the review, and every approval lost to it
            assert final.status is ReviewStatus.REJECTED and final.review_message == STOPPED
        for lost in (a for a in decisions if a not in won):
            assert isinstance(lost, ReviewConflict)
            # the state when it lost: decided, or still WAITING in a run the stop had just moved on
            assert lost.review.status is final.status or lost.execution_status == "TERMINATED", lost
        run = engine.store.get_execution(execution_id)
        assert run is not None and run.status is ExecutionStatus.TERMINATED and run.reviewing == 0
        node = next(n for n in engine.store.list_nodes(execution_id) if n.node_id == "review")
        assert node.status in (NodeStatus.QUEUED, NodeStatus.TERMINATED)  # woken by the approval, or stopped
        publisher.take()
        assert engine.resume(execution_id).won
        drain(engine, publisher)
        report = execution_report(engine.store, execution_id, ["approved", "rejected"])
        assert report is not None and report["status"] == "COMPLETED"
        side = "approved" if final.status is ReviewStatus.APPROVED else "rejected"
        assert report["outputs"][side] == [{"n": 1}]


def test_a_decision_after_the_timeout_loses_to_it_whoever_comes_first(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    for _ in range(ROUNDS):
        execution_id, review_id = paused_run(engine, publisher, timeout_seconds=30, on_timeout="approve")
        clock.now += 31
        approvers = [partial(engine.decide_review, "u1", review_id, False, message="too late") for _ in range(4)]
        answers = race(*approvers, engine.sweep, engine.sweep)
        assert all(isinstance(a, ReviewConflict) for a in answers[:4]), answers
        assert sum(report.reviews_timed_out for report in answers[4:]) <= 1
        final = engine.store.get_review(review_id)
        assert final is not None and final.status is ReviewStatus.APPROVED and final.timed_out
        assert wakes(publisher, execution_id) == 1
        drain(engine, publisher)
        report = execution_report(engine.store, execution_id, ["approved", "rejected"])
        assert report is not None and report["status"] == "COMPLETED" and report["outputs"]["approved"] == [{"n": 1}]
