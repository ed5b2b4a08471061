"""No secret of a stored credential ever comes back out: not in the table, not in what `agentflow serve` prints (its
functions logging at INFO), not in the local metrics, not in any API answer, not on `agentflow run --json`.

One scenario (module fixture) on an `agentflow serve` of its own, allow-listed to reach a loopback HTTP server that
echoes the request headers back (200), denies them quoting them (401), and fails quoting them (500): an engine that
did not scrub would store the secret as an output. The credential is really sent (the server saw it), and its
place in the stored outputs holds "<redacted>", so these tests fail if the scrub is removed.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from agentflow_local.dynamodb import DynamoDBLocal, client_for
from tests.graphs import GraphBuilder
from tests.support.http import Api, Reply
from tests.support.network import local_http_server
from tests.support.serving import ROOT, serve_env, start_serve, wait_until

SECRET = "sk-live-" + secrets.token_hex(16)
SECRET2 = "xk-" + secrets.token_hex(16)
API_KEY = "sk-api-" + secrets.token_hex(16)
USERNAME = "probe-" + secrets.token_hex(6)
PASSWORD = "pw-" + secrets.token_hex(16)
BASIC = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
HEADERS = {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET2}
SECRETS = {
    "the bearer token": SECRET,
    "the X-Api-Key header": SECRET2,
    "the api_key": API_KEY,
    "the username": USERNAME,
    "the password": PASSWORD,
    "base64(username:password)": BASIC,
}
# A second credential whose server quotes the token alone, without its scheme ("invalid token tok-..."): kept out
# of SECRETS, it has a test of its own (at the end).
PROBE = "tok-" + secrets.token_hex(16)
PROBE_HEADERS = {"Authorization": f"Token {PROBE}"}
REDACTED = "<redacted>"
PATHS = {"echo": "/echo", "denied": "/denied", "boom": "/boom"}  # node id -> endpoint
OUTPUTS = {"echo": "response", "denied": "client_error", "boom": "server_error"}  # node id -> the pin it yields


class RecordingApi(Api):
    """An Api that keeps the text of every answer it received."""

    def __init__(self, base_url: str, key: str | None) -> None:
        super().__init__(base_url, key)
        self.answers: list[str] = []

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Reply:
        reply = super().request(method, path, body, **kwargs)
        self.answers.append(f"{method} {path} -> {reply.status}: {reply.text}")
        return reply


@dataclass
class Scenario:
    received: list[tuple[str, dict[str, str]]]  # (path, headers) of every request the loopback server got
    answers: list[str] = field(default_factory=list)  # every API answer of the scenario
    report: dict[str, Any] = field(default_factory=dict)  # GET /executions/{eid} once the run ended
    probe_report: dict[str, Any] = field(default_factory=dict)  # the run of the server quoting the bare token
    serve_output: str = ""
    cli_outputs: dict[str, str] = field(default_factory=dict)  # command -> its stdout and stderr
    cli_report: dict[str, Any] = field(default_factory=dict)
    cli_documents: int = 0  # JSON documents on `agentflow run --json`'s stdout
    items: list[dict[str, Any]] = field(default_factory=list)  # every item of the table, as the client returns it
    metrics: str = ""


# -- the loopback server


def serve_endpoints(server: HTTPServer, received: list[tuple[str, dict[str, str]]]) -> None:
    def echo(request: Request) -> Response:
        received.append((request.path, dict(request.headers)))
        return Response(json.dumps({"headers": dict(request.headers)}), 200, content_type="application/json")

    def denied(request: Request) -> Response:
        received.append((request.path, dict(request.headers)))
        body = {"error": "denied", "you sent": dict(request.headers)}
        return Response(json.dumps(body), 401, content_type="application/json")

    def boom(request: Request) -> Response:
        received.append((request.path, dict(request.headers)))
        quoted = "; ".join(f"{k}: {request.headers.get(k)}" for k in HEADERS)
        return Response(f"upstream failure while handling {quoted}", 500, content_type="text/plain")

    def quote(request: Request) -> Response:
        received.append((request.path, dict(request.headers)))
        token = str(request.headers.get("Authorization", "")).partition(" ")[2]
        return Response(json.dumps({"error": f"invalid token {token}"}), 401, content_type="application/json")

    for handler, path in ((echo, PATHS["echo"]), (denied, PATHS["denied"]), (boom, PATHS["boom"])):
        server.expect_request(path).respond_with_handler(handler)
    server.expect_request("/quote").respond_with_handler(quote)


def probe_graph(server: HTTPServer, credential: dict[str, Any]) -> dict[str, Any]:
    builder = GraphBuilder("a server quoting the bare token")
    url = server.url_for("/quote")
    builder.node("quote", "SendAuthenticatedWebRequestBlock", url=url, method="GET", credentials=credential)
    return builder.output("out", "quoted").link("quote", "client_error", "out", "value").build()


def leak_graph(server: HTTPServer, credential: dict[str, Any]) -> dict[str, Any]:
    builder = GraphBuilder("secrets never leak")
    for node_id, path in PATHS.items():
        builder.node(
            node_id, "SendAuthenticatedWebRequestBlock", url=server.url_for(path), method="GET", credentials=credential
        )
        out = f"out_{node_id}"
        builder.output(out, f"{node_id}_{OUTPUTS[node_id]}").link(node_id, OUTPUTS[node_id], out, "value")
    return builder.build()


def reference(created: dict[str, Any]) -> dict[str, Any]:
    return {"id": created["id"], "provider": "http", "type": "host_scoped", "title": created["title"]}


# -- the scenario


def api_phase(api: RecordingApi, server: HTTPServer, scenario: Scenario) -> None:
    """Credentials and a graph through the API, one run to its end, then every read of them."""
    bodies = [
        {"provider": "http", "type": "host_scoped", "title": "loopback", "host": "127.0.0.1", "headers": HEADERS},
        {"provider": "openai", "title": "stored only", "api_key": API_KEY},
        {"provider": "jira", "type": "user_password", "username": USERNAME, "password": PASSWORD},
        {"provider": "http", "type": "host_scoped", "title": "probe", "host": "127.0.0.1", "headers": PROBE_HEADERS},
    ]
    created = []
    for body in bodies:
        reply = api.post("/credentials", body)
        assert reply.status == 201, reply.text
        created.append(reply.body)
    graph_id = api.create_graph(leak_graph(server, reference(created[0])))["graph_id"]
    execution_id = api.execute(graph_id, {})["execution_id"]
    scenario.report = api.wait_final(execution_id, timeout=90)
    probe_id = api.create_graph(probe_graph(server, reference(created[3])))["graph_id"]
    scenario.probe_report = api.wait_final(api.execute(probe_id, {})["execution_id"], timeout=90)
    paths = [f"/executions/{execution_id}", f"/executions/{execution_id}/events", f"/graphs/{graph_id}/executions"]
    paths += ["/credentials", *(f"/credentials/{c['id']}" for c in created), f"/graphs/{graph_id}", "/graphs"]
    paths.append(f"/graphs/{graph_id}/versions")
    for path in paths:
        reply = api.get(path)
        assert reply.status == 200, reply.text
    scenario.answers = api.answers


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentflow_local.cli", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
    )


def cli_phase(env: dict[str, str], server: HTTPServer, folder: Path, scenario: Scenario) -> None:
    """The same graph by `agentflow run --json`, as user "local", with a credential `agentflow credentials` added."""
    add = ["credentials", "add", "--user", "local", "--provider", "http", "--type", "host_scoped"]
    add += ["--host", "127.0.0.1", "--title", "loopback (cli)"]
    added = cli(env, *add, stdin=json.dumps(HEADERS))
    scenario.cli_outputs["credentials add"] = added.stdout + added.stderr
    assert added.returncode == 0, added.stderr
    graph_file = folder / "leak-graph.json"
    graph_file.write_text(json.dumps(leak_graph(server, reference(json.loads(added.stdout)))))
    ran = cli(env, "run", str(graph_file), "--json")
    scenario.cli_outputs["run --json"] = ran.stdout + ran.stderr
    assert ran.returncode == 0, f"agentflow run exited {ran.returncode}:\n{ran.stderr[-3000:]}"
    documents = json_documents(ran.stdout)
    scenario.cli_documents = len(documents)
    scenario.cli_report = documents[-1]


def json_documents(text: str) -> list[Any]:
    """The JSON documents `text` holds one after the other."""
    decoder, documents, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        document, end = decoder.raw_decode(text, at)
        documents.append(document)
        at = end + (len(text[end:]) - len(text[end:].lstrip()))
    return documents


def scan_table(endpoint: str, table: str) -> list[dict[str, Any]]:
    client = client_for(endpoint)
    return [item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]


@pytest.fixture(scope="module")
def scenario(dynamodb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    folder = tmp_path_factory.mktemp("leak-local")
    table = f"leak-{uuid.uuid4().hex[:10]}"
    env = serve_env(
        folder,
        AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint,
        AGENTFLOW_TABLE=table,
        AGENTFLOW_HTTP_ALLOW_HOSTS="127.0.0.1",
        AGENTFLOW_LOG_LEVEL="INFO",  # serve's and run's functions log at INFO (LOG_LEVEL, agentflow_local/stack.py)
    )
    with local_http_server() as server:
        scenario = Scenario(received=[])
        serve_endpoints(server, scenario.received)
        served = start_serve(env)
        try:
            api_phase(RecordingApi(served.url, served.key), server, scenario)
        finally:
            try:
                served.interrupt(timeout=60)
            except subprocess.TimeoutExpired:
                served.kill_group()
        wait_until(lambda: any(line.startswith("agentflow: stopped") for line in served.output), 10, "the last line")
        scenario.serve_output = "".join(served.output)
        cli_phase(env, server, folder, scenario)
    scenario.items = scan_table(dynamodb_local.endpoint, table)
    scenario.metrics = (folder / "metrics.jsonl").read_text()
    return scenario


# -- rendering and scanning


def render(value: Any) -> list[str]:
    """Every text in a low-level DynamoDB attribute value, at any depth: strings (and what they decode to when they
    are base64), numbers, binary values' bytes, map keys."""
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    if isinstance(value, str):
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return [value]
        return [value, decoded.decode("latin-1")]
    if isinstance(value, dict):
        return [text for key, inner in value.items() for text in (str(key), *render(inner))]
    if isinstance(value, list):
        return [text for inner in value for text in render(inner)]
    return [str(value)]


