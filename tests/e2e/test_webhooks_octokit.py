"""The webhook ingress against real material, over real HTTP against `agentflow serve` (the session's `api_server`).

The payloads are real GitHub webhook deliveries from the npm package @octokit/webhooks-examples, and they are
signed by an implementation independent of ours, `sign` from the npm package @octokit/webhooks-methods, run by
tests/webhooks/sign.mjs under node. Node serializes each body once and hands back its exact bytes with the
signature; this module sends those bytes verbatim, so what our ingress checks is exactly what octokit signed.

Every test makes its own graphs (from examples/webhooks/*.json) and webhooks, so counts of executions are its own.
Nothing is skipped: without node or the two packages the tests fail and say to run `npm ci` (`make setup`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from agentflow.triggers.webhooks import MAX_WEBHOOK_BODY_BYTES
from tests.conftest import ApiServer

ROOT = Path(__file__).resolve().parents[2]
SIGN_SCRIPT = ROOT / "tests" / "webhooks" / "sign.mjs"
EXAMPLE_GRAPHS = ROOT / "examples" / "webhooks"
PACKAGES = ("@octokit/webhooks-methods", "@octokit/webhooks-examples")
EXAMPLES_INDEX = ROOT / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
SPEC_MAX_BODY = 1_000_000  # an upper bound for the test: anything this large must be refused with 413
FINAL = frozenset({"COMPLETED", "FAILED", "TERMINATED"})
SETUP_HINT = "run `npm ci` in the repository root (CI does it through `make setup`)"


# -- the independent signer (node + @octokit/webhooks-methods)


@dataclass(frozen=True)
class Signed:
    """A body exactly as node serialized and signed it, and octokit's `X-Hub-Signature-256` value for it."""

    body: bytes
    signature: str

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Signer:
    """Runs tests/webhooks/sign.mjs: one node process per batch of requests (JSON lines in, JSON lines out)."""

    def __init__(self, node: str) -> None:
        self.node = node

    def _node(self, args: list[str], stdin: str) -> str:
        done = subprocess.run(
            [self.node, str(SIGN_SCRIPT), *args],
            cwd=ROOT,
            input=stdin,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=60,
        )
        if done.returncode != 0 and not done.stdout:
            pytest.fail(f"{SIGN_SCRIPT.name} failed ({SETUP_HINT}?):\n{done.stderr[-2000:]}")
        return done.stdout

    def versions(self) -> dict[str, str]:
        answer: dict[str, str] = json.loads(self._node(["--version"], ""))
        return answer

    def run(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        lines = "".join(json.dumps({"id": i, **r}) + "\n" for i, r in enumerate(requests))
        answers = [json.loads(line) for line in self._node([], lines).splitlines() if line.strip()]
        assert [a["id"] for a in answers] == list(range(len(requests))), answers
        for request, answer in zip(requests, answers, strict=True):
            assert "error" not in answer, f"{SIGN_SCRIPT.name} refused {request!r:.200}: {answer['error']}"
        return answers

    def sign(self, requests: list[dict[str, Any]]) -> list[Signed]:
        signed = []
        for answer in self.run(requests):
            body = base64.b64decode(answer["body_b64"])
            assert len(body) == answer["bytes"]
            signed.append(Signed(body, answer["signature"]))
        return signed

    def example(self, secret: str, event: str, action: str | None = None, index: int = 0) -> Signed:
        """A real GitHub payload of EVENT (with ACTION) from @octokit/webhooks-examples, signed by octokit."""
        return self.sign([{"secret": secret, "example": {"event": event, "action": action, "index": index}}])[0]

    def payload(self, secret: str, payload: Any) -> Signed:
        return self.sign([{"secret": secret, "payload": payload}])[0]

    def text(self, secret: str, text: str) -> Signed:
        return self.sign([{"secret": secret, "text": text}])[0]

    def verify(self, secret: str, body: bytes, signature: str) -> bool:
        request = {"verify": {"secret": secret, "body_b64": base64.b64encode(body).decode(), "signature": signature}}
        return bool(self.run([request])[0]["valid"])


@pytest.fixture(scope="module")
def signer() -> Signer:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            f"node is not on PATH: these tests sign webhooks with @octokit/webhooks-methods; install Node 20+ "
            f"and {SETUP_HINT}"
        )
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]
    for package in PACKAGES:
        installed = ROOT / "node_modules" / package / "package.json"
        if package not in pinned:
            pytest.fail(f"package.json does not list {package}")
        if not installed.is_file():
            pytest.fail(f"{package} is not installed in node_modules: {SETUP_HINT}")
        version = json.loads(installed.read_text())["version"]
        if version != pinned[package]:
            pytest.fail(f"node_modules has {package}@{version} but package.json pins {pinned[package]}: {SETUP_HINT}")
    signer = Signer(node)
    versions = signer.versions()
    assert versions == {
        "signer": f"@octokit/webhooks-methods@{pinned['@octokit/webhooks-methods']}",
        "examples": f"@octokit/webhooks-examples@{pinned['@octokit/webhooks-examples']}",
    }, versions
    return signer


