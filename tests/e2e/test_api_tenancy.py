"""Tenancy over real HTTP: user B can neither see nor touch anything of user A's.

B tries every route of template.yaml that takes an id on A's ids; every answer must be the 404 a random id
gets (same code, same message but for the id, same details), and A's graph, versions, active version,
executions and their histories must read exactly as before.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests import graphs
from tests.conftest import ApiServer
from tests.e2e.test_api_flow import PATH_PARAM, api_routes, fill, linear_v2, new_user, valid_body
from tests.support.http import Api


@pytest.fixture
def alice(api_server: ApiServer) -> Api:
    return new_user(api_server, "alice")


@pytest.fixture
def bob(api_server: ApiServer) -> Api:
    return new_user(api_server, "bob")


def normalized(reply_body: Any, *ids: str) -> str:
    """An error body with the ids it names replaced by <id>, to compare answers about different ids."""
    text = json.dumps(reply_body, sort_keys=True)
    for ident in ids:
        text = text.replace(ident, "<id>")
    return text


def a_world(alice: Api) -> dict[str, str]:
    """A's graph with two versions (version 1 active again), a COMPLETED run and a stopped (TERMINATED) run."""
    graph_id = alice.create_graph(graphs.linear())["graph_id"]
    assert alice.put(f"/graphs/{graph_id}", linear_v2()).status == 200
    assert alice.put(f"/graphs/{graph_id}/versions/active", {"version": 1}).status == 200
    completed = alice.execute(graph_id, {"x": 1}, version=2)["execution_id"]

    fan_out_id = alice.create_graph(graphs.fan_out())["graph_id"]
    stopped = alice.execute(fan_out_id, {"items": list(range(20))})["execution_id"]
    assert alice.post(f"/executions/{stopped}/stop").status == 200

    assert alice.wait_final(completed)["status"] == "COMPLETED"
    assert alice.wait_settled(stopped)["status"] == "TERMINATED"
    return {"graph_id": graph_id, "fan_out_id": fan_out_id, "completed": completed, "stopped": stopped}


def snapshot(alice: Api, world: dict[str, str]) -> dict[str, Any]:
    """Everything A can read about that world, through every GET route of the template."""
    seen: dict[str, Any] = {}
    targets = [
        {"graph_id": world["graph_id"], "execution_id": world["completed"]},
        {"graph_id": world["fan_out_id"], "execution_id": world["stopped"]},
    ]
    for ids in targets:
        for method, path in api_routes():
            params = set(PATH_PARAM.findall(path))
            if method != "GET" or not params <= set(ids):
                continue
            concrete = fill(path, ids, "")
            reply = alice.get(concrete)
            body = reply.body
            if path == "/executions/{execution_id}" and body.get("ended_at") is None:
                body["stats"].pop("duration_s")  # a stopped run's duration keeps counting: timing only
            seen[concrete] = (reply.status, body)
    for version in (1, 2):
        path = f"/graphs/{world['graph_id']}?version={version}"
        seen[path] = (alice.get(path).status, alice.get(path).body)
    return seen


def test_another_user_gets_404_on_every_route_and_changes_nothing(alice: Api, bob: Api) -> None:
    world = a_world(alice)
    before = snapshot(alice, world)
    assert before[f"/graphs/{world['graph_id']}"][1]["active_version"] == 1
    assert before[f"/executions/{world['stopped']}"][1]["status"] == "TERMINATED"
    bob_graph = bob.create_graph(graphs.linear())["graph_id"]  # B is a real user with data of his own

    routes = [(m, p) for m, p in api_routes() if PATH_PARAM.search(p)]
    required = {
        ("GET", "/graphs/{graph_id}"),
        ("PUT", "/graphs/{graph_id}"),
        ("DELETE", "/graphs/{graph_id}"),
        ("GET", "/graphs/{graph_id}/versions"),
        ("PUT", "/graphs/{graph_id}/versions/active"),
        ("POST", "/graphs/{graph_id}/execute"),
        ("GET", "/graphs/{graph_id}/executions"),
        ("GET", "/executions/{execution_id}"),
        ("POST", "/executions/{execution_id}/stop"),
        ("POST", "/executions/{execution_id}/resume"),
        ("GET", "/executions/{execution_id}/events"),
    }
    assert required <= set(routes), sorted(required - set(routes))

    leaks: list[str] = []
    tried = 0
    for execution_id in (world["completed"], world["stopped"]):
        theirs = {"graph_id": world["graph_id"], "execution_id": execution_id}
        for method, path in routes:
            body = valid_body(method, path)
            if path == "/graphs/{graph_id}/versions/active":
                body = {"version": 2}  # would move A's active version if it got through
            other = str(uuid.uuid4())  # for parameters that are not A's (a webhook or schedule id)
            on_theirs = bob.request(method, fill(path, theirs, other), body)
            nobodys = {name: str(uuid.uuid4()) for name in PATH_PARAM.findall(path)}
            on_nobodys = bob.request(method, fill(path, nobodys, other), body)
            tried += 1
            where = f"{method} {path} with A's {sorted(set(PATH_PARAM.findall(path)) & set(theirs))}"
            if on_theirs.status != 404:
                leaks.append(f"{where}: {on_theirs.status} {on_theirs.text[:300]}")
            elif normalized(on_theirs.body, *theirs.values(), other) != normalized(
                on_nobodys.body, *nobodys.values(), other
            ):
                leaks.append(f"{where}: answers unlike a random id: {on_theirs.text} vs {on_nobodys.text}")
            else:
                on_theirs.error(404, "not_found")
    assert tried >= 2 * len(required)
    assert not leaks, "B reached A's data:\n" + "\n".join(leaks)

    after = snapshot(alice, world)
    assert after.keys() == before.keys()
    changed = [path for path in before if before[path] != after[path]]
    assert not changed, f"A's data changed under B's requests: {changed}"

    listed = bob.get("/graphs")
    assert listed.status == 200
    assert [g["graph_id"] for g in listed.body["graphs"]] == [bob_graph]
    assert {g["graph_id"] for g in alice.get("/graphs").body["graphs"]} == {world["graph_id"], world["fan_out_id"]}


def test_another_users_idempotency_key_starts_their_own_execution(alice: Api, bob: Api) -> None:
    key = {"Idempotency-Key": f"same-for-both-{uuid.uuid4()}"}
    alice_graph = alice.create_graph(graphs.linear())["graph_id"]
    bob_graph = bob.create_graph(graphs.linear())["graph_id"]
    first = alice.post(f"/graphs/{alice_graph}/execute", {"inputs": {"x": 1}}, headers=key)
    second = bob.post(f"/graphs/{bob_graph}/execute", {"inputs": {"x": 2}}, headers=key)
    assert (first.status, second.status) == (202, 202), (first.text, second.text)
    assert first.body["created"] is True and second.body["created"] is True
    assert first.body["execution_id"] != second.body["execution_id"]

    assert bob.wait_final(second.body["execution_id"])["outputs"] == {"result": [72.0]}  # (2 + 34) * 2
    assert alice.wait_final(first.body["execution_id"])["outputs"] == {"result": [70.0]}
    bob.get(f"/executions/{first.body['execution_id']}").error(404, "not_found")
    alice.get(f"/executions/{second.body['execution_id']}").error(404, "not_found")
    for user, graph_id, started in ((alice, alice_graph, first), (bob, bob_graph, second)):
        listed = user.get(f"/graphs/{graph_id}/executions").body["executions"]
        assert [e["execution_id"] for e in listed] == [started.body["execution_id"]]