def leaks(text: str) -> list[str]:
    return [name for name, secret in SECRETS.items() if secret in text]


def key_of(item: dict[str, Any]) -> str:
    return f"{item.get('PK', {}).get('S')} / {item.get('SK', {}).get('S')}"


def header(headers: dict[str, Any], name: str) -> Any:
    return next(value for key, value in headers.items() if key.lower() == name.lower())


def assert_redacted(report: dict[str, Any]) -> None:
    """The run completed, every endpoint's answer is an output, and the secrets it quoted read "<redacted>"."""
    assert report["status"] == "COMPLETED", report["error"]
    nodes = {n["node_id"]: n for n in report["nodes"]}
    echoed = nodes["echo"]["outputs"]["response"][0]["headers"]
    quoted = nodes["denied"]["outputs"]["client_error"][0]["you sent"]
    for headers in (echoed, quoted):
        assert header(headers, "Authorization") == REDACTED and header(headers, "X-Api-Key") == REDACTED, headers
    failed = nodes["boom"]["outputs"]["server_error"][0]
    assert failed == f"upstream failure while handling Authorization: {REDACTED}; X-Api-Key: {REDACTED}", failed
    assert report["outputs"]["echo_response"] == [{"headers": echoed}]
    assert [n["node_id"] for n in report["nodes"] if n["status"] != "COMPLETED"] == []


