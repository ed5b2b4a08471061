"""The HTTP API end to end, over real HTTP against `agentflow serve` (the session's `api_server`).

Graph versions, executions and their reports, idempotent starts, pagination, the status history, stop and
resume midway through a fan-out, deletion, authentication, request errors, the body limit and the OpenAPI
document. Every test works with users and graphs of its own, so no test depends on another or on their order.

The small client below (stdlib `http.client`) is shared with test_api_tenancy.py and test_api_concurrency.py.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from agentflow.graph import GraphValidationError, validate_graph
from agentflow.statuses import EXECUTION_TRANSITIONS, ExecutionStatus
from agentflow_local.template import load_template
from tests import graphs
from tests.conftest import ApiServer
from tests.support.http import Api, wait_for

ROOT = Path(__file__).resolve().parents[2]
FINAL = frozenset({"COMPLETED", "FAILED"})
# public: the API's own documentation, and the web page's static files (tests/e2e/test_web_ui.py)
DOC_ROUTES = frozenset({("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/ui"), ("GET", "/ui/{proxy+}")})
BODY_LIMIT = 400_000
PATH_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\}")


def assert_allowed_history(statuses: list[str]) -> None:
    """A status history starts INCOMPLETE and every consecutive pair is a transition of the table."""
    assert statuses and statuses[0] == "INCOMPLETE", statuses
    for source, target in itertools.pairwise(statuses):
        allowed = EXECUTION_TRANSITIONS[ExecutionStatus(source)]
        assert ExecutionStatus(target) in allowed, f"{source} -> {target} is not a transition: {statuses}"


def api_routes() -> list[tuple[str, str]]:
    """(METHOD, path) of every route template.yaml gives ApiFunction."""
    template = load_template(ROOT / "template.yaml")
    return sorted({(r.method, r.path) for spec, r in template.api_routes() if spec.logical_id == "ApiFunction"})


def valid_body(method: str, path: str) -> Any:
    """A body each route accepts (None: the route takes none), so that only what a test varies is wrong."""
    return {
        ("POST", "/graphs"): graphs.linear(),
        ("PUT", "/graphs/{graph_id}"): graphs.linear(),
        ("PUT", "/graphs/{graph_id}/versions/active"): {"version": 1},
        ("POST", "/graphs/{graph_id}/execute"): {"inputs": {"x": 1}},
        ("POST", "/graphs/{graph_id}/schedules"): {"name": "nightly", "cron": "0 3 * * *", "inputs": {"x": 1}},
        ("POST", "/reviews/{review_id}"): {"approved": True},
    }.get((method, path))


def fill(path: str, ids: Mapping[str, str], default: str) -> str:
    """The path with every {param} replaced by ids[param], or by `default` for the others."""
    return PATH_PARAM.sub(lambda m: ids.get(m.group(1), default), path)


def linear_v2() -> dict[str, Any]:
    """linear() with another constant: x -> (x + 100) * 2."""
    graph = graphs.linear()
    graph["name"] = "linear v2"
    next(n for n in graph["nodes"] if n["id"] == "add")["input_default"]["b"] = 100
    return graph


def new_user(api_server: ApiServer, prefix: str) -> Api:
    return Api(api_server.url, api_server.create_key(f"{prefix}-{uuid.uuid4().hex[:10]}"))


@pytest.fixture
def api(api_server: ApiServer) -> Api:
    """A fresh user for this test alone (for tests that look at everything a user has)."""
    return new_user(api_server, "flow")


@pytest.fixture(scope="module")
def user(api_server: ApiServer) -> Api:
    """A user of this module's, for tests that look only at the graphs they create themselves."""
    return new_user(api_server, "flow")


@pytest.fixture
def anonymous(api_server: ApiServer) -> Api:
    return Api(api_server.url, None)


# -- graphs, versions, executions


def add_constant(graph_out: dict[str, Any]) -> int:
    node = next(n for n in graph_out["graph"]["nodes"] if n["id"] == "add")
    return int(node["input_default"]["b"])


