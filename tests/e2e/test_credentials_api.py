"""Users' credentials over real HTTP (one `agentflow serve`) and through `agentflow credentials`: a secret goes in
once and never comes back out (not in an answer, not on the CLI's output), bad input answers 400 naming the field,
and another user's credential answers 404 exactly like one that does not exist."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ApiServer
from tests.e2e.test_api_flow import api_routes, new_user
from tests.support.http import Api

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "sk-e2e-secret-4f8a1c"
PASSWORD = "e2e-password-91b2"
TOKEN = "Bearer e2e-token-77d3"
SECRETS = (API_KEY, PASSWORD, TOKEN, "e2e-token-77d3")
METADATA = {"id", "provider", "type", "title", "host", "base_url", "created_at"}
OLLAMA_URL = "http://127.0.0.1:11434/v1"

BODIES: dict[str, dict[str, Any]] = {
    "api_key": {"provider": "openai", "title": "my OpenAI key", "api_key": API_KEY},
    "user_password": {"provider": "jira", "type": "user_password", "username": "alice", "password": PASSWORD},
    "host_scoped": {
        "provider": "http",
        "type": "host_scoped",
        "title": "example API",
        "host": "API.Example.com",
        "headers": {"Authorization": TOKEN},
    },
}


ROUTES = {("POST", "/credentials"), ("GET", "/credentials"), ("GET", "/credentials/{credential_id}")}
ROUTES |= {("DELETE", "/credentials/{credential_id}")}


@pytest.fixture(scope="module", autouse=True)
def _routed() -> None:
    """The local API Gateway serves what template.yaml routes: say so plainly when the routes are missing."""
    missing = ROUTES - set(api_routes())
    assert not missing, f"template.yaml gives ApiFunction no route for {sorted(missing)}: add its Api events"


@pytest.fixture
def alice(api_server: ApiServer) -> Api:
    return new_user(api_server, "cred-alice")


@pytest.fixture
def bob(api_server: ApiServer) -> Api:
    return new_user(api_server, "cred-bob")


def no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret was answered: {text[:300]}"


def create(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    reply = api.post("/credentials", body)
    assert reply.status == 201, reply.text
    no_secret(reply.text)
    created: dict[str, Any] = reply.body
    return created


@pytest.mark.parametrize("kind", list(BODIES))
def test_create_read_list_delete_each_type(alice: Api, kind: str) -> None:
    body = BODIES[kind]
    created = create(alice, body)
    assert set(created) == METADATA
    assert (created["provider"], created["type"]) == (body["provider"], kind)
    assert created["title"] == body.get("title")
    assert created["host"] == ("api.example.com" if kind == "host_scoped" else None)
    assert created["base_url"] is None
    assert created["created_at"]
    uuid.UUID(created["id"], version=4)

    shown = alice.get(f"/credentials/{created['id']}")
    assert shown.status == 200 and shown.body == created
    listed = alice.get("/credentials")
    assert listed.status == 200 and listed.body == {"credentials": [created]}
    no_secret(shown.text + listed.text)

    deleted = alice.delete(f"/credentials/{created['id']}")
    assert deleted.status == 200 and deleted.body == {"id": created["id"], "deleted": True}
    alice.get(f"/credentials/{created['id']}").error(404, "not_found")
    alice.delete(f"/credentials/{created['id']}").error(404, "not_found")
    assert alice.get("/credentials").body == {"credentials": []}


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**BODIES["api_key"], "provider": "Open AI"}, "body.provider", "lowercase"),
        ({**BODIES["api_key"], "type": "oauth2"}, "body.type", "api_key, user_password, host_scoped"),
        ({"provider": "openai"}, "body.api_key", "required"),
        ({**BODIES["user_password"], "password": None}, "body.password", "required"),
        ({**BODIES["host_scoped"], "host": "https://api.example.com/v1"}, "body.host", "no scheme"),
        ({**BODIES["host_scoped"], "headers": {}}, "body.headers", "non-empty"),
        ({**BODIES["host_scoped"], "headers": {"Bad Name": TOKEN}}, "body.headers.Bad Name", "header name"),
        ({**BODIES["api_key"], "username": "alice"}, "body.username", "not a field of api_key"),
        ({**BODIES["host_scoped"], "base_url": OLLAMA_URL}, "body.base_url", "not a field of host_scoped"),
        ({**BODIES["api_key"], "base_url": "ftp://x"}, "body.base_url", "http or https"),
        ({**BODIES["api_key"], "base_url": f"http://u:{PASSWORD}@h/v1"}, "body.base_url", "user info"),
        ({**BODIES["api_key"], "base_url": "http://h/v1?x=1"}, "body.base_url", "query"),
        ({**BODIES["api_key"], "base_url": "http://h/v1#f"}, "body.base_url", "fragment"),
        ({**BODIES["api_key"], "base_url": "v1"}, "body.base_url", "absolute URL"),
    ],
)
def test_invalid_credentials_answer_400_naming_the_field(
    alice: Api, body: dict[str, Any], field: str, words: str
) -> None:
    reply = alice.post("/credentials", body)
    error = reply.error(400, "invalid_request")
    assert words in error["message"], error
    assert field in [d["field"] for d in error["details"]], error
    no_secret(reply.text)
    assert alice.get("/credentials").body == {"credentials": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**BODIES["api_key"], "api_key": 12}, "body.api_key"),
        ({**BODIES["api_key"], "secret": API_KEY}, "body.secret"),
        ({**BODIES["api_key"], "title": "t" * 201}, "body.title"),
        ({"api_key": API_KEY}, "body.provider"),
        ({**BODIES["api_key"], "base_url": "http://h/" + "v" * 2048}, "body.base_url"),
    ],
)
def test_malformed_bodies_answer_400(alice: Api, body: dict[str, Any], field: str) -> None:
    reply = alice.post("/credentials", body)
    error = reply.error(400, "invalid_request")
    assert field in [d["field"] for d in error["details"]], error
    no_secret(reply.text)


def test_an_api_key_keeps_its_base_url(alice: Api) -> None:
    body = {"provider": "openai", "type": "api_key", "api_key": API_KEY, "base_url": OLLAMA_URL + "/"}
    created = create(alice, {**body, "title": "local Ollama"})
    assert set(created) == METADATA
    assert created["base_url"] == OLLAMA_URL  # without the trailing '/'
    assert alice.get(f"/credentials/{created['id']}").body == created
    assert alice.get("/credentials").body == {"credentials": [created]}


def test_another_user_gets_404_like_a_missing_id(alice: Api, bob: Api) -> None:
    theirs = create(alice, BODIES["api_key"])
    missing = str(uuid.uuid4())
    for method in ("GET", "DELETE"):
        answer = bob.request(method, f"/credentials/{theirs['id']}")
        random = bob.request(method, f"/credentials/{missing}")
        answer.error(404, "not_found")
        random.error(404, "not_found")
        assert answer.text.replace(theirs["id"], "<id>") == random.text.replace(missing, "<id>")
    assert bob.get("/credentials").body == {"credentials": []}
    assert alice.get(f"/credentials/{theirs['id']}").body == theirs  # untouched
    assert alice.get("/credentials").body == {"credentials": [theirs]}


def test_unauthenticated_requests_answer_401(alice: Api) -> None:
    anonymous = alice.with_key(None)
    anonymous.get("/credentials").error(401, "unauthorized")
    anonymous.post("/credentials", BODIES["api_key"]).error(401, "unauthorized")


# -- the CLI, beside the running stack (its DynamoDB Local and key file)


def cli(api_server: ApiServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentflow_local.cli", "credentials", *args],
        cwd=ROOT,
        env=api_server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_adds_lists_and_deletes_without_showing_secrets(api_server: ApiServer) -> None:
    user = f"cred-cli-{uuid.uuid4().hex[:10]}"
    added = cli(api_server, "add", "--user", user, "--provider", "openai", "--title", "cli key", stdin=API_KEY + "\n")
    assert added.returncode == 0, added.stderr
    no_secret(added.stdout + added.stderr)
    created = json.loads(added.stdout)
    assert set(created) == METADATA and created["provider"] == "openai" and created["type"] == "api_key"

    scoped = cli(
        api_server,
        "add",
        "--user",
        user,
        "--provider",
        "http",
        "--type",
        "host_scoped",
        "--host",
        "api.example.com",
        stdin=json.dumps({"Authorization": TOKEN}),
    )
    login = cli(
        api_server, "add", "--user", user, "--provider", "jira", "--type", "user_password", stdin=f"alice:{PASSWORD}"
    )
    for done in (scoped, login):
        assert done.returncode == 0, done.stderr
        no_secret(done.stdout + done.stderr)

    local = cli(
        api_server, "add", "--user", user, "--provider", "openai", "--base-url", OLLAMA_URL + "/", stdin="ollama\n"
    )
    assert local.returncode == 0, local.stderr
    own_server = json.loads(local.stdout)
    assert own_server["base_url"] == OLLAMA_URL

    listed = cli(api_server, "list", "--user", user)
    assert listed.returncode == 0, listed.stderr
    no_secret(listed.stdout)
    shown = json.loads(listed.stdout)
    assert shown[0]["id"] == created["id"] and shown[0]["base_url"] is None
    assert len(shown) == 4 and {c["id"]: c for c in shown}[own_server["id"]] == own_server

    key_file = Path(api_server.env["AGENTFLOW_LOCAL_DIR"]) / "credentials.key"  # shared with the stack
    assert key_file.stat().st_mode & 0o777 == 0o600 and len(key_file.read_bytes()) == 32
    api = Api(api_server.url, api_server.create_key(user))  # the API sees what the CLI stored
    assert api.get(f"/credentials/{created['id']}").body == created

    deleted = cli(api_server, "delete", "--user", user, created["id"])
    assert deleted.returncode == 0, deleted.stderr
    api.get(f"/credentials/{created['id']}").error(404, "not_found")
    again = cli(api_server, "delete", "--user", user, created["id"])
    assert again.returncode == 1 and "not found" in again.stderr


def test_the_cli_names_the_field_at_fault(api_server: ApiServer) -> None:
    user = f"cred-cli-{uuid.uuid4().hex[:10]}"
    bad = cli(api_server, "add", "--user", user, "--provider", "http", "--type", "host_scoped", stdin='{"A": "x"}')
    assert bad.returncode == 2 and "host: is required" in bad.stderr, bad.stderr
    empty = cli(api_server, "add", "--user", user, "--provider", "openai", stdin="")
    assert empty.returncode == 2 and "api_key: is required" in empty.stderr, empty.stderr
    scoped = ["--type", "host_scoped", "--host", "x.io", "--base-url", OLLAMA_URL]
    misplaced = cli(api_server, "add", "--user", user, "--provider", "http", *scoped, stdin='{"A": "x"}')
    assert misplaced.returncode == 2 and "base_url: is not a field of host_scoped" in misplaced.stderr
    relative = cli(api_server, "add", "--user", user, "--provider", "openai", "--base-url", "v1", stdin=API_KEY)
    assert relative.returncode == 2 and "base_url: must be an absolute URL" in relative.stderr, relative.stderr
    leaky = cli(api_server, "add", "--user", user, "--provider", "Open AI", stdin=API_KEY)
    assert leaky.returncode == 2 and "provider:" in leaky.stderr
    no_secret(leaky.stdout + leaky.stderr)
    assert json.loads(cli(api_server, "list", "--user", user).stdout) == []
