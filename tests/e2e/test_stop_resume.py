"""Stop a long fan-out midway, resume it, and get every output exactly once (local stack, in process)."""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import EXECUTION_TRANSITIONS, ExecutionStatus
from agentflow_local.dynamodb import DynamoDBLocal
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(dynamodb_local: DynamoDBLocal) -> Iterator[LocalStack]:
    saved = dict(os.environ)  # the stack sets the functions' environment in this process
    config = LocalStackConfig(
        root=ROOT,
        dynamodb_endpoint=dynamodb_local.endpoint,
        table_name=f"t-{uuid.uuid4().hex[:10]}",
        concurrency=1,
        log_level="WARNING",
    )
    try:
        with LocalStack(config) as running:
            yield running
    finally:
        os.environ.clear()
        os.environ.update(saved)


def wait_for(predicate, timeout: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_stop_midway_then_resume_gives_every_output_once(stack: LocalStack) -> None:
    engine, bus = stack.engine, stack.bus
    assert bus is not None
    graph = validate_graph(graphs.fan_out())
    graph_id, version = engine.register_graph("u1", graph)
    items = list(range(30))
    execution_id = engine.start_execution("u1", graph_id, version, {"items": items}).execution_id

    def squares_done() -> int:
        report = execution_report(engine.store, execution_id)
        assert report is not None
        return sum(1 for n in report["nodes"] if n["node_id"] == "square" and n["status"] == "COMPLETED")

    wait_for(lambda: squares_done() >= 3)
    stopped = engine.stop(execution_id)
    assert stopped.won and stopped.status == "TERMINATED"
    assert bus.wait_idle(60)
    paused = execution_report(engine.store, execution_id)
    assert paused is not None and paused["status"] == "TERMINATED"
    done_before = len(paused["outputs"].get("squares", []))
    assert done_before < len(items), "the run finished before the stop: nothing was tested"
    assert not engine.stop(execution_id).won  # TERMINATED -> TERMINATED is not a transition

    time.sleep(0.3)  # nothing moves while stopped
    assert bus.wait_idle(1)
    still = execution_report(engine.store, execution_id)
    assert still is not None and still["outputs"] == paused["outputs"]

    resumed = engine.resume(execution_id)
    assert resumed.won and resumed.status == "RUNNING"
    wait_for(lambda: (r := engine.store.get_execution(execution_id)) is not None and r.status == "COMPLETED")
    assert bus.wait_idle(60)
    final = execution_report(engine.store, execution_id)
    assert final is not None
    assert sorted(final["outputs"]["squares"]) == sorted(float(i**2) for i in items)
    assert len([n for n in final["nodes"] if n["node_id"] == "square"]) == len(items)
    assert all(n["status"] == "COMPLETED" for n in final["nodes"])
    statuses = [h["status"] for h in final["history"]]
    for source, target in itertools.pairwise(statuses):
        assert ExecutionStatus(target) in EXECUTION_TRANSITIONS[ExecutionStatus(source)], statuses
    assert statuses[-3:] == ["TERMINATED", "RUNNING", "COMPLETED"]


def test_stop_before_any_node_runs(stack: LocalStack) -> None:
    engine, bus = stack.engine, stack.bus
    assert bus is not None
    graph = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", graph)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.stop(execution_id)
    assert bus.wait_idle(60)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "TERMINATED"
    engine.resume(execution_id)
    wait_for(lambda: (r := engine.store.get_execution(execution_id)) is not None and r.status == "COMPLETED")
    bus.wait_idle(60)
    final = execution_report(engine.store, execution_id)
    assert final is not None and final["outputs"] == {"result": [70.0]}
