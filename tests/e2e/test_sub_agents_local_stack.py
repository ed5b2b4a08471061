"""Sub-agents end to end on the local stack, over real HTTP: graphs created with POST /graphs, runs started with
POST /graphs/{id}/execute, read with GET /executions/{id}, stopped and resumed with POST /executions/{id}/stop and
/resume, a graph's runs listed with GET /graphs/{id}/executions (README, "Sub-agents").

A parent's AgentExecutorBlock node starts a child run (GET /executions shows `child_execution_id` on the node and
`parent_execution_id`, `parent_node_id`, `depth` on the child), waits for it, and yields its outputs or fails with
its error; every event delivered three times still starts each child once; stopping a parent stops the child it
waits for and resuming it resumes that same child; a chain deeper than the limit fails naming it.

The stacks run in this process (so `agentflow.executor.subagents.MAX_DEPTH` can be patched) on a FakeClock: the
slow child waits in a CountdownTimerBlock, which defers itself through the stack's delayed queue, and only the test
moves the clock. Nothing leaves 127.0.0.0/8 (the socket guard fails any connection beyond it). No assertion depends
on the wall clock: time.monotonic() only bounds the polling loops.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentflow.api.auth import create_api_key
from agentflow.executor import subagents
from agentflow_local.api_gateway import LocalApiGateway
from agentflow_local.dynamodb import DynamoDBLocal, free_port
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests.graphs import GraphBuilder, adder, call_child, divide_by_zero, twice, wrapper
from tests.support.clock import FakeClock
from tests.support.http import Api
from tests.support.network import SocketGuard, guard_sockets

ROOT = Path(__file__).resolve().parents[2]
AGENT = "AgentExecutorBlock"
FINAL = frozenset({"COMPLETED", "FAILED"})
TIMER_SECONDS = 60


# -- the stacks: in this process, behind the local API Gateway, on a clock the test moves


@dataclass
class Env:
    stack: LocalStack
    clock: FakeClock
    api: Api


def running_stack(dynamodb_local: DynamoDBLocal, redeliver: int) -> Iterator[Env]:
    saved = dict(os.environ)
    clock = FakeClock()
    config = LocalStackConfig(
        root=ROOT,
        dynamodb_endpoint=dynamodb_local.endpoint,
        table_name=f"sub-{uuid.uuid4().hex[:10]}",
        concurrency=2,
        redeliver=redeliver,
        seed=13,
        clock=clock,
        log_level="WARNING",
        recover=False,
    )
    try:
        with LocalStack(config) as stack:
            runtime = stack.runtime
            gateway = LocalApiGateway(stack.template, port=free_port(), runtime=runtime, clock=runtime.clock).start()
            try:
                key = create_api_key(stack.engine.store, f"sub-{uuid.uuid4().hex[:10]}", "test_sub_agents")
                yield Env(stack, clock, Api(gateway.url, key))
            finally:
                gateway.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def plain(dynamodb_local: DynamoDBLocal) -> Iterator[Env]:
    """Every event delivered once."""
    yield from running_stack(dynamodb_local, redeliver=0)


@pytest.fixture(scope="module")
def redelivering(dynamodb_local: DynamoDBLocal) -> Iterator[Env]:
    """Every event (bus and queues) delivered three times."""
    yield from running_stack(dynamodb_local, redeliver=2)


@pytest.fixture(autouse=True)
def sockets() -> Iterator[SocketGuard]:
    with guard_sockets() as guard:
        yield guard
    assert not guard.violations, guard.violations


# -- graphs (the shapes of tests/unit/test_sub_agents.py)


def slow_adder(amount: float = 5) -> dict[str, Any]:
    """x -> a CountdownTimerBlock waiting TIMER_SECONDS on the stack's clock -> x + amount -> y"""
    return (
        GraphBuilder("slow adder")
        .input("x", "x")
        .node("timer", "CountdownTimerBlock", seconds=TIMER_SECONDS)
        .node("add", "CalculatorBlock", operation="Add", b=amount)
        .output("y", "y")
        .link("x", "result", "timer", "input_message")
        .link("timer", "output_message", "add", "a")
        .link("add", "result", "y", "value")
        .build()
    )


def each_item(child: tuple[str, int]) -> dict[str, Any]:
    """items -> StepThroughItemsBlock -> one sub-agent node, run once per item (seq 0, 1, ...) -> out"""
    builder = GraphBuilder("fan-out parent").input("items", "items").node("each", "StepThroughItemsBlock")
    call_child(builder, "call", child)
    builder.output("out", "out").link("items", "result", "each", "items").link("each", "item", "call", "x")
    return builder.link("call", "y", "out", "value").build()


# fan-out shapes: (graph, inputs, the child's x values, the parent's outputs)
Shape = tuple[Callable[[tuple[str, int]], dict[str, Any]], dict[str, Any], list[int], list[float]]
SHAPES: dict[str, Shape] = {
    "two-agent-nodes": (twice, {"x": 2}, [2, 20], [3.0, 21.0]),
    "step-through-items": (each_item, {"items": [1, 20]}, [1, 20], [2.0, 21.0]),
}


# -- helpers