def test_graph_versions_and_executions(api: Api) -> None:
    created = api.create_graph(graphs.linear())
    graph_id = created["graph_id"]
    assert (created["version"], created["active_version"], created["latest_version"]) == (1, 1, 1)
    assert created["name"] == "linear"
    assert (created["input_names"], created["required_inputs"], created["output_names"]) == (["x"], ["x"], ["result"])
    assert [n["id"] for n in created["graph"]["nodes"]] == ["in", "add", "mul", "out"]

    updated = api.put(f"/graphs/{graph_id}", linear_v2())
    assert updated.status == 200, updated.text
    assert (updated.body["version"], updated.body["active_version"], updated.body["latest_version"]) == (2, 2, 2)
    assert updated.body["name"] == "linear v2"
    assert add_constant(api.get(f"/graphs/{graph_id}").body) == 100
    old = api.get(f"/graphs/{graph_id}?version=1")
    assert old.status == 200 and old.body["version"] == 1 and add_constant(old.body) == 34
    api.get(f"/graphs/{graph_id}?version=3").error(404, "not_found")

    versions = api.get(f"/graphs/{graph_id}/versions")
    assert versions.status == 200 and versions.body["graph_id"] == graph_id
    assert [(v["version"], v["active"]) for v in versions.body["versions"]] == [(1, False), (2, True)]

    switched = api.put(f"/graphs/{graph_id}/versions/active", {"version": 1})
    assert switched.status == 200, switched.text
    assert (switched.body["version"], switched.body["active_version"], switched.body["latest_version"]) == (1, 1, 2)
    assert add_constant(api.get(f"/graphs/{graph_id}").body) == 34
    versions = api.get(f"/graphs/{graph_id}/versions")
    assert [(v["version"], v["active"]) for v in versions.body["versions"]] == [(1, True), (2, False)]
    api.put(f"/graphs/{graph_id}/versions/active", {"version": 3}).error(404, "not_found")
    assert api.get(f"/graphs/{graph_id}").body["active_version"] == 1

    listed = api.get("/graphs")
    assert listed.status == 200
    summary = [(g["graph_id"], g["name"], g["active_version"], g["latest_version"]) for g in listed.body["graphs"]]
    assert summary == [(graph_id, "linear v2", 1, 2)]

    # the active version (1) runs by default; {"version": 2} runs the other one
    default = api.execute(graph_id, {"x": 1})
    assert (default["graph_id"], default["graph_version"], default["created"]) == (graph_id, 1, True)
    assert default["status"] in ("QUEUED", "RUNNING", "COMPLETED")
    pinned = api.execute(graph_id, {"x": 1}, version=2)
    assert pinned["graph_version"] == 2 and pinned["execution_id"] != default["execution_id"]
    api.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}, "version": 3}).error(404, "not_found")

    report = api.wait_final(default["execution_id"])
    assert report["status"] == "COMPLETED", report["error"]
    identity = (report["execution_id"], report["graph_id"], report["graph_version"])
    assert identity == (default["execution_id"], graph_id, 1)
    assert report["inputs"] == {"x": 1}
    assert report["outputs"] == {"result": [70.0]}  # (1 + 34) * 2
    assert report["error"] is None
    nodes = {n["node_id"]: n for n in report["nodes"]}
    assert sorted(nodes) == ["add", "in", "mul", "out"] and len(report["nodes"]) == 4
    assert all(n["status"] == "COMPLETED" and n["attempts"] == 1 and n["error"] is None for n in nodes.values())
    assert nodes["add"]["block_name"] == "CalculatorBlock"
    assert (nodes["add"]["inputs"]["a"], nodes["add"]["inputs"]["b"]) == (1, 34)
    assert nodes["add"]["outputs"] == {"result": [35.0]}
    assert nodes["mul"]["outputs"] == {"result": [70.0]}
    stats = report["stats"]
    assert stats["node_executions"] == 4
    assert stats["duration_s"] is not None and stats["duration_s"] > 0
    assert stats["dynamodb_requests"] > 0 and stats["dynamodb_write_units"] > 0
    # Every node executor invocation was started by a published event; a chain runs in fewer invocations. The
    # invocation that ended the run adds its costs just after the COMPLETED write (README, "Costs"): wait for them.
    stats = wait_for(lambda: (s := api.execution(default["execution_id"])["stats"])["lambda_invocations"] and s)
    assert 1 <= stats["lambda_invocations"] <= 4
    assert stats["events_published"] >= stats["lambda_invocations"]
    assert report["created_at"] <= report["started_at"] <= report["ended_at"]

    pinned_report = api.wait_final(pinned["execution_id"])
    assert pinned_report["status"] == "COMPLETED" and pinned_report["graph_version"] == 2
    assert pinned_report["outputs"] == {"result": [202.0]}  # (1 + 100) * 2

    history = api.history(default["execution_id"])
    assert_allowed_history(history)
    assert history == ["INCOMPLETE", "QUEUED", "RUNNING", "COMPLETED"]
    stamps = [e["at"] for e in api.get(f"/executions/{default['execution_id']}/events").body["events"]]
    assert all(stamps) and stamps == sorted(stamps), "the history is not oldest first"

    listing = api.get(f"/graphs/{graph_id}/executions")
    assert listing.status == 200 and listing.body["next_cursor"] is None
    summaries = {e["execution_id"]: e for e in listing.body["executions"]}
    assert set(summaries) == {default["execution_id"], pinned["execution_id"]}
    assert summaries[default["execution_id"]]["status"] == "COMPLETED"
    assert summaries[pinned["execution_id"]]["graph_version"] == 2


