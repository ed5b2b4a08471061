"""A run's credentials are checked when it starts, over real HTTP (the session's `agentflow serve`): a node of
SendAuthenticatedWebRequestBlock naming no credential, an unknown one, another user's, one of the wrong type or of
the wrong provider answers 400 naming the node and the pin `credentials`, and nothing starts (the graph lists no
execution). An unknown id and another user's id get the same answer apart from the id: no tenancy leak. The right
credential starts (202) and gets as far as the request (which the SSRF guard then refuses: no packet is sent).
`agentflow run` checks them at start too (exit 2, naming the node and pin).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ApiServer
from tests.e2e.conftest import CliResult
from tests.e2e.test_api_flow import new_user
from tests.graphs import GraphBuilder
from tests.support.http import Api, Reply

NODE = "call"
URL = "http://127.0.0.1:9/never-sent"  # loopback: the shared server does not allow-list it, the guard refuses it
MISMATCH = "invalid credentials: type/provider mismatch"


def body(provider: str, kind: str) -> dict[str, Any]:
    if kind == "api_key":
        return {"provider": provider, "title": f"{provider} key", "api_key": "sk-" + uuid.uuid4().hex}
    headers = {"Authorization": "Bearer t-" + uuid.uuid4().hex}
    return {"provider": provider, "type": kind, "title": f"{provider} headers", "host": "127.0.0.1", "headers": headers}


def create_credential(api: Api, provider: str, kind: str) -> str:
    reply = api.post("/credentials", body(provider, kind))
    assert reply.status == 201, reply.text
    credential_id: str = reply.body["id"]
    return credential_id


@pytest.fixture(scope="module")
def alice(api_server: ApiServer) -> Api:
    return new_user(api_server, "check-alice")


@pytest.fixture(scope="module")
def bob(api_server: ApiServer) -> Api:
    return new_user(api_server, "check-bob")


@pytest.fixture(scope="module")
def owned(alice: Api, bob: Api) -> dict[str, str]:
    """Credential ids by what they are: alice's, and one of bob's."""
    return {
        "http": create_credential(alice, "http", "host_scoped"),
        "api_key": create_credential(alice, "openai", "api_key"),
        "github": create_credential(alice, "github", "host_scoped"),  # host_scoped, but not of provider http
        "bobs": create_credential(bob, "http", "host_scoped"),
    }


def request_graph(credentials: Any = None) -> dict[str, Any]:
    """One authenticated request and an output on its response; no `credentials` input when None."""
    given = {} if credentials is None else {"credentials": credentials}
    return (
        GraphBuilder("credential checks")
        .node(NODE, "SendAuthenticatedWebRequestBlock", url=URL, method="GET", **given)
        .output("out", "response")
        .link(NODE, "response", "out", "value")
        .build()
    )


def ref(credential_id: str, provider: str = "http", kind: str = "host_scoped") -> dict[str, str]:
    return {"id": credential_id, "provider": provider, "type": kind, "title": "named by the node"}


def executions(api: Api, graph_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/graphs/{graph_id}/executions")
    assert reply.status == 200, reply.text
    listed: list[dict[str, Any]] = reply.body["executions"]
    return listed


def refused_start(api: Api, credentials: Any) -> tuple[Reply, str]:
    """Create the graph (its credentials are not checked then), execute it: 400 naming the node and the pin, and
    the graph has no execution. Returns the answer and the problem's message."""
    graph_id = api.create_graph(request_graph(credentials))["graph_id"]
    reply = api.post(f"/graphs/{graph_id}/execute", {"inputs": {}})
    error = reply.error(400, "invalid_request")
    assert [(d["node_id"], d["pin"]) for d in error["details"]] == [(NODE, "credentials")], error
    message: str = error["details"][0]["message"]
    assert message and message in error["message"] and f"node '{NODE}'" in error["message"], error
    assert error["message"].startswith("invalid credentials (1 problem)"), error
    assert executions(api, graph_id) == [], "a refused start left an execution"
    return reply, message


