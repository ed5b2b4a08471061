"""Human review through the engine (HumanInTheLoopBlock): the node records a review and waits with no worker
waiting; the run pauses (REVIEW) once nothing else is left; a decision (a person's, the timeout's, or a stop's)
lands once and the node yields it as AutoGPT's block does. Sequential, on moto: the races are in
tests/integration/test_review_races.py, on DynamoDB Local."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import keys
from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.reviews import STOPPED, InvalidDecision, ReviewConflict
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus, NodeStatus, ReviewStatus
from agentflow.store.reviews import Decision
from tests.graphs import GraphBuilder, reviewed
from tests.support.clock import FakeClock
from tests.unit.driver import drain

OUTPUTS = ["approved", "rejected", "message", "side"]


def start(engine: Engine, graph: dict[str, Any], x: Any = {"title": "draft"}) -> str:  # noqa: B006 - read only
    graph_id, version = engine.register_graph("u1", validate_graph(graph))
    return engine.start_execution("u1", graph_id, version, {"x": x}).execution_id


def report(engine: Engine, execution_id: str) -> dict[str, Any]:
    found = execution_report(engine.store, execution_id, OUTPUTS)
    assert found is not None
    return found


def the_review_id(engine: Engine, execution_id: str) -> str:
    (node,) = [n for n in engine.store.list_nodes(execution_id) if n.node_id == "review"]
    assert node.review_id == keys.review_id(execution_id, "review", 0)
    return node.review_id


def paused(engine: Engine, publisher: RecordingPublisher, graph: dict[str, Any], **kw: Any) -> tuple[str, str]:
    execution_id = start(engine, graph, **kw)
    drain(engine, publisher)
    assert report(engine, execution_id)["status"] == "REVIEW"
    return execution_id, the_review_id(engine, execution_id)


def test_the_run_pauses_with_a_pending_review_of_the_data(engine: Engine, publisher: RecordingPublisher) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed())
    (pending,) = engine.list_reviews("u1")
    assert pending.to_dict() | {"created_at": None} == pending.to_dict() | {
        "id": review_id,
        "execution_id": execution_id,
        "node_id": "review",
        "payload": {"title": "draft"},
        "instructions": "check x",
        "editable": True,
        "status": "WAITING",
        "created_at": None,
        "timeout_at": None,
    }
    assert engine.list_reviews("someone else") == []
    run = engine.store.get_execution(execution_id)
    assert run is not None and run.pending == run.reviewing == 1  # nothing but the review is left
    node = next(n for n in report(engine, execution_id)["nodes"] if n["node_id"] == "review")
    assert node["status"] == "WAITING" and node["review_id"] == review_id and node["attempts"] == 1
    assert [h["status"] for h in run.history] == ["INCOMPLETE", "QUEUED", "RUNNING", "REVIEW"]


def test_an_approval_with_edited_data_is_what_the_block_yields(engine: Engine, publisher: RecordingPublisher) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed())
    decided = engine.decide_review("u1", review_id, True, {"title": "final"}, "  fine now  ")
    assert decided.status is ReviewStatus.APPROVED and decided.was_edited and decided.review_message == "fine now"
    assert engine.list_reviews("u1") == []  # decided: off the pending list
    drain(engine, publisher)
    done = report(engine, execution_id)
    assert done["status"] == "COMPLETED", done["error"]
    assert done["outputs"] == {"approved": [{"title": "final"}], "rejected": [], "message": ["fine now"], "side": []}
    history = [h["status"] for h in engine.store.get_execution(execution_id).history]  # type: ignore[union-attr]
    assert history[-3:] == ["REVIEW", "RUNNING", "COMPLETED"]


def test_a_rejection_yields_the_data_on_rejected_data_with_the_default_message(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed())
    engine.decide_review("u1", review_id, False)
    drain(engine, publisher)
    done = report(engine, execution_id)
    assert done["status"] == "COMPLETED"
    assert done["outputs"]["rejected"] == [{"title": "draft"}] and done["outputs"]["approved"] == []
    assert done["outputs"]["message"] == ["Execution rejected by reviewer"]


def test_bad_decisions_are_refused_and_change_nothing(engine: Engine, publisher: RecordingPublisher) -> None:
    _, review_id = paused(engine, publisher, reviewed(editable=False))
    with pytest.raises(InvalidDecision, match="not editable"):
        engine.decide_review("u1", review_id, True, {"title": "changed"})
    with pytest.raises(InvalidDecision, match="message is 2001 characters; the limit is 2000"):
        engine.decide_review("u1", review_id, True, message="m" * 2001)
    with pytest.raises(Exception, match="not found"):
        engine.decide_review("intruder", review_id, True)
    review = engine.store.get_review(review_id)
    assert review is not None and review.status is ReviewStatus.WAITING
    same = engine.decide_review("u1", review_id, True, {"title": "draft"})  # the same data is not an edit
    assert same.status is ReviewStatus.APPROVED and not same.was_edited


def test_a_second_decision_answers_with_the_first(engine: Engine, publisher: RecordingPublisher) -> None:
    _, review_id = paused(engine, publisher, reviewed())
    engine.decide_review("u1", review_id, False, message="no")
    with pytest.raises(ReviewConflict) as lost:
        engine.decide_review("u1", review_id, True)
    assert lost.value.review.status is ReviewStatus.REJECTED and lost.value.review.review_message == "no"
    assert "it was REJECTED already" in str(lost.value)


@pytest.mark.usefixtures("ordinary_start")  # driven by hand from its input node
def test_the_run_pauses_only_once_its_other_branches_are_done(engine: Engine, publisher: RecordingPublisher) -> None:
    execution_id = start(engine, reviewed(side_branch=True), x=1)
    queued = [e.detail for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
    engine.run_node(execution_id, "in", 0)
    events = [e.detail for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
    assert {e["node_id"] for e in events} == {"review", "side_add"} and [q["node_id"] for q in queued] == ["in"]
    engine.run_node(execution_id, "review", 0)
    assert report(engine, execution_id)["status"] == "RUNNING"  # the side branch still goes on
    engine.run_node(execution_id, "side_add", 0)
    drain(engine, publisher)
    paused_run = report(engine, execution_id)
    assert paused_run["status"] == "REVIEW" and paused_run["outputs"]["side"] == [2]


def test_every_event_three_times_records_one_review_and_yields_once(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    execution_id = start(engine, reviewed())
    drain(engine, publisher, seed=3, copies=3)
    assert len(engine.list_reviews("u1")) == 1
    engine.decide_review("u1", the_review_id(engine, execution_id), True)
    drain(engine, publisher, seed=4, copies=3)
    done = report(engine, execution_id)
    assert done["status"] == "COMPLETED" and done["outputs"]["approved"] == [{"title": "draft"}]
    assert done["outputs"]["message"] == ["Execution approved by reviewer"]


def test_a_review_past_its_timeout_is_decided_by_the_sweep_as_its_block_says(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed(timeout_seconds=60, on_timeout="approve"))
    review = engine.store.get_review(review_id)
    assert review is not None and review.timeout_at == pytest.approx(clock() + 60)
    clock.now += 59
    assert engine.sweep().reviews_timed_out == 0
    clock.now += 2
    assert engine.sweep().reviews_timed_out == 1
    assert engine.sweep().reviews_timed_out == 0  # once
    drain(engine, publisher)
    done = report(engine, execution_id)
    assert done["status"] == "COMPLETED" and done["outputs"]["approved"] == [{"title": "draft"}]
    assert done["outputs"]["message"] == ["the review timed out after its timeout_seconds: approved by its block"]


def test_a_decision_after_the_timeout_loses_to_it(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed(timeout_seconds=60))
    clock.now += 60
    with pytest.raises(ReviewConflict) as lost:
        engine.decide_review("u1", review_id, True)
    assert lost.value.review.status is ReviewStatus.REJECTED and lost.value.review.timed_out
    assert "timed out" in str(lost.value)
    drain(engine, publisher)  # the timeout's decision woke the node: the run goes on without the sweeper
    assert report(engine, execution_id)["outputs"]["rejected"] == [{"title": "draft"}]


def test_a_stop_rejects_the_review_and_a_resume_yields_the_rejection(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed())
    assert engine.stop(execution_id).won
    review = engine.store.get_review(review_id)
    assert review is not None and review.status is ReviewStatus.REJECTED and review.review_message == STOPPED
    with pytest.raises(ReviewConflict):
        engine.decide_review("u1", review_id, True)
    run = engine.store.get_execution(execution_id)
    assert run is not None and run.status is ExecutionStatus.TERMINATED and run.reviewing == 0
    assert engine.resume(execution_id).won
    drain(engine, publisher)
    done = report(engine, execution_id)
    assert done["status"] == "COMPLETED"
    assert done["outputs"]["rejected"] == [{"title": "draft"}] and done["outputs"]["message"] == [STOPPED]


def test_the_sweep_wakes_a_node_whose_decider_died_before_waking_it(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    execution_id, review_id = paused(engine, publisher, reviewed())
    assert engine.store.decide_review(review_id, Decision(ReviewStatus.APPROVED), clock(), "person")  # then died
    node = next(n for n in engine.store.list_nodes(execution_id) if n.node_id == "review")
    assert node.status is NodeStatus.WAITING
    engine.sweep()
    drain(engine, publisher)
    assert report(engine, execution_id)["status"] == "COMPLETED"


def test_a_first_version_export_keeps_its_pins(engine: Engine, publisher: RecordingPublisher) -> None:
    """The block's first pins: input `message`, outputs `reviewed_data` and `status` (same UUID)."""
    graph = (
        GraphBuilder("v1")
        .input("in", "x")
        .node("review", "8b2a7b3c-6e9d-4a5f-8c1b-2e3f4a5b6c7d", message="Please review")
        .output("approved", "approved")
        .output("rejected", "rejected")
        .link("in", "result", "review", "data")
        .link("review", "reviewed_data", "approved", "value")
        .link("review", "status", "rejected", "value")
        .build()
    )
    execution_id, review_id = paused(engine, publisher, graph)
    review = engine.store.get_review(review_id)
    assert review is not None and review.instructions == "Please review"
    engine.decide_review("u1", review_id, True)
    drain(engine, publisher)
    done = report(engine, execution_id)
    assert done["outputs"]["approved"] == [{"title": "draft"}] and done["outputs"]["rejected"] == ["approved"]