# -- the tests


def test_the_credential_headers_really_reached_the_server(scenario: Scenario) -> None:
    for path in PATHS.values():
        calls = [headers for seen, headers in scenario.received if seen == path]
        assert len(calls) == 2, f"{path}: expected one call from the API's run and one from `agentflow run`"
        for headers in calls:
            assert header(headers, "Authorization") == f"Bearer {SECRET}", headers
            assert header(headers, "X-Api-Key") == SECRET2, headers
    quoted = [headers for seen, headers in scenario.received if seen == "/quote"]
    assert [header(headers, "Authorization") for headers in quoted] == [f"Token {PROBE}"]


def test_the_stored_outputs_hold_redacted_where_the_secrets_were(scenario: Scenario) -> None:
    assert_redacted(scenario.report)
    assert_redacted(scenario.cli_report)


def test_no_table_item_holds_a_secret(scenario: Scenario) -> None:
    assert len(scenario.items) > 20, "the scan found too few items to mean anything"
    found = {key_of(item): leaks("\n".join(render(item))) for item in scenario.items}
    assert {key: names for key, names in found.items() if names} == {}
    assert any(REDACTED in "\n".join(render(item)) for item in scenario.items), "no stored output was scrubbed"


def test_the_table_keeps_the_credentials_encrypted(scenario: Scenario) -> None:
    stored = [item for item in scenario.items if item["SK"]["S"].startswith("CRED#")]
    owners = sorted((item["PK"]["S"], item["credential_type"]["S"]) for item in stored)
    expected = [("USER#dev", "api_key"), *[("USER#dev", "host_scoped")] * 2, ("USER#dev", "user_password")]
    assert owners == [*expected, ("USER#local", "host_scoped")]
    for item in stored:
        sealed = item["sealed"]["M"]
        ciphertext = base64.b64decode(sealed["ciphertext"]["S"], validate=True)
        assert len(ciphertext) > len(SECRET), key_of(item)
        assert leaks(ciphertext.decode("latin-1")) == [], key_of(item)