def test_a_refused_update_leaves_the_graph_as_it_was(user: Api) -> None:
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    broken = graphs.linear()
    broken["nodes"][1]["block_id"] = "NoSuchBlock"
    error = user.put(f"/graphs/{graph_id}", broken).error(400, "invalid_request")
    assert "NoSuchBlock" in error["message"]
    head = user.get(f"/graphs/{graph_id}").body
    assert (head["active_version"], head["latest_version"], add_constant(head)) == (1, 1, 34)
    assert [v["version"] for v in user.get(f"/graphs/{graph_id}/versions").body["versions"]] == [1]


# -- idempotent starts


def test_idempotency_key_returns_the_same_execution(user: Api) -> None:
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    first = user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}}, headers=key)
    second = user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}}, headers=key)
    assert (first.status, second.status) == (202, 202), (first.text, second.text)
    assert first.body["created"] is True
    assert second.body["created"] is False
    assert second.body["execution_id"] == first.body["execution_id"]
    assert second.body["graph_id"] == graph_id

    report = user.wait_final(first.body["execution_id"])
    assert report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    assert report["stats"]["node_executions"] == 4  # the repeat started nothing
    late = user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}}, headers=key)  # after the run ended
    assert late.status == 202, late.text
    assert (late.body["execution_id"], late.body["created"]) == (first.body["execution_id"], False)
    assert late.body["status"] == "COMPLETED"

    listed = user.get(f"/graphs/{graph_id}/executions").body["executions"]
    assert [e["execution_id"] for e in listed] == [first.body["execution_id"]]

    other = user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}}, headers={"Idempotency-Key": "other"})
    assert other.status == 202 and other.body["created"] is True
    assert other.body["execution_id"] != first.body["execution_id"]
    too_long = {"Idempotency-Key": "k" * 257}
    user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1}}, headers=too_long).error(400, "invalid_request")
    assert len(user.get(f"/graphs/{graph_id}/executions").body["executions"]) == 2