# -- a small HTTP client (stdlib only)


@dataclass(frozen=True)
class Reply:
    status: int
    text: str
    body: Any  # parsed JSON, or None

    def error(self, status: int, code: str) -> dict[str, Any]:
        assert self.status == status, f"expected {status}, got {self.status}: {self.text[:500]}"
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.text[:500]
        error: dict[str, Any] = self.body["error"]
        assert error["code"] == code, error
        return error


def http_request(url: str, method: str, body: bytes | None = None, headers: Mapping[str, str] | None = None) -> Reply:
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname is not None, url
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, path, body=body, headers=dict(headers or {}))
        response = connection.getresponse()
        text = response.read().decode("utf-8", "replace")
    finally:
        connection.close()
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = None
    return Reply(response.status, text, parsed)


@dataclass(frozen=True)
class Api:
    """One user's view of the API (X-API-Key on every request)."""

    base_url: str
    key: str

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        headers = {"X-API-Key": self.key}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        return http_request(self.base_url + path, method, data, headers)

    def create_graph(self, example: str, change: dict[str, Any] | None = None) -> str:
        graph = json.loads((EXAMPLE_GRAPHS / f"{example}.json").read_text())
        graph |= change or {}
        reply = self.call("POST", "/graphs", graph)
        assert reply.status == 201, reply.text
        return str(reply.body["graph_id"])

    def create_webhook(self, graph_id: str) -> dict[str, Any]:
        reply = self.call("POST", f"/graphs/{graph_id}/webhooks")
        assert reply.status == 201, reply.text
        hook: dict[str, Any] = reply.body
        assert hook["url"] == f"{self.base_url}/webhooks/{hook['webhook_id']}", hook
        assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 30, hook
        return hook

    def executions(self, graph_id: str) -> list[str]:
        reply = self.call("GET", f"/graphs/{graph_id}/executions?limit=100")
        assert reply.status == 200, reply.text
        return [e["execution_id"] for e in reply.body["executions"]]

    def wait_done(self, execution_id: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            reply = self.call("GET", f"/executions/{execution_id}")
            assert reply.status == 200, reply.text
            if reply.body["status"] in FINAL:
                report: dict[str, Any] = reply.body
                return report
            assert time.monotonic() < deadline, f"execution {execution_id} did not finish: {reply.text[:1000]}"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def api(api_server: ApiServer) -> Api:
    return Api(api_server.url, api_server.create_key(f"hooks-{uuid.uuid4().hex[:8]}"))


@dataclass(frozen=True)
class Hook:
    """A graph made from one of examples/webhooks/*.json, with a webhook of its own."""

    api: Api
    graph_id: str
    webhook_id: str
    url: str
    secret: str

    def deliver(
        self,
        signed: Signed | None = None,
        *,
        body: bytes | None = None,
        signature: str | None = None,
        event: str | None = None,
        delivery: str | None = None,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> Reply:
        """POST a delivery the way GitHub does: the signed bytes verbatim, `X-Hub-Signature-256`, event and id."""
        sent = {"Content-Type": "application/json", "User-Agent": "GitHub-Hookshot/test"}
        if signed is not None:
            sent["X-Hub-Signature-256"] = signed.signature
        if signature is not None:
            sent["X-Hub-Signature-256"] = signature
        if event is not None:
            sent["X-GitHub-Event"] = event
        if delivery is not None:
            sent["X-GitHub-Delivery"] = delivery
        sent |= headers or {}
        data = body if body is not None else (signed.body if signed is not None else b"")
        return http_request(url or self.url, "POST", data, sent)

    def executions(self) -> list[str]:
        return self.api.executions(self.graph_id)


OCTOKIT_REPO = "Codertocat/Hello-World"  # the repository of @octokit/webhooks-examples' pull_request payloads


def with_repo(example: str, repo: str) -> dict[str, Any]:
    """The example graph with its PR trigger pointed at `repo`."""
    graph: dict[str, Any] = json.loads((EXAMPLE_GRAPHS / f"{example}.json").read_text())
    for node in graph["nodes"]:
        if node["block_id"] == "GithubPullRequestTriggerBlock":
            node["input_default"]["repo"] = repo
    return {"nodes": graph["nodes"]}


def make_hook(api: Api, example: str, change: dict[str, Any] | None = None) -> Hook:
    if example == "github_pr_opened" and change is None:
        change = with_repo(example, OCTOKIT_REPO)
    graph_id = api.create_graph(example, change)
    created = api.create_webhook(graph_id)
    return Hook(api, graph_id, created["webhook_id"], created["url"], created["secret"])


@pytest.fixture
def pr_hook(api: Api) -> Hook:
    """examples/webhooks/github_pr_opened.json: GitHub PR trigger, events opened and reopened."""
    hook = make_hook(api, "github_pr_opened")
    assert hook.executions() == []
    return hook


@pytest.fixture
def greet_hook(api: Api) -> Hook:
    """examples/webhooks/greet_on_webhook.json: generic trigger, greets the payload's `name`."""
    hook = make_hook(api, "greet_on_webhook")
    assert hook.executions() == []
    return hook


def started(reply: Reply, hook: Hook, created: bool = True) -> str:
    assert reply.status == 202, reply.text
    assert reply.body["started"] is True, reply.body
    assert reply.body["created"] is created, reply.body
    assert reply.body["graph_id"] == hook.graph_id and reply.body["graph_version"] == 1, reply.body
    return str(reply.body["execution_id"])


def not_started(reply: Reply) -> str:
    assert reply.status == 202, reply.text
    assert reply.body["started"] is False and "execution_id" not in reply.body, reply.body
    return str(reply.body["reason"])


def new_delivery() -> str:
    return str(uuid.uuid4())


@pytest.fixture(scope="module")
def examples_index() -> list[dict[str, Any]]:
    """The package's own api.github.com/index.json, read here without node (to compare with what node signed)."""
    if not EXAMPLES_INDEX.is_file():
        pytest.fail(f"{EXAMPLES_INDEX} is missing: {SETUP_HINT}")
    index: list[dict[str, Any]] = json.loads(EXAMPLES_INDEX.read_text(encoding="utf-8"))
    return index


def examples_of(index: list[dict[str, Any]], event: str, action: str | None = None) -> list[dict[str, Any]]:
    entry = next(e for e in index if e["name"] == event)
    return [p for p in entry["examples"] if action is None or p.get("action") == action]


# -- the signer itself


def test_node_signer_is_octokit_and_agrees_with_python_hmac(
    signer: Signer, examples_index: list[dict[str, Any]]
) -> None:
    secret = "whsec_" + uuid.uuid4().hex
    signed = signer.example(secret, "pull_request", "opened")
    # the body is the package's real payload, serialized by node (compact JSON, as GitHub sends it)
    assert signed.payload == examples_of(examples_index, "pull_request", "opened")[0]
    assert signed.body.startswith(b'{"action":"opened","number":2,"pull_request":{')
    # octokit's signature is the HMAC-SHA256 of exactly these bytes, as Python's hmac computes it
    ours = "sha256=" + hmac.new(secret.encode(), signed.body, hashlib.sha256).hexdigest()
    assert signed.signature == ours
    # and octokit's verify agrees both ways, and notices a one-byte change or another secret
    assert signer.verify(secret, signed.body, ours)
    assert not signer.verify(secret, signed.body.replace(b'"number":2', b'"number":3', 1), ours)
    assert not signer.verify(secret + "x", signed.body, ours)
    # non-ASCII: node sends raw UTF-8 (no \u escapes), so a sender that re-serialized in Python would not match
    text = signer.payload(secret, {"name": "Zoë ✨"})
    assert text.body == '{"name":"Zoë ✨"}'.encode()
    assert text.signature == "sha256=" + hmac.new(secret.encode(), text.body, hashlib.sha256).hexdigest()
    assert json.dumps({"name": "Zoë ✨"}).encode() != text.body


# -- the GitHub pull-request trigger


def test_ping_answers_pong_and_starts_nothing(
    pr_hook: Hook, signer: Signer, examples_index: list[dict[str, Any]]
) -> None:
    for index in range(len(examples_of(examples_index, "ping"))):  # repository and organization hooks
        ping = signer.example(pr_hook.secret, "ping", index=index)
        assert "zen" in ping.payload and "hook_id" in ping.payload
        reply = pr_hook.deliver(ping, event="ping", delivery=new_delivery())
        assert reply.status == 200, reply.text
        assert reply.body == {"message": "pong", "webhook_id": pr_hook.webhook_id}
    # a ping is checked like any delivery: a wrong signature is refused before the event is looked at
    wrong = signer.example("not-the-secret", "ping")
    pr_hook.deliver(wrong, event="ping", delivery=new_delivery()).error(401, "bad_signature")
    assert pr_hook.executions() == []


def test_pull_request_opened_starts_the_graph_with_payload_fields(pr_hook: Hook, signer: Signer) -> None:
    opened = signer.example(pr_hook.secret, "pull_request", "opened")
    payload = opened.payload
    number, login, html_url = payload["number"], payload["sender"]["login"], payload["pull_request"]["html_url"]
    assert (number, login, html_url) == (2, "Codertocat", "https://github.com/Codertocat/Hello-World/pull/2")

    execution_id = started(pr_hook.deliver(opened, event="pull_request", delivery=new_delivery()), pr_hook)
    report = pr_hook.api.wait_done(execution_id)
    assert report["status"] == "COMPLETED", report
    assert report["outputs"] == {"announcement": [f"#{number} opened by {login}: {html_url}"]}
    assert pr_hook.executions() == [execution_id]

    # reopened is selected too (a real reopened payload)
    reopened = signer.example(pr_hook.secret, "pull_request", "reopened")
    second = started(pr_hook.deliver(reopened, event="pull_request", delivery=new_delivery()), pr_hook)
    report = pr_hook.api.wait_done(second)
    r = reopened.payload
    expected = f"#{r['number']} reopened by {r['sender']['login']}: {r['pull_request']['html_url']}"
    assert report["status"] == "COMPLETED" and report["outputs"] == {"announcement": [expected]}, report
    assert sorted(pr_hook.executions()) == sorted([execution_id, second])


def test_unselected_actions_and_other_events_start_nothing(pr_hook: Hook, signer: Signer) -> None:
    first = started(
        pr_hook.deliver(signer.example(pr_hook.secret, "pull_request", "opened"), event="pull_request"), pr_hook
    )
    assert pr_hook.executions() == [first]
    cases = [
        ("pull_request", "closed", 0),  # a merged pull request
        ("pull_request", "closed", 1),
        ("pull_request", "synchronize", 0),
        ("pull_request", "labeled", 0),
        ("push", None, 0),
        ("push", None, 4),
        ("issues", "opened", 0),
    ]
    signed = signer.sign(
        [{"secret": pr_hook.secret, "example": {"event": e, "action": a, "index": i}} for e, a, i in cases]
    )
    for (event, action, _), delivery in zip(cases, signed, strict=True):
        assert delivery.payload.get("action") == action
        reason = not_started(pr_hook.deliver(delivery, event=event, delivery=new_delivery()))
        assert repr(action if event == "pull_request" else event) in reason, reason
    # a pull_request payload without its event header is not taken for one
    no_event = signer.example(pr_hook.secret, "pull_request", "opened")
    assert "(none)" in not_started(pr_hook.deliver(no_event, delivery=new_delivery()))
    assert pr_hook.executions() == [first]


# -- the generic trigger


def test_generic_trigger_greets_the_payload_name(greet_hook: Hook, signer: Signer) -> None:
    signed = signer.payload(greet_hook.secret, {"name": "Mona Lisa Octocat ✨", "sent_by": "octokit"})
    execution_id = started(greet_hook.deliver(signed, headers={"X-Webhook-Delivery": new_delivery()}), greet_hook)
    report = greet_hook.api.wait_done(execution_id)
    assert report["status"] == "COMPLETED", report
    assert report["outputs"] == {"greeting": ["Hello, Mona Lisa Octocat ✨!"]}
    assert greet_hook.executions() == [execution_id]


def test_generic_trigger_takes_a_real_push_payload(api: Api, signer: Signer) -> None:
    # the example graph, reading the push's `ref` (a real push payload has no `name`)
    graph = json.loads((EXAMPLE_GRAPHS / "greet_on_webhook.json").read_text())
    graph["links"][0]["source_name"] = "payload_#_ref"
    hook = make_hook(api, "greet_on_webhook", {"links": graph["links"]})
    push = signer.example(hook.secret, "push", index=4)
    assert push.payload["ref"] == "refs/heads/master"
    # the GitHub headers mean nothing to a generic trigger: any signed JSON object starts it
    execution_id = started(hook.deliver(push, event="push", delivery=new_delivery()), hook)
    report = api.wait_done(execution_id)
    assert report["status"] == "COMPLETED", report
    assert report["outputs"] == {"greeting": ["Hello, refs/heads/master!"]}


# -- refusals: nothing is created


def test_bad_signatures_are_refused_and_create_nothing(greet_hook: Hook, pr_hook: Hook, signer: Signer) -> None:
    good = signer.payload(greet_hook.secret, {"name": "Ada"})
    other = signer.payload("whsec_wrong" + uuid.uuid4().hex, {"name": "Ada"})
    sha1 = "sha1=" + hmac.new(greet_hook.secret.encode(), good.body, hashlib.sha1).hexdigest()
    hex_only = good.signature.removeprefix("sha256=")
    refused: dict[str, dict[str, Any]] = {
        "wrong secret": {"signed": other},
        "tampered body": {"body": good.body.replace(b"Ada", b"Eve"), "signature": good.signature},
        "body with an extra space": {"body": good.body + b" ", "signature": good.signature},
        "missing header": {"body": good.body},
        "empty header": {"body": good.body, "signature": ""},
        "sha1= of the right secret": {"body": good.body, "signature": sha1},
        "sha1 in X-Hub-Signature only": {"body": good.body, "headers": {"X-Hub-Signature": sha1}},
        "hex without sha256=": {"body": good.body, "signature": hex_only},
        "sha256= cut short": {"body": good.body, "signature": good.signature[:-2]},
        "sha256= of another secret's key": {"body": good.body, "signature": other.signature},
    }
    for case, kwargs in refused.items():
        reply = greet_hook.deliver(delivery=new_delivery(), **kwargs)
        assert reply.status == 401, f"{case}: {reply.status} {reply.text}"
        reply.error(401, "bad_signature")
    assert greet_hook.executions() == []
    # the same body with octokit's signature does start it: the 401s were the signatures' doing
    started(greet_hook.deliver(good, delivery=new_delivery()), greet_hook)
    assert len(greet_hook.executions()) == 1

    # and a real pull_request opened, signed with another secret, starts no pull-request run
    forged = signer.example("whsec_forged", "pull_request", "opened")
    pr_hook.deliver(forged, event="pull_request", delivery=new_delivery()).error(401, "bad_signature")
    tampered = signer.example(pr_hook.secret, "pull_request", "opened")
    body = tampered.body.replace(b'"login":"Codertocat"', b'"login":"Mallory"', 1)
    assert body != tampered.body
    reply = pr_hook.deliver(body=body, signature=tampered.signature, event="pull_request", delivery=new_delivery())
    reply.error(401, "bad_signature")
    assert pr_hook.executions() == []


def test_unknown_or_deleted_webhook_is_404(api: Api, greet_hook: Hook, signer: Signer) -> None:
    signed = signer.payload(greet_hook.secret, {"name": "Ada"})
    base = greet_hook.url.rsplit("/", 1)[0]
    for webhook_id in (uuid.uuid4().hex, "x" * 65, "not.an.id"):
        reply = greet_hook.deliver(signed, delivery=new_delivery(), url=f"{base}/{webhook_id}")
        reply.error(404, "not_found")
    deleted = make_hook(api, "greet_on_webhook")
    reply = api.call("DELETE", f"/graphs/{deleted.graph_id}/webhooks/{deleted.webhook_id}")
    assert reply.status == 200 and reply.body == {"webhook_id": deleted.webhook_id, "deleted": True}, reply.text
    deleted.deliver(signer.payload(deleted.secret, {"name": "Ada"}), delivery=new_delivery()).error(404, "not_found")
    assert deleted.executions() == [] and greet_hook.executions() == []


def test_signed_bodies_that_are_not_json_objects_are_400(greet_hook: Hook, pr_hook: Hook, signer: Signer) -> None:
    for text in ('{"name": "Ada"', "not json", "[1, 2, 3]", '"a string"', "null"):
        signed = signer.text(greet_hook.secret, text)
        assert signed.body == text.encode()
        greet_hook.deliver(signed, delivery=new_delivery()).error(400, "invalid_request")
        signed = signer.text(pr_hook.secret, text)
        pr_hook.deliver(signed, event="pull_request", delivery=new_delivery()).error(400, "invalid_request")
    assert greet_hook.executions() == [] and pr_hook.executions() == []


def test_a_body_that_is_not_utf8_is_refused_cleanly(greet_hook: Hook) -> None:
    """Bytes that are not UTF-8 are checked like any others: 401 unsigned, 400 signed (not JSON), never a crash.
    (octokit's sign takes strings only, so Python's hmac signs these bytes.)"""
    raw = b'{"name": "\xff"}'
    signature = "sha256=" + hmac.new(greet_hook.secret.encode(), raw, hashlib.sha256).hexdigest()
    wrong = greet_hook.deliver(body=raw, signature="sha256=" + "0" * 64, delivery=new_delivery())
    signed = greet_hook.deliver(body=raw, signature=signature, delivery=new_delivery())
    assert (wrong.status, signed.status) == (401, 400), (wrong.text, signed.text)
    wrong.error(401, "bad_signature")
    signed.error(400, "invalid_request")
    assert greet_hook.executions() == []


def padded(signer: Signer, secret: str, size: int) -> Signed:
    """A signed JSON object of exactly SIZE bytes: {"name":"Big","pad":"xxx..."}."""
    overhead = len('{"name":"Big","pad":""}')
    signed = signer.payload(secret, {"name": "Big", "pad": "x" * (size - overhead)})
    assert len(signed.body) == size
    return signed


def test_body_over_the_limit_is_413_even_when_signed(greet_hook: Hook, signer: Signer) -> None:
    assert MAX_WEBHOOK_BODY_BYTES <= SPEC_MAX_BODY
    if MAX_WEBHOOK_BODY_BYTES < SPEC_MAX_BODY:
        just_over = padded(signer, greet_hook.secret, MAX_WEBHOOK_BODY_BYTES + 1)
        greet_hook.deliver(just_over, delivery=new_delivery()).error(413, "payload_too_large")
    over = padded(signer, greet_hook.secret, SPEC_MAX_BODY + 1)
    greet_hook.deliver(over, delivery=new_delivery()).error(413, "payload_too_large")
    greet_hook.deliver(over, delivery=new_delivery(), signature="sha256=00").error(413, "payload_too_large")
    # the size is checked first: even for a webhook that does not exist
    base = greet_hook.url.rsplit("/", 1)[0]
    greet_hook.deliver(over, url=f"{base}/{uuid.uuid4().hex}").error(413, "payload_too_large")
    assert greet_hook.executions() == []


def test_body_at_the_limit_starts_and_completes(greet_hook: Hook, signer: Signer) -> None:
    """Whatever the ingress accepts (up to its own limit), the engine must be able to carry: a signed JSON body
    of exactly MAX_WEBHOOK_BODY_BYTES starts the graph, and the run completes."""
    at = padded(signer, greet_hook.secret, MAX_WEBHOOK_BODY_BYTES)
    reply = greet_hook.deliver(at, delivery=new_delivery())
    assert reply.status == 202, f"a signed {len(at.body)}-byte body (the limit) got {reply.status}: {reply.text}"
    execution_id = started(reply, greet_hook)
    report = greet_hook.api.wait_done(execution_id)
    assert report["status"] == "COMPLETED", f"a {len(at.body)}-byte payload was accepted, then: {report['error']}"
    assert report["outputs"] == {"greeting": ["Hello, Big!"]}, report


# -- redeliveries


def test_same_delivery_three_times_creates_one_execution(pr_hook: Hook, greet_hook: Hook, signer: Signer) -> None:
    opened = signer.example(pr_hook.secret, "pull_request", "opened")
    delivery = new_delivery()
    replies = [pr_hook.deliver(opened, event="pull_request", delivery=delivery) for _ in range(3)]
    ids = [started(reply, pr_hook, created=i == 0) for i, reply in enumerate(replies)]
    assert [r.body["created"] for r in replies] == [True, False, False]
    assert len(set(ids)) == 1
    assert pr_hook.executions() == ids[:1]
    report = pr_hook.api.wait_done(ids[0])
    assert report["outputs"]["announcement"] == [
        "#2 opened by Codertocat: https://github.com/Codertocat/Hello-World/pull/2"
    ]
    # after it finished, the same delivery still answers the same execution
    assert started(pr_hook.deliver(opened, event="pull_request", delivery=delivery), pr_hook, created=False) == ids[0]
    # lower-case header names (as HTTP/2 proxies forward them) are the same delivery
    lower = {"x-hub-signature-256": opened.signature, "x-github-event": "pull_request", "x-github-delivery": delivery}
    assert started(pr_hook.deliver(body=opened.body, headers=lower), pr_hook, created=False) == ids[0]
    # a delivery id over 200 characters is refused, and creates nothing
    too_long = pr_hook.deliver(opened, event="pull_request", delivery="d" * 201)
    too_long.error(400, "invalid_request")
    assert pr_hook.executions() == ids[:1]
    # a new delivery id is a new delivery (GitHub's "redeliver" keeps the id; a new event gets a new one)
    other = started(pr_hook.deliver(opened, event="pull_request", delivery=new_delivery()), pr_hook)
    assert other != ids[0] and sorted(pr_hook.executions()) == sorted([ids[0], other])

    # the generic trigger with X-Webhook-Delivery
    signed = signer.payload(greet_hook.secret, {"name": "Ada"})
    headers = {"X-Webhook-Delivery": new_delivery()}
    replies = [greet_hook.deliver(signed, headers=headers) for _ in range(3)]
    assert [r.body["created"] for r in replies] == [True, False, False], [r.text for r in replies]
    assert len({r.body["execution_id"] for r in replies}) == 1
    assert greet_hook.executions() == [replies[0].body["execution_id"]]


def test_concurrent_redeliveries_create_one_execution(greet_hook: Hook, signer: Signer) -> None:
    signed = signer.payload(greet_hook.secret, {"name": "Ada"})
    delivery = new_delivery()
    replies: list[Reply] = []
    lock = threading.Lock()
    gate = threading.Barrier(3)

    def send() -> None:
        gate.wait(timeout=10)
        reply = greet_hook.deliver(signed, delivery=delivery)
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(replies) == 3 and all(r.status == 202 for r in replies), [r.text for r in replies]
    assert sorted(r.body["created"] for r in replies) == [False, False, True], [r.text for r in replies]
    assert len({r.body["execution_id"] for r in replies}) == 1
    assert greet_hook.executions() == [replies[0].body["execution_id"]]


# -- management: secrets and rotation


def all_keys(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from all_keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from all_keys(inner)


def test_listing_webhooks_never_shows_secrets(api: Api, pr_hook: Hook) -> None:
    second = api.create_webhook(pr_hook.graph_id)
    rotated = api.call("POST", f"/graphs/{pr_hook.graph_id}/webhooks/{second['webhook_id']}/rotate")
    assert rotated.status == 200, rotated.text
    secrets = {pr_hook.secret, second["secret"], rotated.body["secret"]}
    reply = api.call("GET", f"/graphs/{pr_hook.graph_id}/webhooks")
    assert reply.status == 200, reply.text
    assert {w["webhook_id"] for w in reply.body["webhooks"]} == {pr_hook.webhook_id, second["webhook_id"]}
    for webhook in reply.body["webhooks"]:
        assert webhook["provider"] == "github" and webhook["node_id"] == "pr", webhook
        assert webhook["url"] == f"{api.base_url}/webhooks/{webhook['webhook_id']}", webhook
    assert not any("secret" in key.lower() for key in all_keys(reply.body)), reply.body
    for secret in secrets:
        assert secret not in reply.text
        assert secret.removeprefix("whsec_") not in reply.text


def test_rotation_retires_the_old_secret_at_once(api: Api, greet_hook: Hook, signer: Signer) -> None:
    before = signer.payload(greet_hook.secret, {"name": "Ada"})
    first = started(greet_hook.deliver(before, delivery=new_delivery()), greet_hook)
    reply = api.call("POST", f"/graphs/{greet_hook.graph_id}/webhooks/{greet_hook.webhook_id}/rotate")
    assert reply.status == 200, reply.text
    rotated = reply.body
    assert rotated["webhook_id"] == greet_hook.webhook_id and rotated["url"] == greet_hook.url, rotated
    assert rotated["secret"] != greet_hook.secret and rotated["secret"].startswith("whsec_"), rotated
    assert rotated["provider"] == "generic" and rotated["node_id"] == "hook", rotated

    # the old secret: refused (a fresh delivery id, so no earlier answer can be replayed)
    greet_hook.deliver(before, delivery=new_delivery()).error(401, "bad_signature")
    assert greet_hook.executions() == [first]
    # the new one works
    after = signer.payload(rotated["secret"], {"name": "Grace"})
    second = started(greet_hook.deliver(after, delivery=new_delivery()), greet_hook)
    report = api.wait_done(second)
    assert report["status"] == "COMPLETED" and report["outputs"] == {"greeting": ["Hello, Grace!"]}, report
    assert sorted(greet_hook.executions()) == sorted([first, second])
    # rotating a webhook that does not exist is a 404
    missing = api.call("POST", f"/graphs/{greet_hook.graph_id}/webhooks/{uuid.uuid4().hex}/rotate")
    assert missing.status == 404, missing.text


def test_pull_requests_of_another_repository_start_nothing(api: Api, signer: Signer) -> None:
    hook = make_hook(api, "github_pr_opened", with_repo("github_pr_opened", "someone-else/other-repo"))
    opened = signer.example(hook.secret, "pull_request", "opened")
    reply = hook.deliver(opened, event="pull_request", delivery=str(uuid.uuid4()))
    assert reply.status == 202 and reply.body["started"] is False, reply.text
    assert "Codertocat/Hello-World" in reply.body["reason"]
    assert hook.executions() == []