def test_serve_printed_no_secret(scenario: Scenario) -> None:
    output = scenario.serve_output
    assert "node execution handled" in output, "the functions' INFO logs did not reach the output: nothing to scan"
    assert "agentflow: stopped" in output
    assert [line for line in output.splitlines() if leaks(line)] == []


def test_the_metrics_file_holds_no_secret(scenario: Scenario) -> None:
    assert "NodeExecutions" in scenario.metrics, "no EMF document was written: nothing to scan"
    assert leaks(scenario.metrics) == []


def test_no_api_answer_holds_a_secret(scenario: Scenario) -> None:
    assert len(scenario.answers) >= 13, scenario.answers
    assert [answer[:300] for answer in scenario.answers if leaks(answer)] == []
    assert any(REDACTED in answer for answer in scenario.answers), "no answer showed a scrubbed output"


def test_the_cli_printed_no_secret(scenario: Scenario) -> None:
    assert set(scenario.cli_outputs) == {"credentials add", "run --json"}
    for command, output in scenario.cli_outputs.items():
        assert leaks(output) == [], f"`agentflow {command}` printed {leaks(output)}"
    assert REDACTED in scenario.cli_outputs["run --json"]


def test_agentflow_run_json_prints_one_document_whatever_the_log_level(scenario: Scenario) -> None:
    assert scenario.cli_documents == 1


def test_a_token_quoted_without_its_scheme_is_redacted_too(scenario: Scenario) -> None:
    node = next(n for n in scenario.probe_report["nodes"] if n["node_id"] == "quote")
    assert node["outputs"]["client_error"] == [{"error": "invalid token <redacted>"}], node["outputs"]
    assert [key_of(item) for item in scenario.items if PROBE in "\n".join(render(item))] == []
    assert [answer[:300] for answer in scenario.answers if PROBE in answer] == []