def test_idempotency_key_never_answers_with_another_graphs_execution(user: Api) -> None:
    """The same key on a second graph: a new execution of that graph, or a refusal; never the first graph's
    execution presented as the second graph's."""
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    first_graph = user.create_graph(graphs.linear())["graph_id"]
    second_graph = user.create_graph(graphs.branch())["graph_id"]
    first = user.post(f"/graphs/{first_graph}/execute", {"inputs": {"x": 1}}, headers=key)
    assert first.status == 202 and first.body["created"] is True
    second = user.post(f"/graphs/{second_graph}/execute", {"inputs": {"n": 9}}, headers=key)
    assert second.status in (202, 409, 422), second.text
    if second.status == 202:
        started = second.body
        owner = user.execution(started["execution_id"])["graph_id"]
        assert started["graph_id"] == owner, (
            f"POST /graphs/{second_graph}/execute answered with execution {started['execution_id']} of graph "
            f"{owner}, labelled as graph {started['graph_id']} (created={started['created']})"
        )
        listed = user.get(f"/graphs/{second_graph}/executions").body["executions"]
        assert [e["execution_id"] for e in listed] == [started["execution_id"]]


# -- listing executions


def test_list_executions_pages_newest_first(user: Api) -> None:
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    started = [user.execute(graph_id, {"x": i})["execution_id"] for i in range(5)]

    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = user.get(f"/graphs/{graph_id}/executions?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page.text
        pages.append([e["execution_id"] for e in page.body["executions"]])
        cursor = page.body["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, str) and cursor
        assert len(pages) < 10, "pagination does not end"
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [e for page in pages for e in page] == started[::-1], "not newest first, or duplicates/gaps"

    everything = user.get(f"/graphs/{graph_id}/executions?limit=100").body
    assert [e["execution_id"] for e in everything["executions"]] == started[::-1]
    assert everything["next_cursor"] is None
    stamps = [e["created_at"] for e in everything["executions"]]
    assert stamps == sorted(stamps, reverse=True)

    for garbage in ("garbage", "!!!!", base64.urlsafe_b64encode(b'{"PK": 1}').decode(), "W10="):
        error = user.get(f"/graphs/{graph_id}/executions?limit=2&cursor={garbage}").error(400, "invalid_request")
        assert "cursor" in error["message"]
    user.get(f"/graphs/{graph_id}/executions?limit=0").error(400, "invalid_request")
    user.get(f"/graphs/{graph_id}/executions?limit=101").error(400, "invalid_request")

    # another graph's cursor is refused rather than used to read that graph's listing
    other_id = user.create_graph(graphs.linear())["graph_id"]
    for i in range(2):
        user.execute(other_id, {"x": i})
    foreign = user.get(f"/graphs/{other_id}/executions?limit=1").body["next_cursor"]
    assert foreign
    user.get(f"/graphs/{graph_id}/executions?limit=2&cursor={foreign}").error(400, "invalid_request")

    for execution_id in started:
        assert_allowed_history(user.history(execution_id))


def test_a_cursor_of_an_empty_key_is_refused(user: Api) -> None:
    """`e30=` is base64 for `{}`: not a cursor the API ever hands out, yet it silently restarts the listing."""
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    for i in range(3):
        user.execute(graph_id, {"x": i})
    reply = user.get(f"/graphs/{graph_id}/executions?limit=2&cursor=e30=")
    assert "cursor" in reply.error(400, "invalid_request")["message"]


# -- stop and resume


def test_stop_a_fan_out_midway_then_resume_gives_every_output_once(user: Api) -> None:
    items = list(range(60))
    graph_id = user.create_graph(graphs.fan_out())["graph_id"]
    execution_id = user.execute(graph_id, {"items": items})["execution_id"]

    wait_for(lambda: user.execution(execution_id)["outputs"].get("squares"), timeout=90, interval=0.02)
    stopped = user.post(f"/executions/{execution_id}/stop")
    assert stopped.status == 200, stopped.text
    assert stopped.body == {"execution_id": execution_id, "status": "TERMINATED"}

    def picture(report: dict[str, Any]) -> tuple[Any, ...]:
        nodes = sorted((n["node_id"], n["seq"], n["status"], json.dumps(n["outputs"])) for n in report["nodes"])
        return report["status"], json.dumps(report["outputs"], sort_keys=True), nodes

    paused = user.wait_settled(execution_id)
    assert paused["status"] == "TERMINATED"
    done_before = len(paused["outputs"]["squares"])
    assert 0 < done_before < len(items), f"{done_before} outputs at the stop: the stop did not land midway"
    assert {n["status"] for n in paused["nodes"]} <= {"COMPLETED", "TERMINATED", "INCOMPLETE"}
    assert any(n["status"] == "TERMINATED" for n in paused["nodes"])

    again = user.post(f"/executions/{execution_id}/stop").error(409, "conflict")
    assert again["details"] == {"status": "TERMINATED"}
    time.sleep(1.0)  # a moment in which nothing may move
    assert picture(user.execution(execution_id)) == picture(paused)
    assert user.history(execution_id)[-1] == "TERMINATED"

    resumed = user.post(f"/executions/{execution_id}/resume")
    assert resumed.status == 200, resumed.text
    assert resumed.body == {"execution_id": execution_id, "status": "RUNNING"}
    error = user.post(f"/executions/{execution_id}/resume").error(409, "conflict")
    assert error["details"] == {"status": "RUNNING"}  # dozens of squares are left: it cannot have ended yet
    assert "RUNNING" in error["message"]

    final = user.wait_final(execution_id, timeout=90)
    assert final["status"] == "COMPLETED", final["error"]
    assert sorted(final["outputs"]["squares"]) == [float(i * i) for i in items]  # every square, each once
    squares = [n for n in final["nodes"] if n["node_id"] == "square"]
    # from 1: a square has one source, whose first execution alone may have slot 0 (ValidGraph.sole_source_sinks)
    assert sorted(n["seq"] for n in squares) == list(range(1, len(items) + 1))
    assert all(n["status"] == "COMPLETED" for n in final["nodes"])
    assert final["stats"]["node_executions"] == len(final["nodes"]) == 2 + 2 * len(items)

    history = user.history(execution_id)
    assert_allowed_history(history)
    assert history == ["INCOMPLETE", "QUEUED", "RUNNING", "TERMINATED", "RUNNING", "COMPLETED"]

    for action in ("stop", "resume"):  # a COMPLETED run can be neither stopped nor resumed
        error = user.post(f"/executions/{execution_id}/{action}").error(409, "conflict")
        assert error["details"] == {"status": "COMPLETED"}
        assert "COMPLETED" in error["message"]
    assert user.history(execution_id) == history


# -- deletion


def test_delete_graph_keeps_its_executions_readable(api: Api) -> None:
    graph_id = api.create_graph(graphs.linear())["graph_id"]
    kept_id = api.create_graph(graphs.branch())["graph_id"]
    api.put(f"/graphs/{graph_id}", linear_v2())
    execution_id = api.execute(graph_id, {"x": 2})["execution_id"]
    before = api.wait_final(execution_id)
    assert before["outputs"] == {"result": [204.0]}  # (2 + 100) * 2

    deleted = api.delete(f"/graphs/{graph_id}")
    assert deleted.status == 200, deleted.text
    assert deleted.body == {"graph_id": graph_id, "deleted": True}

    ids = {"graph_id": graph_id}
    for method, path in api_routes():
        if "{graph_id}" not in path or set(PATH_PARAM.findall(path)) != {"graph_id"}:
            continue
        error = api.request(method, fill(path, ids, ""), valid_body(method, path)).error(404, "not_found")
        assert graph_id in error["message"], (method, path, error)
    api.get(f"/graphs/{graph_id}?version=1").error(404, "not_found")
    assert [g["graph_id"] for g in api.get("/graphs").body["graphs"]] == [kept_id]

    after = api.execution(execution_id)
    assert after["status"] == "COMPLETED"
    assert after["outputs"] == before["outputs"]
    assert after["nodes"] == before["nodes"]
    assert (after["graph_id"], after["graph_version"]) == (graph_id, 2)
    assert api.history(execution_id) == ["INCOMPLETE", "QUEUED", "RUNNING", "COMPLETED"]


def test_the_dev_user_has_the_example_graphs_and_a_new_user_has_none(api_server: ApiServer, api: Api) -> None:
    examples = []
    for path in sorted((ROOT / "examples").glob("*.json")):
        try:
            examples.append(validate_graph(path.read_text()).graph.name)
        except GraphValidationError:
            continue  # `agentflow serve` skips an example that does not validate
    assert examples
    dev = api.with_key(api_server.dev_key).get("/graphs")
    assert dev.status == 200
    assert set(examples) <= {g["name"] for g in dev.body["graphs"]}
    assert api.get("/graphs").body == {"graphs": []}


# -- authentication


def test_every_route_answers_401_without_a_valid_key(api: Api) -> None:
    graph_id = api.create_graph(graphs.linear())["graph_id"]
    execution_id = api.execute(graph_id, {"x": 1})["execution_id"]
    api.wait_final(execution_id)
    routes = [r for r in api_routes() if r not in DOC_ROUTES]
    covered = {("GET", "/graphs"), ("POST", "/graphs"), ("POST", "/executions/{execution_id}/stop")}
    assert covered <= set(routes) and len(routes) >= 14, routes
    ids = {"graph_id": graph_id, "execution_id": execution_id}

    assert api.key is not None
    for key in (None, "", "af_" + "x" * 43, api.key + "x", api.key[:-1], "k" * 300):
        anonymous = api.with_key(key)
        for method, path in routes:
            reply = anonymous.request(method, fill(path, ids, str(uuid.uuid4())), valid_body(method, path))
            error = reply.error(401, "unauthorized")
            assert "X-API-Key" in error["message"], (method, path, error)

    # nothing happened on the user's behalf
    assert api.get(f"/graphs/{graph_id}").body["latest_version"] == 1
    assert [e["execution_id"] for e in api.get(f"/graphs/{graph_id}/executions").body["executions"]] == [execution_id]
    assert [g["graph_id"] for g in api.get("/graphs").body["graphs"]] == [graph_id]
    assert api.execution(execution_id)["status"] == "COMPLETED"


def test_the_key_header_name_is_case_insensitive(user: Api) -> None:
    assert user.key is not None
    for name in ("x-api-key", "X-API-KEY", "X-Api-Key"):
        reply = user.with_key(None).get("/graphs", headers={name: user.key})
        assert reply.status == 200, (name, reply.text)


def test_a_request_without_a_key_is_refused_before_it_is_validated(anonymous: Api) -> None:
    """No valid key: 401, whatever else is wrong with the request (authentication comes first)."""
    graph_id = str(uuid.uuid4())
    requests = [
        ("POST", "/graphs", b"{not json"),
        ("POST", "/graphs", b'{"name": 5, "nodes": "x", "links": []}'),
        ("PUT", f"/graphs/{graph_id}/versions/active", b'{"version": "one"}'),
        ("POST", f"/graphs/{graph_id}/execute", b'{"inputz": {}}'),
        ("GET", f"/graphs/{graph_id}/executions?limit=0", None),
    ]
    answered = []
    for key in (None, "af_unknown"):
        for method, path, raw in requests:
            reply = anonymous.with_key(key).request(method, path, raw=raw)
            answered.append((key, method, path, raw, reply.status, (reply.body or {}).get("error", {}).get("code")))
    wrong = [a for a in answered if a[4:] != (401, "unauthorized")]
    assert not wrong, "answered without a valid key:\n" + "\n".join(map(str, wrong))


# -- request errors


def test_invalid_requests_answer_400_naming_the_problem(user: Api) -> None:
    graph_id = user.create_graph(graphs.linear())["graph_id"]

    error = user.post("/graphs", raw=b"{not json").error(400, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["body"]
    assert "JSON" in error["details"][0]["message"]

    error = user.post("/graphs", {"name": 5, "nodes": "x", "links": []}).error(400, "invalid_request")
    assert {"body.name", "body.nodes"} <= {d["field"] for d in error["details"]}
    assert "body.name" in error["message"] and "body.nodes" in error["message"]

    unknown_block = graphs.linear()
    unknown_block["nodes"][1]["block_id"] = "NoSuchBlock"
    error = user.post("/graphs", unknown_block).error(400, "invalid_request")
    assert [(d["node_id"], d["pin"]) for d in error["details"]] == [("add", "block_id")]
    assert "NoSuchBlock" in error["details"][0]["message"] and "NoSuchBlock" in error["message"]

    unknown_pin = graphs.linear()
    unknown_pin["links"][0]["sink_name"] = "nope"
    error = user.post("/graphs", unknown_pin).error(400, "invalid_request")
    assert ("add", "nope") in {(d["node_id"], d["pin"]) for d in error["details"]}
    assert "'nope'" in error["message"]

    error = user.post(f"/graphs/{graph_id}/execute", {"inputs": {}}).error(400, "invalid_request")
    assert [(d["pin"], d["message"]) for d in error["details"]] == [("x", "missing required graph input")]
    assert "'x'" in error["message"]

    error = user.post(f"/graphs/{graph_id}/execute", {"inputs": {"x": 1, "y": 2}}).error(400, "invalid_request")
    assert [d["pin"] for d in error["details"]] == ["y"] and "'y'" in error["message"]

    for body, field in [
        ({"inputs": [1]}, "body.inputs"),
        ({"inputs": {"x": 1}, "version": "one"}, "body.version"),
        ({"inputz": {}}, "body.inputz"),
    ]:
        error = user.post(f"/graphs/{graph_id}/execute", body).error(400, "invalid_request")
        assert [d["field"] for d in error["details"]] == [field], body
        assert field in error["message"]

    for body in ({"version": "one"}, {"version": 0}, {}):
        error = user.put(f"/graphs/{graph_id}/versions/active", body).error(400, "invalid_request")
        assert [d["field"] for d in error["details"]] == ["body.version"], body

    error = user.get(f"/graphs/{graph_id}?version=zero").error(400, "invalid_request")
    assert [d["field"] for d in error["details"]] == ["query.version"]

    # none of that started anything or changed the graph
    assert user.get(f"/graphs/{graph_id}/executions").body["executions"] == []
    assert user.get(f"/graphs/{graph_id}").body["latest_version"] == 1


def big_graph(size: int) -> bytes:
    """A JSON graph document of exactly `size` bytes (padded in its description)."""
    graph = graphs.linear()
    graph["description"] = ""
    graph["description"] = "x" * (size - len(json.dumps(graph).encode()))
    body = json.dumps(graph).encode()
    assert len(body) == size
    return body


def test_a_body_over_the_limit_answers_413(user: Api) -> None:
    error = user.post("/graphs", raw=big_graph(BODY_LIMIT + 1)).error(413, "payload_too_large")
    assert str(BODY_LIMIT) in error["message"] and str(BODY_LIMIT + 1) in error["message"]
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    user.put(f"/graphs/{graph_id}", raw=big_graph(BODY_LIMIT + 1)).error(413, "payload_too_large")
    big_inputs = json.dumps({"inputs": {"x": "y" * BODY_LIMIT}}).encode()
    user.post(f"/graphs/{graph_id}/execute", raw=big_inputs).error(413, "payload_too_large")

    # at the limit the body is read: this graph is refused for its own size (300 KB), not the body's
    error = user.post("/graphs", raw=big_graph(BODY_LIMIT)).error(400, "invalid_request")
    assert "bytes" in error["message"]
    assert user.get(f"/graphs/{graph_id}").body["latest_version"] == 1
    assert user.get(f"/graphs/{graph_id}/executions").body["executions"] == []


def test_a_body_over_the_limit_answers_413_even_when_it_is_not_json(user: Api) -> None:
    user.post("/graphs", raw=b"x" * (BODY_LIMIT + 1)).error(413, "payload_too_large")


def test_unknown_ids_answer_404(user: Api) -> None:
    routes = [(m, p) for m, p in api_routes() if PATH_PARAM.search(p)]
    assert ("POST", "/executions/{execution_id}/resume") in routes
    for unknown in (str(uuid.uuid4()), "no-such-id", "x" * 101, "bad%20id"):
        for method, path in routes:
            error = user.request(method, fill(path, {}, unknown), valid_body(method, path)).error(404, "not_found")
            assert error["details"] is None
            if "%" not in unknown:
                assert repr(unknown[:100]) in error["message"], (method, path, error)
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    assert "@7" in user.get(f"/graphs/{graph_id}?version=7").error(404, "not_found")["message"]


# -- documentation


def test_openapi_document_lists_every_route(anonymous: Api) -> None:
    reply = anonymous.get("/openapi.json")
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    document = reply.body
    assert document["openapi"].startswith("3.")
    assert document["info"]["title"] == "agentflow"
    documented = {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    expected = set(api_routes()) - DOC_ROUTES
    assert expected <= documented, f"missing from /openapi.json: {sorted(expected - documented)}"
    assert documented <= expected, f"documented but not in template.yaml: {sorted(documented - expected)}"
    execute = document["paths"]["/graphs/{graph_id}/execute"]["post"]
    assert {"202", "400", "401", "404"} <= set(execute["responses"])
    assert "409" in document["paths"]["/executions/{execution_id}/stop"]["post"]["responses"]
    assert anonymous.with_key("af_wrong").get("/openapi.json").status == 200  # public, whatever the key


def test_openapi_document_declares_the_api_key(anonymous: Api) -> None:
    document = anonymous.get("/openapi.json").body
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    in_header = [name for name, s in schemes.items() if s.get("type") == "apiKey" and s.get("in") == "header"]
    assert [schemes[n]["name"] for n in in_header] == ["X-API-Key"], f"no X-API-Key scheme: {schemes}"
    required = {name for requirement in document.get("security") or [] for name in requirement}
    assert required == set(in_header), f"the document does not require the key: {document.get('security')}"


def test_docs_page_is_html(anonymous: Api) -> None:
    reply = anonymous.get("/docs")
    assert reply.status == 200, reply.text[:300]
    assert reply.headers["content-type"].startswith("text/html")
    assert "<html" in reply.text.lower() and "swagger" in reply.text.lower()


def test_validate_checks_an_export_and_its_sub_graphs_without_storing_it(api: Api) -> None:
    broken = graphs.linear()
    broken["nodes"][1]["block_id"] = "NoSuchBlock"
    export = {**graphs.linear(), "sub_graphs": [{**broken, "name": "helper agent"}]}
    reply = api.post("/graphs/validate", export)
    assert reply.status == 200, reply.text
    assert reply.body == {
        "valid": False,
        "problems": [
            {"graph": "helper agent", "node_id": "add", "pin": "block_id", "message": "unknown block 'NoSuchBlock'"}
        ],
    }
    assert api.post("/graphs/validate", graphs.linear()).body == {"valid": True, "problems": []}
    assert api.get("/graphs").body["graphs"] == []  # nothing was stored
    assert api.post("/graphs/validate", [1, 2]).status == 400  # not a JSON object at all


def test_an_export_is_created_with_its_sub_graphs(api: Api) -> None:
    reply = api.post("/graphs", graphs.sub_graph_export("old-id", 4, [graphs.doubler("sub-1", 4)]))
    assert reply.status == 201, reply.text
    caller = reply.body["graph"]
    node = next(n for n in caller["nodes"] if n["id"] == "call")
    names = {g["graph_id"]: g["name"] for g in api.get("/graphs").body["graphs"]}
    assert names[node["input_default"]["graph_id"]] == "doubler sub-1"  # stored as a graph of this user
    assert node["input_default"]["graph_version"] == 1
    refused = api.post("/graphs", graphs.sub_graph_export("nowhere", 9, []))
    error = refused.error(400, "invalid_request")
    assert error["details"][0]["node_id"] == "call" and error["details"][0]["pin"] == "graph_id"
    assert len(api.get("/graphs").body["graphs"]) == 2  # nothing stored by the refused one
