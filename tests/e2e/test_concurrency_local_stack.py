"""Concurrency limits on the local stack, over the real HTTP API (the session's `agentflow serve`).

50 executions started at once on a graph capped at 5 (`max_concurrent_runs`): at no moment are more than 5 RUNNING,
which the status histories' timestamps show (a run's end is written before the give-back that lets the next one
start, on the stack's one clock), and all 50 complete with their outputs. A resume that would pass the cap answers
409 saying so, and succeeds once a slot is free; a graph with a bad `max_concurrent_runs` is refused, naming it.
No timing is asserted: each run waits two seconds on a countdown, so that without the cap far more than 5 would
overlap."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.conftest import ApiServer
from tests.e2e.test_api_flow import assert_allowed_history, new_user
from tests.graphs import GraphBuilder
from tests.support.http import Api, wait_for
from tests.support.overlap import most_at_once, running_intervals

RUNS = 50
CAP = 5


@pytest.fixture(scope="module")
def user(api_server: ApiServer) -> Api:
    return new_user(api_server, "caps")


def chain(cap: int) -> dict[str, Any]:
    """x -> +1 -> a two-second countdown -> *2 -> +3 -> result. The countdown defers its node (no worker waits), so
    a run goes on for two seconds or more whatever the machine: without the cap, far more than 5 overlap (14, on
    the machine this was written on)."""
    built = (
        GraphBuilder("capped chain")
        .input("in", "x")
        .node("add", "CalculatorBlock", operation="Add", b=1)
        .node("wait", "CountdownTimerBlock", seconds=2)
        .node("double", "CalculatorBlock", operation="Multiply", b=2)
        .node("add_more", "CalculatorBlock", operation="Add", b=3)
        .output("out", "result")
        .link("in", "result", "add", "a")
        .link("add", "result", "wait", "input_message")
        .link("wait", "output_message", "double", "a")
        .link("double", "result", "add_more", "a")
        .link("add_more", "result", "out", "value")
        .build()
    )
    return {**built, "max_concurrent_runs": cap}


def held_for_an_hour(cap: int) -> dict[str, Any]:
    """x -> a countdown of an hour -> out: a run that goes on (RUNNING, its node deferred) until it is stopped."""
    built = (
        GraphBuilder("held")
        .input("in", "x")
        .node("wait", "CountdownTimerBlock", seconds=3600)
        .output("out", "x")
        .link("in", "result", "wait", "input_message")
        .link("wait", "output_message", "out", "value")
        .build()
    )
    return {**built, "max_concurrent_runs": cap}


def events(user: Api, execution_id: str) -> list[dict[str, Any]]:
    """The run's status history, oldest first, with the time of each change."""
    reply = user.get(f"/executions/{execution_id}/events")
    assert reply.status == 200, reply.text
    history: list[dict[str, Any]] = reply.body["events"]
    return history


def test_fifty_runs_started_at_once_never_run_more_than_five_at_a_time(user: Api) -> None:
    graph_id = user.create_graph(chain(CAP))["graph_id"]
    with ThreadPoolExecutor(25) as pool:
        started = list(pool.map(lambda x: user.execute(graph_id, {"x": x}), range(RUNS)))
    assert all(s["created"] for s in started)
    execution_ids = [s["execution_id"] for s in started]
    assert len(set(execution_ids)) == RUNS

    reports = [user.wait_final(execution_id, timeout=300) for execution_id in execution_ids]
    assert [r["status"] for r in reports] == ["COMPLETED"] * RUNS, [r["error"] for r in reports if r["error"]]
    assert [r["outputs"]["result"] for r in reports] == [[(x + 1) * 2 + 3.0] for x in range(RUNS)]
    histories = [events(user, execution_id) for execution_id in execution_ids]
    for history in histories:
        statuses = [h["status"] for h in history]
        assert_allowed_history(statuses)
        assert statuses.count("RUNNING") == 1 and all(h["at"] for h in history)
    peak = most_at_once(running_intervals(histories))
    assert 1 <= peak <= CAP, f"{peak} runs were RUNNING at once; the cap is {CAP}"


def test_a_resume_past_the_cap_answers_409_and_succeeds_once_a_slot_is_free(user: Api) -> None:
    graph_id = user.create_graph(held_for_an_hour(1))["graph_id"]
    holder = user.execute(graph_id, {"x": "first"})["execution_id"]
    wait_for(lambda: user.execution(holder)["status"] == "RUNNING", timeout=60)
    waiting = user.execute(graph_id, {"x": "second"})
    assert waiting["status"] == "QUEUED"
    second = waiting["execution_id"]
    stopped = user.post(f"/executions/{second}/stop")  # it waits for a slot: stopped, it waits no more
    assert stopped.status == 200 and stopped.body["status"] == "TERMINATED", stopped.text

    refused = user.post(f"/executions/{second}/resume").error(409, "conflict")
    assert f"graph {graph_id} is at its cap of 1 running run" in refused["message"]
    assert refused["details"] == {"status": "TERMINATED", "max_concurrent_runs": 1}
    assert user.execution(second)["status"] == "TERMINATED"

    assert user.post(f"/executions/{holder}/stop").status == 200  # gives its slot back
    resumed = user.post(f"/executions/{second}/resume")
    assert resumed.status == 200 and resumed.body == {"execution_id": second, "status": "RUNNING"}, resumed.text
    third = user.execute(graph_id, {"x": "third"})  # the resumed run holds the slot now
    assert third["status"] == "QUEUED"
    for execution_id in (third["execution_id"], second):  # the waiting one first: else it would get the slot
        assert user.post(f"/executions/{execution_id}/stop").status == 200
    assert [h["status"] for h in events(user, third["execution_id"])] == [
        "INCOMPLETE",
        "QUEUED",
        "TERMINATED",
    ]  # it never ran


@pytest.mark.parametrize("value", [0, "x"])
def test_a_graph_with_a_bad_max_concurrent_runs_is_refused_naming_it(user: Api, value: Any) -> None:
    error = user.post("/graphs", chain(1) | {"max_concurrent_runs": value}).error(400, "invalid_request")
    assert f"max_concurrent_runs must be a whole number from 1 to 1000, got {value!r}" in error["message"]
    assert [p["message"] for p in error["details"]] == [
        f"max_concurrent_runs must be a whole number from 1 to 1000, got {value!r}"
    ]
