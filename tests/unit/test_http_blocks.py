"""SendWebRequestBlock and SendAuthenticatedWebRequestBlock against real servers on 127.0.0.1: output pins per
status, bodies, files, this project's retry rule, the SSRF guard seen from a graph, and host-scoped credentials.

Pin-level behaviour runs through `execute_block`; a RetryableError is checked on the block's own `run()`, which
raises it for the engine. No test reaches beyond 127.0.0.0/8 (the socket guard is autouse) or a real DNS server."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from werkzeug.serving import WSGIRequestHandler

from agentflow.blocks.execution import BlockRun, build_input, execute_block
from agentflow.blocks.http import SendAuthenticatedWebRequestBlock, SendWebRequestBlock
from agentflow.blocks.registry import get_block
from agentflow.blocks.sdk import Block, BlockCategory, BlockContext
from agentflow.credentials.models import APIKeyCredentials, HostScopedCredentials, credential_fields
from agentflow.errors import RetryableError
from agentflow.net.client import USER_AGENT
from agentflow.net.policy import HttpPolicy
from tests.support.network import (
    SocketGuard,
    guard_sockets,
    held_until,
    local_http_server,
    recorder,
    settle,
    static_resolver,
)

LOCAL = frozenset({"127.0.0.1", "localhost"})
SECRET = "s3cr3t-t0ken"
CREDENTIALS_INPUT = {"id": "cred-1", "provider": "http", "type": "host_scoped"}
DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.fixture(autouse=True)
def sockets() -> Iterator[SocketGuard]:
    with guard_sockets() as guard:
        yield guard
    assert not guard.violations, guard.violations


@pytest.fixture(scope="module")
def _module_server() -> Iterator[HTTPServer]:
    with local_http_server() as server:
        yield server


@pytest.fixture
def server(_module_server: HTTPServer) -> Iterator[HTTPServer]:
    _module_server.clear()
    yield _module_server
    settle(_module_server)
    _module_server.clear()


def context(attempt: int = 1, max_attempts: int = 3, credentials: Any = None, **policy: Any) -> BlockContext:
    values: dict[str, Any] = {"allow_hosts": LOCAL, "resolve": static_resolver({"localhost": ["127.0.0.1"]})}
    return BlockContext(
        attempt=attempt,
        max_attempts=max_attempts,
        credentials={} if credentials is None else {"credentials": credentials},
        http=HttpPolicy(**{**values, **policy}),
    )


def url(server: HTTPServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def execute(data: dict[str, Any], ctx: BlockContext, block: type[Block] = SendWebRequestBlock) -> BlockRun:
    return execute_block(block, data, ctx)


def run_directly(data: dict[str, Any], ctx: BlockContext, block: type[Block] = SendWebRequestBlock) -> list[Any]:
    return list(block().run(build_input(block, data), ctx))


def recording(server: HTTPServer, path: str, answer: Response | None = None) -> list[Request]:
    seen: list[Request] = []
    server.expect_request(path).respond_with_handler(recorder(seen, answer))
    return seen


# -- the blocks as registered --------------------------------------------------------------------------------


def test_registered_with_autogpts_ids_pins_and_defaults() -> None:
    plain, auth = get_block("SendWebRequestBlock"), get_block("fff86bcd-e001-4bad-a7f6-2eae4720c8dc")
    assert plain is SendWebRequestBlock and plain.id == "6595ae1f-b924-42cb-9a41-551a0611c4b4"
    assert auth is SendAuthenticatedWebRequestBlock
    pins = ["url", "method", "headers", "json_format", "body", "files_name", "files"]
    assert list(plain.Input.model_fields) == pins
    assert list(auth.Input.model_fields) == [*pins, "credentials"]
    outputs = ["error", "response", "client_error", "server_error"]
    assert list(plain.Output.model_fields) == outputs == list(auth.Output.model_fields)
    assert plain.required_inputs() == {"url"} and auth.required_inputs() == {"url", "credentials"}
    defaults = {name: f.get_default(call_default_factory=True) for name, f in plain.Input.model_fields.items()}
    assert plain.Input.model_fields["url"].is_required()
    del defaults["url"]
    assert defaults == {
        "method": "POST",
        "headers": {},
        "json_format": True,
        "body": None,
        "files_name": "file",
        "files": [],
    }
    for block in (plain, auth):
        assert set(block.categories) == {BlockCategory.OUTPUT}
    schema = auth.input_schema()["properties"]
    assert schema["method"]["$ref"].endswith("HttpMethod") or "enum" in str(schema["method"])
    spec = credential_fields(auth)["credentials"]
    assert spec.providers == {"http"} and spec.types == {"host_scoped"} and spec.required
    assert schema["credentials"]["discriminator"] == "url"


# -- status classes and pins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "answer", "content_type", "pin", "value"),
    [
        (200, '{"ok": true, "n": [1, 2]}', "application/json", "response", {"ok": True, "n": [1, 2]}),
        (201, "created", "text/plain", "response", "created"),
        (204, "", "application/json", "response", None),
        (404, '{"detail": "no such thing"}', "application/json", "client_error", {"detail": "no such thing"}),
        (418, "teapot", "text/plain", "client_error", "teapot"),
        (500, "boom", "text/html", "server_error", "boom"),
        (501, '{"e": 1}', "application/json; charset=utf-8", "server_error", {"e": 1}),
        (304, "", "text/plain", "server_error", ""),  # a 3xx without Location
        (302, "nowhere", "text/plain", "server_error", "nowhere"),
    ],
)
def test_each_status_class_yields_its_pin(
    server: HTTPServer, status: int, answer: str, content_type: str, pin: str, value: Any
) -> None:
    server.expect_request("/s").respond_with_data(answer, status=status, content_type=content_type)
    result = execute({"url": url(server, "/s"), "method": "GET"}, context())
    assert result == BlockRun(outputs=[(pin, value)], error=None)


def test_invalid_json_fails_the_node(server: HTTPServer) -> None:
    server.expect_request("/bad").respond_with_data("{oops", content_type="application/json")
    result = execute({"url": url(server, "/bad")}, context())
    assert result.error is not None and "is not valid JSON" in result.error
    assert result.outputs == [("error", result.error)]


def test_json_body_by_default_and_form_body_when_json_format_is_off(server: HTTPServer) -> None:
    seen = recording(server, "/b")
    body = {"name": "Ann", "n": 2, "ok": True, "tags": ["a", "b"]}
    assert execute({"url": url(server, "/b"), "body": body}, context()).outputs == [("response", "ok")]
    assert execute({"url": url(server, "/b"), "body": body, "json_format": False}, context()).ok
    as_json, as_form = seen
    assert as_json.method == "POST"  # the default method
    assert as_json.headers["Content-Type"] == "application/json"
    assert as_json.get_json() == body
    assert as_form.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert as_form.form.to_dict(flat=False) == {"name": ["Ann"], "n": ["2"], "ok": ["true"], "tags": ["a", "b"]}
    assert as_json.headers["User-Agent"] == USER_AGENT


def test_a_json_string_body_is_parsed_and_headers_pass_through(server: HTTPServer) -> None:
    seen = recording(server, "/j")
    data = {"url": url(server, "/j"), "method": "PATCH", "body": '{"a": 1}', "headers": {"User-Agent": "me/2"}}
    assert execute(data, context()).ok
    assert seen[0].method == "PATCH" and seen[0].get_json() == {"a": 1}
    assert seen[0].headers["User-Agent"] == "me/2"


def test_head_with_a_json_content_type_gives_none(server: HTTPServer) -> None:
    server.expect_request("/h", method="HEAD").respond_with_data("", content_type="application/json")
    assert execute({"url": url(server, "/h"), "method": "HEAD"}, context()).outputs == [("response", None)]


# -- the retry rule ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_transient_statuses_are_retryable_before_the_last_attempt(server: HTTPServer, status: int) -> None:
    server.expect_request("/t").respond_with_data("busy", status=status, headers={"Retry-After": "7"})
    with pytest.raises(RetryableError) as info:
        run_directly({"url": url(server, "/t")}, context(attempt=1, max_attempts=3))
    assert info.value.retry_after == 7.0
    assert f"answered {status}" in str(info.value)
    assert len(server.log) == 1  # one request per attempt: the engine retries, not the block


def test_the_engine_sees_a_transient_status_as_retryable_and_others_as_failures_or_pins(server: HTTPServer) -> None:
    server.expect_request("/busy").respond_with_data("busy", status=503, headers={"Retry-After": "7"})
    server.expect_request("/gone").respond_with_data("gone", status=404)
    busy = execute({"url": url(server, "/busy")}, context(attempt=1, max_attempts=3))
    assert busy.retryable and busy.retry_after == 7.0
    assert busy.error is not None and "answered 503" in busy.error
    gone = execute({"url": url(server, "/gone")}, context(attempt=1, max_attempts=3))
    assert gone == BlockRun(outputs=[("client_error", "gone")], error=None) and not gone.retryable
    refused = execute({"url": "http://10.0.0.1/"}, context())
    assert refused.error is not None and not refused.retryable


def test_retry_after_as_an_http_date_is_measured_against_the_response_date(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The server's clock is the test's: its Date header is fixed, and this machine's clock is never read.
    monkeypatch.setattr(WSGIRequestHandler, "date_time_string", lambda self, timestamp=None: DATE)
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}
    server.expect_request("/t").respond_with_data("slow down", status=429, headers=headers)
    with pytest.raises(RetryableError) as info:
        run_directly({"url": url(server, "/t")}, context(attempt=2, max_attempts=3))
    assert info.value.retry_after == 30.0


def test_a_transient_status_without_retry_after_has_no_hint(server: HTTPServer) -> None:
    server.expect_request("/t").respond_with_data("down", status=503)
    with pytest.raises(RetryableError) as info:
        run_directly({"url": url(server, "/t")}, context())
    assert info.value.retry_after is None


@pytest.mark.parametrize(("status", "pin"), [(503, "server_error"), (502, "server_error"), (429, "client_error")])
def test_on_the_last_attempt_a_transient_status_yields_like_autogpt(server: HTTPServer, status: int, pin: str) -> None:
    server.expect_request("/t").respond_with_json({"status": status}, status=status, headers={"Retry-After": "7"})
    result = execute({"url": url(server, "/t")}, context(attempt=3, max_attempts=3))
    assert result == BlockRun(outputs=[(pin, {"status": status})], error=None)
    assert run_directly({"url": url(server, "/t")}, context(attempt=1, max_attempts=1)) == [(pin, {"status": status})]


@pytest.mark.parametrize(("status", "pin"), [(404, "client_error"), (408, "client_error"), (500, "server_error")])
def test_other_statuses_are_never_retried(server: HTTPServer, status: int, pin: str) -> None:
    server.expect_request("/n").respond_with_data("no", status=status, headers={"Retry-After": "1"})
    assert run_directly({"url": url(server, "/n")}, context(attempt=1, max_attempts=5)) == [(pin, "no")]


def test_a_timeout_is_retryable_even_on_the_last_attempt(server: HTTPServer) -> None:
    release = threading.Event()
    server.expect_request("/slow").respond_with_handler(held_until(release))
    try:
        for attempt in (1, 3):
            with pytest.raises(RetryableError, match=r"timed out after 0\.2 s"):
                run_directly({"url": url(server, "/slow")}, context(attempt, 3, read_timeout=0.2))
        # The engine, not the block, fails the node once the attempts are spent.
        result = execute({"url": url(server, "/slow")}, context(3, 3, read_timeout=0.2))
        assert result.retryable and result.error is not None and "timed out after 0.2 s" in result.error
    finally:
        release.set()


# -- the guard, seen from a graph --------------------------------------------------------------------------------


def test_the_default_policy_refuses_loopback_and_nothing_is_sent(server: HTTPServer, sockets: SocketGuard) -> None:
    server.expect_request("/").respond_with_data("should not be reached")
    result = execute({"url": url(server, "/"), "method": "GET"}, BlockContext())
    assert result.error is not None
    assert result.error.startswith(f"refused http://127.0.0.1:{server.port}: 127.0.0.1 is a loopback address")
    assert "AGENTFLOW_HTTP_ALLOW_HOSTS" in result.error
    # requests an earlier test held open may still land in the shared server's log: look at this path only
    assert [request for request, _ in server.log if request.path == "/"] == [] and sockets.attempts == []
    assert execute({"url": url(server, "/"), "method": "GET"}, context()).outputs == [
        ("response", "should not be reached")
    ]


def test_a_name_resolving_to_a_private_address_is_refused(sockets: SocketGuard) -> None:
    ctx = context(resolve=static_resolver({"evil.test": ["10.0.0.1"]}))
    result = execute({"url": "http://evil.test/steal", "body": {"x": 1}}, ctx)
    assert result.error is not None and "evil.test resolves to 10.0.0.1, a private address" in result.error
    assert sockets.attempts == []


@pytest.mark.parametrize("host", ["[::1]", "[fe80::1]", "[::ffff:10.0.0.1]", "[fc00::1]", "169.254.169.254"])
def test_blocked_literals_fail_the_node(host: str, sockets: SocketGuard) -> None:
    result = execute({"url": f"http://{host}/latest/meta-data", "method": "GET"}, context())
    assert result.error is not None and f"{host.strip('[]')} is " in result.error
    assert sockets.attempts == []


def test_a_redirect_to_the_metadata_address_fails_the_node_before_connecting(
    server: HTTPServer, sockets: SocketGuard
) -> None:
    location = "http://169.254.169.254/latest/meta-data"
    server.expect_request("/r").respond_with_data("", status=302, headers={"Location": location})
    result = execute({"url": url(server, "/r"), "method": "GET"}, context())
    assert result.error is not None and "169.254.169.254 is the cloud metadata address" in result.error
    assert not sockets.connected_to("169.254.")


def test_too_many_redirects_fails_the_node(server: HTTPServer) -> None:
    server.expect_request("/loop").respond_with_data("", status=307, headers={"Location": "/loop"})
    result = execute({"url": url(server, "/loop")}, context(max_redirects=2))
    assert result.error is not None and "too many redirects" in result.error


# -- files ---------------------------------------------------------------------------------------------------------


def test_a_data_uri_file_is_sent_as_multipart_with_the_body_as_form_fields(server: HTTPServer) -> None:
    seen = recording(server, "/upload")
    data_uri = "data:text/plain;base64," + base64.b64encode(b"hello file").decode()
    data = {
        "url": url(server, "/upload"),
        "json_format": False,
        "files_name": "attachment",
        "files": [data_uri, "data:,plain%20text"],
        "body": {"title": "T"},
    }
    assert execute(data, context()).outputs == [("response", "ok")]
    (request,) = seen
    assert request.headers["Content-Type"].startswith("multipart/form-data; boundary=")
    assert request.form.to_dict() == {"title": "T"}
    uploads = request.files.getlist("attachment")
    assert [f.read() for f in uploads] == [b"hello file", b"plain text"]
    assert uploads[0].filename == hashlib.sha256(b"hello file").hexdigest()[:16] + ".txt"
    assert uploads[0].mimetype == "text/plain"


def test_a_url_file_is_fetched_through_the_guard(server: HTTPServer) -> None:
    server.expect_request("/files/report.csv").respond_with_data("a,b\n1,2\n", content_type="text/csv")
    seen = recording(server, "/upload")
    data = {"url": url(server, "/upload"), "json_format": False, "files": [url(server, "/files/report.csv")]}
    assert execute(data, context()).ok
    upload = seen[0].files["file"]
    assert (upload.filename, upload.mimetype, upload.read()) == ("report.csv", "text/csv", b"a,b\n1,2\n")


def test_a_url_file_at_a_private_address_is_refused(server: HTTPServer) -> None:
    seen = recording(server, "/upload")
    data = {"url": url(server, "/upload"), "json_format": False, "files": ["http://10.0.0.1/secret.txt"]}
    result = execute(data, context())
    assert result.error is not None and "10.0.0.1 is a private address" in result.error
    assert seen == []


@pytest.mark.parametrize(
    ("files", "json_format", "message"),
    [
        (["data:text/plain;base64,aGk="], True, "json_format=True cannot be combined with file uploads"),
        (["/etc/passwd"], False, "'/etc/passwd' is neither a data: URI nor an http(s) URL"),
        (["data:text/plain;base64,!!!"], False, "invalid base64"),
        (["data:text/plain"], False, "needs a ','"),
    ],
)
def test_unsupported_files_fail_before_sending(
    server: HTTPServer, files: list[str], json_format: bool, message: str
) -> None:
    seen = recording(server, "/upload")
    result = execute({"url": url(server, "/upload"), "files": files, "json_format": json_format}, context())
    assert result.error is not None and message in result.error
    assert seen == []


# -- host-scoped credentials ---------------------------------------------------------------------------------


def credentials(host: str, **headers: str) -> HostScopedCredentials:
    values = headers or {"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET}
    return HostScopedCredentials(
        id="cred-1", provider="http", host=host, headers={k: SecretStr(v) for k, v in values.items()}
    )


def authenticated(data: dict[str, Any], ctx: BlockContext) -> BlockRun:
    return execute({**data, "credentials": CREDENTIALS_INPUT}, ctx, SendAuthenticatedWebRequestBlock)


def test_credentials_are_injected_for_the_matching_host(server: HTTPServer) -> None:
    seen = recording(server, "/api")
    result = authenticated({"url": url(server, "/api"), "method": "GET"}, context(credentials=credentials("127.0.0.1")))
    assert result.outputs == [("response", "ok")]
    assert seen[0].headers["Authorization"] == f"Bearer {SECRET}"
    assert seen[0].headers["X-Api-Key"] == SECRET


def test_a_wildcard_rule_matches_the_domain_and_its_subdomains(server: HTTPServer) -> None:
    seen = recording(server, "/api")
    names = {"svc.test": ["127.0.0.1"], "api.svc.test": ["127.0.0.1"], "svc.test.evil": ["127.0.0.1"]}
    ctx = context(
        credentials=credentials("*.svc.test"),
        allow_hosts=frozenset(names),
        resolve=static_resolver(names),
    )
    for host in names:
        assert authenticated({"url": f"http://{host}:{server.port}/api", "method": "GET"}, ctx).ok
    assert [r.headers.get("X-Api-Key") for r in seen] == [SECRET, SECRET, None]


def test_user_headers_win_over_credential_headers(server: HTTPServer) -> None:
    seen = recording(server, "/api")
    data = {"url": url(server, "/api"), "headers": {"authorization": "Bearer mine"}}
    assert authenticated(data, context(credentials=credentials("127.0.0.1"))).ok
    assert seen[0].headers.getlist("Authorization") == ["Bearer mine"]
    assert seen[0].headers["X-Api-Key"] == SECRET


@pytest.mark.parametrize("rule", ["localhost", "*.example.com", "127.0.0.1:1234", "http://127.0.0.1"])
def test_no_credential_header_when_the_host_does_not_match(server: HTTPServer, rule: str) -> None:
    seen = recording(server, "/api")
    assert authenticated({"url": url(server, "/api")}, context(credentials=credentials(rule))).ok
    assert "Authorization" not in seen[0].headers and "X-Api-Key" not in seen[0].headers


def test_the_host_matched_is_the_host_connected_to(server: HTTPServer) -> None:
    # urlsplit reads 127.0.0.1 as this URL's host, but `\` becomes `/`: the request goes to evil.test.
    seen = recording(server, "/@127.0.0.1")
    ctx = context(
        credentials=credentials("127.0.0.1"),
        allow_hosts=frozenset({"evil.test"}),
        resolve=static_resolver({"evil.test": ["127.0.0.1"]}),
    )
    result = authenticated({"url": f"http://evil.test:{server.port}\\@127.0.0.1", "method": "GET"}, ctx)
    assert result.ok, result.error
    assert seen[0].headers["Host"] == f"evil.test:{server.port}"
    assert "Authorization" not in seen[0].headers


def test_without_resolved_credentials_the_request_goes_out_bare(server: HTTPServer) -> None:
    seen = recording(server, "/api")
    assert authenticated({"url": url(server, "/api")}, context()).ok
    assert "Authorization" not in seen[0].headers


def test_credentials_of_another_type_fail_the_node(server: HTTPServer) -> None:
    wrong = APIKeyCredentials(id="k", provider="http", api_key=SecretStr(SECRET))
    result = authenticated({"url": url(server, "/api")}, context(credentials=wrong))
    assert result.error is not None and "host-scoped" in result.error and SECRET not in result.error
    assert server.log == []


def test_the_secret_never_appears_in_outputs_or_errors(server: HTTPServer) -> None:
    creds = credentials("127.0.0.1")
    release = threading.Event()
    server.expect_request("/err").respond_with_data("denied", status=401)
    server.expect_request("/slow").respond_with_handler(held_until(release))
    server.expect_request("/go").respond_with_data("", status=302, headers={"Location": "http://10.0.0.1/x"})
    try:
        runs = [
            authenticated({"url": url(server, "/err")}, context(credentials=creds)),
            authenticated({"url": url(server, "/slow")}, context(credentials=creds, read_timeout=0.2)),
            authenticated({"url": url(server, "/go")}, context(credentials=creds)),
            authenticated(
                {"url": url(server, "/err"), "headers": {"X-Key": f"{SECRET}\n"}}, context(credentials=creds)
            ),
            authenticated({"url": f"http://user:{SECRET}@10.0.0.1/?k={SECRET}"}, context(credentials=creds)),
        ]
    finally:
        release.set()
    assert runs[0].outputs == [("client_error", "denied")]
    assert all(run.error for run in runs[1:]), runs
    for run in runs:
        assert SECRET not in repr(run.outputs) and SECRET not in (run.error or "")


def test_a_redirect_to_another_host_drops_every_credential_header(server: HTTPServer) -> None:
    seen: list[Request] = []
    answers = {
        "/start": Response("", status=302, headers={"Location": "/same"}),
        "/same": Response("", status=307, headers={"Location": f"http://localhost:{server.port}/x"}),
        "/x": Response("arrived"),
    }
    for path, answer in answers.items():
        server.expect_request(path).respond_with_handler(recorder(seen, answer))
    data = {"url": url(server, "/start"), "headers": {"X-Trace": "t"}}
    result = authenticated(data, context(credentials=credentials("127.0.0.1")))
    assert result.outputs == [("response", "arrived")]
    start, same_origin, elsewhere = seen
    assert start.headers["X-Api-Key"] == same_origin.headers["X-Api-Key"] == SECRET  # same origin: kept
    assert "X-Api-Key" not in elsewhere.headers and "Authorization" not in elsewhere.headers
    assert elsewhere.headers["X-Trace"] == "t"  # the user's own headers go on