def test_a_node_without_credentials_is_refused_when_the_graph_is_created(alice: Api) -> None:
    before = alice.get("/graphs").body["graphs"]
    error = alice.post("/graphs", request_graph()).error(400, "invalid_request")
    problem = {"node_id": NODE, "pin": "credentials", "message": "required input has no default, link or graph input"}
    assert error["details"] == [problem], error
    assert alice.get("/graphs").body["graphs"] == before, "a refused graph was stored"


@pytest.mark.parametrize("reference", [{}, {"provider": "http", "type": "host_scoped"}, {"id": ""}])
def test_a_reference_without_an_id_is_refused_at_start(alice: Api, reference: dict[str, Any]) -> None:
    _, message = refused_start(alice, reference)
    assert message == "credentials are required"


def test_an_unknown_id_and_another_users_id_answer_alike(alice: Api, owned: dict[str, str]) -> None:
    missing = str(uuid.uuid4())
    unknown, unknown_message = refused_start(alice, ref(missing))
    theirs, theirs_message = refused_start(alice, ref(owned["bobs"]))
    assert unknown_message == f"unknown credentials #{missing}"
    assert theirs_message == f"unknown credentials #{owned['bobs']}"
    assert theirs.text.replace(owned["bobs"], "<id>") == unknown.text.replace(missing, "<id>")


def test_another_users_credential_is_refused_whatever_the_node_claims(alice: Api, owned: dict[str, str]) -> None:
    _, message = refused_start(alice, ref(owned["bobs"], "openai", "api_key"))
    assert message.startswith(MISMATCH), message  # refused before the id is even looked up
    assert owned["bobs"] not in message


@pytest.mark.parametrize(
    ("credential", "provider", "kind", "words"),
    [
        # (d) the user's own api_key credential: this block takes host_scoped credentials only
        ("api_key", "openai", "api_key", ["takes host_scoped credentials of http", "not api_key of openai"]),
        ("api_key", "http", "host_scoped", ["are api_key of openai", "the node says host_scoped of http"]),
        # (e) a host_scoped credential, with a provider the meta gets wrong or the block does not take
        ("http", "github", "host_scoped", ["takes host_scoped credentials of http", "not host_scoped of github"]),
        ("github", "http", "host_scoped", ["are host_scoped of github", "the node says host_scoped of http"]),
        ("github", "github", "host_scoped", ["takes host_scoped credentials of http", "not host_scoped of github"]),
    ],
)
def test_a_credential_of_the_wrong_type_or_provider_is_refused(
    alice: Api, owned: dict[str, str], credential: str, provider: str, kind: str, words: list[str]
) -> None:
    _, message = refused_start(alice, ref(owned[credential], provider, kind))
    assert message.startswith(MISMATCH), message
    for word in words:
        assert word in message, message


def test_the_right_credential_starts(alice: Api, owned: dict[str, str]) -> None:
    graph_id = alice.create_graph(request_graph(ref(owned["http"])))["graph_id"]
    started = alice.execute(graph_id, {})
    assert started["created"] is True
    assert [e["execution_id"] for e in executions(alice, graph_id)] == [started["execution_id"]]
    report = alice.wait_final(started["execution_id"])
    node = next(n for n in report["nodes"] if n["node_id"] == NODE)
    # credentials resolved and the block ran: it stopped only at the SSRF guard, before anything was sent
    assert node["status"] == "FAILED" and node["attempts"] == 1, node
    assert "refused http://127.0.0.1:9:" in node["error"] and "loopback" in node["error"], node["error"]
    assert node["inputs"]["credentials"] == ref(owned["http"]), "the stored inputs should keep the reference only"


def test_agentflow_run_names_a_bad_credential_and_exits_2(
    agentflow_run: Callable[..., CliResult], tmp_path: Path
) -> None:
    missing = str(uuid.uuid4())
    local = {"AGENTFLOW_LOCAL_DIR": str(tmp_path / "local"), "AGENTFLOW_TABLE": f"checks-{uuid.uuid4().hex[:10]}"}
    done = agentflow_run(request_graph(ref(missing)), env=local)
    assert f"node '{NODE}', pin 'credentials': unknown credentials #{missing}" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.code == 2