def create(api: Api, graph: dict[str, Any]) -> tuple[str, int]:
    created = api.create_graph(graph)
    return created["graph_id"], int(created["version"])


def settle(env: Env, execution_id: str, step: float = TIMER_SECONDS + 1) -> dict[str, Any]:
    """Let the stack work; while a deferred node waits for its time, move the clock. The report once the run is
    COMPLETED or FAILED and nothing is left in flight or waiting."""
    deadline = time.monotonic() + 90
    while True:
        assert time.monotonic() < deadline, f"run {execution_id} did not end"
        assert env.stack.idle(30)
        waiting = env.stack.waiting_retries()
        report = env.api.execution(execution_id)
        if report["status"] in FINAL and not waiting:
            assert env.stack.idle(30)
            return env.api.execution(execution_id)
        if waiting:
            env.clock.now += step
        time.sleep(0.05)  # the delayed queue looks at the clock every 20 ms


def run(env: Env, graph_id: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return settle(env, env.api.execute(graph_id, inputs)["execution_id"])


def agent_nodes(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [n for n in report["nodes"] if n["block_name"] == AGENT]


def node_of(report: dict[str, Any], node_id: str) -> dict[str, Any]:
    (node,) = [n for n in report["nodes"] if n["node_id"] == node_id]
    found: dict[str, Any] = node
    return found


def runs_of(api: Api, graph_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/graphs/{graph_id}/executions?limit=100")
    assert reply.status == 200, reply.text
    assert reply.body["next_cursor"] is None
    executions: list[dict[str, Any]] = reply.body["executions"]
    return executions


def summary(report: dict[str, Any]) -> tuple[Any, ...]:
    """What must not change however often events are delivered (the child ids aside)."""
    outputs = {name: sorted(json.dumps(v) for v in values) for name, values in report["outputs"].items()}
    nodes = Counter((n["node_id"], n["status"], n["attempts"]) for n in report["nodes"])
    return report["status"], outputs, nodes


def check_fan_out(env: Env, shape: str) -> dict[str, Any]:
    make, inputs, xs, expected = SHAPES[shape]
    api = env.api
    child = create(api, adder(1))
    parent_id, _ = create(api, make(child))
    report = run(env, parent_id, inputs)
    assert report["status"] == "COMPLETED", report["error"]
    assert sorted(report["outputs"]["out"]) == expected
    assert (report["parent_execution_id"], report["parent_node_id"], report["depth"]) == (None, None, 0)

    calls = agent_nodes(report)
    assert len(calls) == 2, calls
    kids = [n["child_execution_id"] for n in calls]
    assert all(kids) and len(set(kids)) == 2, kids
    seen_x = []
    for call in calls:
        assert call["status"] == "COMPLETED", call
        assert call["attempts"] == 2, call  # start the child and wait; then take its outputs (waiting is no attempt)
        kid = api.execution(call["child_execution_id"])
        assert kid["status"] == "COMPLETED", kid["error"]
        assert kid["parent_execution_id"] == report["execution_id"]
        assert kid["parent_node_id"] == call["node_id"]
        assert kid["depth"] == 1 and kid["graph_id"] == child[0]
        assert call["outputs"] == {"y": kid["outputs"]["y"]}
        assert kid["outputs"]["y"] == [kid["inputs"]["x"] + 1]
        seen_x.append(kid["inputs"]["x"])
    assert sorted(seen_x) == xs
    assert all(n["attempts"] == 1 for n in report["nodes"] if n["block_name"] != AGENT), report["nodes"]

    listed = runs_of(api, child[0])  # each child started exactly once
    assert sorted(e["execution_id"] for e in listed) == sorted(kids)
    assert all(e["status"] == "COMPLETED" for e in listed)
    return report


# -- tests


@pytest.mark.parametrize("shape", list(SHAPES))
def test_a_parent_calls_a_child_twice_and_the_api_links_them(plain: Env, shape: str) -> None:
    check_fan_out(plain, shape)


@pytest.mark.parametrize("shape", list(SHAPES))
def test_every_event_three_times_starts_each_child_once(plain: Env, redelivering: Env, shape: str) -> None:
    once = check_fan_out(plain, shape)
    many = check_fan_out(redelivering, shape)
    assert summary(many) == summary(once)
    # the duplicates really arrived: their lost claims cost requests of their own
    assert many["stats"]["dynamodb_requests"] > once["stats"]["dynamodb_requests"]


def test_a_failing_child_fails_the_parent_node_and_run_with_its_error(plain: Env) -> None:
    api = plain.api
    child = create(api, divide_by_zero())
    parent_id, _ = create(api, wrapper(child))
    report = run(plain, parent_id, {"x": 2})
    assert report["status"] == "FAILED"
    call = node_of(report, "call")
    assert call["status"] == "FAILED"
    kid = api.execution(call["child_execution_id"])
    assert kid["status"] == "FAILED" and kid["parent_execution_id"] == report["execution_id"]
    assert kid["error"] and ("zero" in kid["error"].lower() or "division" in kid["error"].lower()), kid["error"]
    assert f"the sub-agent run {kid['execution_id']} failed" in call["error"]
    assert kid["error"] in call["error"]
    assert kid["error"] in report["error"]
    assert report["outputs"] == {"y": []}
    assert [e["execution_id"] for e in runs_of(api, child[0])] == [kid["execution_id"]]


@pytest.mark.parametrize("due", ["after-resume", "while-stopped"])
def test_stop_and_resume_of_a_parent_stop_and_resume_its_running_child(plain: Env, due: str) -> None:
    api, stack, clock = plain.api, plain.stack, plain.clock
    child = create(api, slow_adder(5))
    parent_id, _ = create(api, wrapper(child))
    parent = api.execute(parent_id, {"x": 1})["execution_id"]

    # the child's timer defers itself on the stack's clock, which only this test moves: the child is running
    deadline = time.monotonic() + 60
    while not (stack.idle(30) and stack.waiting_retries()):
        assert time.monotonic() < deadline, "the child's timer never deferred itself"
        time.sleep(0.05)
    report = api.execution(parent)
    call = node_of(report, "call")
    assert (report["status"], call["status"]) == ("RUNNING", "WAITING"), call
    kid_id = call["child_execution_id"]
    kid = api.execution(kid_id)
    assert kid["status"] == "RUNNING" and kid["parent_execution_id"] == parent and kid["parent_node_id"] == "call"
    timer = node_of(kid, "timer")
    assert timer["status"] == "QUEUED" and timer["retry_at"], timer

    stopped = api.post(f"/executions/{parent}/stop")
    assert stopped.status == 200, stopped.text
    assert stopped.body == {"execution_id": parent, "status": "TERMINATED"}
    assert stack.idle(30)
    assert api.execution(kid_id)["status"] == "TERMINATED"  # the child was stopped with its parent
    assert node_of(api.execution(parent), "call")["status"] == "TERMINATED"
    if due == "while-stopped":  # the timer comes due while its run is stopped: its node is TERMINATED
        clock.now += TIMER_SECONDS + 1
        deadline = time.monotonic() + 60
        while node_of(api.execution(kid_id), "timer")["status"] != "TERMINATED":
            assert time.monotonic() < deadline, "the stopped child's timer node did not terminate"
            assert stack.idle(30)
            time.sleep(0.05)
    assert api.execution(kid_id)["outputs"] == {"y": []}

    resumed = api.post(f"/executions/{parent}/resume")
    assert resumed.status == 200, resumed.text
    assert resumed.body == {"execution_id": parent, "status": "RUNNING"}
    final = settle(plain, parent)
    assert final["status"] == "COMPLETED", final["error"]
    assert final["outputs"] == {"y": [6.0]}
    call = node_of(final, "call")
    assert call["status"] == "COMPLETED" and call["child_execution_id"] == kid_id  # the same child, resumed
    kid = api.execution(kid_id)
    assert kid["status"] == "COMPLETED", kid["error"]
    assert kid["outputs"] == {"y": [6.0]}
    assert node_of(kid, "timer")["outputs"] == {"output_message": [1]}
    assert [e["execution_id"] for e in runs_of(api, child[0])] == [kid_id]  # no second child
    for execution_id in (parent, kid_id):
        assert api.history(execution_id)[-3:] == ["TERMINATED", "RUNNING", "COMPLETED"]


def test_a_chain_deeper_than_the_limit_fails_naming_it(plain: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subagents, "MAX_DEPTH", 2)  # the stack's functions run in this process
    api = plain.api
    inner = create(api, adder(1))
    middle = create(api, wrapper(inner))
    outer = create(api, wrapper(middle))
    top = create(api, wrapper(outer))

    ok = run(plain, middle[0], {"x": 1})  # middle (0) -> inner (1)
    assert ok["status"] == "COMPLETED", ok["error"]
    ok = run(plain, outer[0], {"x": 1})  # outer (0) -> middle (1) -> inner (2): at the limit
    assert ok["status"] == "COMPLETED", ok["error"]
    assert ok["outputs"] == {"y": [2.0]}
    second = api.execution(node_of(ok, "call")["child_execution_id"])
    deepest = api.execution(node_of(second, "call")["child_execution_id"])
    assert deepest["graph_id"] == inner[0] and deepest["depth"] == 2 and deepest["status"] == "COMPLETED"

    too_deep = run(plain, top[0], {"x": 1})  # top (0) -> outer (1) -> middle (2) -> inner (3): refused
    assert too_deep["status"] == "FAILED"
    assert "sub-agent depth limit reached" in too_deep["error"], too_deep["error"]
    first = api.execution(node_of(too_deep, "call")["child_execution_id"])
    second = api.execution(node_of(first, "call")["child_execution_id"])
    assert (first["graph_id"], first["depth"], first["status"]) == (outer[0], 1, "FAILED")
    assert (second["graph_id"], second["depth"], second["status"]) == (middle[0], 2, "FAILED")
    refused = node_of(second, "call")
    assert refused["status"] == "FAILED" and refused["child_execution_id"] is None
    assert "the sub-agent could not start: sub-agent depth limit reached" in refused["error"]
    assert len(runs_of(api, inner[0])) == 2  # the two runs within the limit; the refused one started none
