"""Sub-agents through the engine (AgentExecutorBlock): a node starts a child run and waits for it with no worker
waiting (its node execution is WAITING), the child's end wakes it, and it yields the child's outputs or fails with
its error. Every event delivered three times starts each child once; stopping a parent stops its children and
resuming it resumes them; the depth limit and a graph calling itself are refused."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine, subagents
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import NodeStatus
from tests.graphs import GraphBuilder, adder, call_child, divide_by_zero, twice, wrapper
from tests.unit.driver import drain, run_graph

AGENT = "AgentExecutorBlock"


def register(engine: Engine, graph: dict[str, Any]) -> tuple[str, int]:
    return engine.register_graph("u1", validate_graph(graph))


def children_of(engine: Engine, report: dict[str, Any]) -> list[str]:
    return [n["child_execution_id"] for n in report["nodes"] if n["block_name"] == AGENT]


@pytest.mark.parametrize(("seed", "copies"), [(None, 1), (7, 3)], ids=["in-order", "shuffled-3x"])
def test_a_parent_calls_a_child_twice_and_gets_its_outputs(
    engine: Engine, publisher: RecordingPublisher, seed: int | None, copies: int
) -> None:
    child = register(engine, adder(1))
    report = run_graph(engine, publisher, twice(child), {"x": 2}, seed=seed, copies=copies)
    assert report["status"] == "COMPLETED", report["error"]
    assert sorted(report["outputs"]["out"]) == [3.0, 21.0]
    kids = children_of(engine, report)
    assert len(kids) == len(set(kids)) == 2  # each child started once, whatever the duplicates
    for kid in kids:
        child_report = execution_report(engine.store, kid, ["y"])
        assert child_report is not None and child_report["status"] == "COMPLETED"
        assert child_report["parent_execution_id"] == report["execution_id"]
        assert child_report["parent_node_id"] in ("first", "second")
    first = next(n for n in report["nodes"] if n["node_id"] == "first")
    assert first["status"] == "COMPLETED" and first["outputs"] == {"y": [3.0]}
    assert first["attempts"] == 2 and first["attempt_log"][-1]["attempt"] == 1  # waiting is not an attempt


def test_a_failed_child_fails_the_parent_node_with_its_error(engine: Engine, publisher: RecordingPublisher) -> None:
    child = register(engine, divide_by_zero())
    report = run_graph(engine, publisher, twice(child), {"x": 2})
    assert report["status"] == "FAILED"
    assert "the sub-agent run" in report["error"] and "failed" in report["error"]
    assert "divide by zero" in report["error"].lower() or "division" in report["error"].lower()


def test_a_failed_child_goes_to_the_error_pin_when_it_is_linked(engine: Engine, publisher: RecordingPublisher) -> None:
    child = register(engine, divide_by_zero())
    report = run_graph(engine, publisher, twice(child, handled=True), {"x": 2})
    assert report["status"] == "COMPLETED", report["error"]
    assert len(report["outputs"]["error"]) == 2
    assert all("the sub-agent run" in message for message in report["outputs"]["error"])


def test_a_graph_calling_itself_is_refused(engine: Engine, publisher: RecordingPublisher) -> None:
    graph_id, version = register(engine, adder())
    builder = GraphBuilder("self").input("x", "x").output("out", "out").link("x", "result", "me", "x")
    call_child(builder, "me", (graph_id, version + 1)).link("me", "y", "out", "value")
    valid = validate_graph(builder.build())
    _, own_version = engine.register_graph("u1", valid, graph_id)  # the same graph id, a new version
    execution_id = engine.start_execution("u1", graph_id, own_version, {"x": 1}).execution_id
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id, ["out"])
    assert report is not None and report["status"] == "FAILED"
    assert "calls itself" in report["error"]


def test_the_depth_limit(engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subagents, "MAX_DEPTH", 2)
    inner = register(engine, adder())
    middle = register(engine, wrapper(inner))
    outer = register(engine, wrapper(middle))
    ok = run_graph(engine, publisher, wrapper(middle), {"x": 1})  # depth 2: allowed
    assert ok["status"] == "COMPLETED", ok["error"]
    assert ok["outputs"]["y"] == [2.0]
    too_deep = run_graph(engine, publisher, wrapper(outer), {"x": 1})  # depth 3
    assert too_deep["status"] == "FAILED"
    assert "sub-agent depth limit reached" in too_deep["error"]


def test_stopping_a_parent_stops_its_running_child_and_resuming_resumes_it(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    child = register(engine, adder(5))
    parent_id, parent_version = register(engine, wrapper(child))
    execution_id = engine.start_execution("u1", parent_id, parent_version, {"x": 1}).execution_id
    # run the parent's nodes only, until its sub-agent node waits for a child whose nodes are still queued
    held: list[Any] = []
    while True:
        events = publisher.take()
        queued = [e for e in events if e.detail_type == NODE_EXECUTION_QUEUED]
        held += [e for e in queued if e.detail["execution_id"] != execution_id]
        mine = [e for e in queued if e.detail["execution_id"] == execution_id]
        if not mine:
            break
        for event in mine:
            engine.run_node(execution_id, event.detail["node_id"], int(event.detail["seq"]))
    report = execution_report(engine.store, execution_id, ["y"])
    assert report is not None
    (call,) = [n for n in report["nodes"] if n["node_id"] == "call"]
    assert call["status"] == NodeStatus.WAITING.value
    child_id = call["child_execution_id"]
    assert engine.stop(execution_id).won
    child_now = execution_report(engine.store, child_id)
    assert child_now is not None and child_now["status"] == "TERMINATED"
    for event in held:  # the child's held events now find it stopped
        engine.run_node(event.detail["execution_id"], event.detail["node_id"], int(event.detail["seq"]))
    assert engine.resume(execution_id).won
    drain(engine, publisher)
    done = execution_report(engine.store, execution_id, ["y"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert done["outputs"]["y"] == [6.0]
    child_done = execution_report(engine.store, child_id)
    assert child_done is not None and child_done["status"] == "COMPLETED"
    assert children_of(engine, done) == [child_id]  # the same child, resumed: not a second one


def test_the_sweeper_wakes_a_parent_whose_child_ended_without_waking_it(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = register(engine, adder(1))
    monkeypatch.setattr(subagents.SubAgents, "_wake_parent", lambda self, store, child: None)  # the waker died
    parent_id, parent_version = register(engine, wrapper(child))
    execution_id = engine.start_execution("u1", parent_id, parent_version, {"x": 1}).execution_id
    drain(engine, publisher)
    stuck = execution_report(engine.store, execution_id, ["y"])
    assert stuck is not None and stuck["status"] == "RUNNING"
    monkeypatch.undo()
    report = engine.sweep(stale_after_seconds=0)
    assert report.woken == 1
    drain(engine, publisher)
    done = execution_report(engine.store, execution_id, ["y"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert done["outputs"]["y"] == [2.0]


def test_a_child_that_ends_before_its_parent_waits_is_still_recorded_on_the_parent_node(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    child = register(engine, adder(1))
    start = subagents.SubAgents._start_child

    def start_and_finish(self: subagents.SubAgents, *args: Any) -> str:
        child_id = start(self, *args)
        drain(engine, publisher)  # the child runs to its end before the parent node reads its status
        return child_id

    monkeypatch.setattr(subagents.SubAgents, "_start_child", start_and_finish)
    parent_id, parent_version = register(engine, wrapper(child))
    execution_id = engine.start_execution("u1", parent_id, parent_version, {"x": 1}).execution_id
    drain(engine, publisher)
    done = execution_report(engine.store, execution_id, ["y"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert done["outputs"]["y"] == [2.0]
    (kid,) = children_of(engine, done)
    assert kid is not None
    kid_report = execution_report(engine.store, kid, ["y"])
    assert kid_report is not None and kid_report["status"] == "COMPLETED"
