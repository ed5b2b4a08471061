"""The local API Gateway: real HTTP in, REST API (v1) proxy events to the template's handlers, proxy responses out."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentflow_local.api_gateway import LocalApiGateway
from agentflow_local.template import AppTemplate, TemplateError, load_template

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.13
    Timeout: 30
Resources:
  ItemsFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: items/
      Handler: app.lambda_handler
      MemorySize: 256
      Events:
        ListItems:
          Type: Api
          Properties: {Path: "/items", Method: get}
        CreateItem:
          Type: Api
          Properties: {Path: "/items", Method: post}
        GetItem:
          Type: Api
          Properties: {Path: "/items/{id}", Method: get}
        ItemSub:
          Type: Api
          Properties: {Path: "/items/{id}/sub", Method: any}
        Files:
          Type: Api
          Properties: {Path: "/files/{proxy+}", Method: any}
  SpecialFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: special/
      Handler: app.lambda_handler
      Timeout: 1
      Events:
        Special:
          Type: Api
          Properties: {Path: "/items/special", Method: get}
        Boom:
          Type: Api
          Properties: {Path: "/boom", Method: get}
        Malformed:
          Type: Api
          Properties: {Path: "/malformed", Method: get}
        Binary:
          Type: Api
          Properties: {Path: "/binary", Method: get}
        Slow:
          Type: Api
          Properties: {Path: "/slow", Method: get}
"""

# Echoes the event; the request can ask for a status, a delay, and headers in the answer.
ITEMS_APP = """
import json
import time
import uuid

INSTANCE = str(uuid.uuid4())  # one per imported copy: tells execution environments apart


def lambda_handler(event, context):
    query = event["queryStringParameters"] or {}
    if "mark" in query:  # tells a test that the request reached the handler
        open(query["mark"], "w").close()
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    headers = {"X-Echo": "yes", "X-Instance": INSTANCE}
    if "type" in query:
        headers["Content-Type"] = query["type"]
    return {
        "statusCode": int(query.get("status", 200)),
        "headers": headers,
        "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-Echo": ["yes"]},
        "body": json.dumps({
            "event": event,
            "function": context.function_name,
            "memory": context.memory_limit_in_mb,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "instance": INSTANCE,
        }),
    }
"""

SPECIAL_APP = """
import base64
import json
import time


def lambda_handler(event, context):
    resource = event["resource"]
    if resource == "/boom":
        raise RuntimeError("boom from the handler")
    if resource == "/malformed":
        return {"statusCode": 200, "body": {"not": "a string"}}
    if resource == "/binary":
        return {
            "statusCode": 200,
            "headers": {"Content-Type": "application/octet-stream"},
            "body": base64.b64encode(bytes(range(256))).decode(),
            "isBase64Encoded": True,
        }
    if resource == "/slow":
        time.sleep(float(event["queryStringParameters"]["sleep"]))
    return {"statusCode": 200, "body": json.dumps({"event": event, "function": context.function_name})}
"""

MAX_BODY = 64 * 1024


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTemplate:
    for name, code in (("items", ITEMS_APP), ("special", SPECIAL_APP)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(code)
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    # Dummy credentials and region; nothing may leak to a real AWS endpoint.
    for name in list(os.environ):
        if name.startswith("AWS_ENDPOINT_URL") or name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    return load_template(tmp_path / "template.yaml")


@pytest.fixture
def gateway(app: AppTemplate) -> Iterator[LocalApiGateway]:
    with LocalApiGateway(app, port=0, max_body_bytes=MAX_BODY) as gw:
        yield gw


class Reply:
    def __init__(self, response: http.client.HTTPResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self.body = response.read()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> dict[str, Any]:
        return self.json()["event"]  # type: ignore[no-any-return]


def request(
    gw: LocalApiGateway,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
    connection: http.client.HTTPConnection | None = None,
) -> Reply:
    """One request over real HTTP; `headers` may repeat a name (sent as separate header lines)."""
    conn = connection or http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=10)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers or []:
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        return Reply(conn.getresponse())
    finally:
        if connection is None:
            conn.close()


def test_event_shape_over_http(gateway: LocalApiGateway) -> None:
    before_ms = int(time.time() * 1000)
    reply = request(
        gateway,
        "GET",
        "/items/42?tag=a&tag=b&q=x%20y+z&flag",
        headers=[("X-Custom", "Value"), ("x-multi", "one"), ("x-multi", "two"), ("User-Agent", "test-agent/1.0")],
    )

    assert reply.status == 200
    answer = reply.json()
    event = answer["event"]
    assert set(event) == {
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
        "requestContext",
        "body",
        "isBase64Encoded",
    }
    assert event["resource"] == "/items/{id}"
    assert event["path"] == "/items/42"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"id": "42"}
    # Single-value maps keep the last value; "+" is a space, as API Gateway decodes query strings.
    assert event["queryStringParameters"] == {"tag": "b", "q": "x y z", "flag": ""}
    assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"], "q": ["x y z"], "flag": [""]}
    # Header names as sent; the single-value map keeps the last value.
    assert event["headers"]["X-Custom"] == "Value"
    assert event["headers"]["x-multi"] == "two"
    assert event["multiValueHeaders"]["x-multi"] == ["one", "two"]
    assert event["headers"]["User-Agent"] == "test-agent/1.0"
    assert event["headers"]["Host"] == gateway.url.removeprefix("http://")
    assert event["headers"]["X-Forwarded-For"] == "127.0.0.1"
    assert event["headers"]["X-Forwarded-Proto"] == "http"
    assert event["headers"]["X-Amzn-Trace-Id"].startswith("Root=1-")
    assert event["stageVariables"] is None
    assert event["body"] is None
    assert event["isBase64Encoded"] is False

    ctx = event["requestContext"]
    assert ctx["resourcePath"] == "/items/{id}"
    assert ctx["httpMethod"] == "GET"
    assert ctx["path"] == "/local/items/42"
    assert ctx["stage"] == "local"
    assert re.fullmatch(r"\d{12}", ctx["accountId"])
    assert ctx["apiId"]
    assert str(uuid.UUID(ctx["requestId"])) == ctx["requestId"]
    assert before_ms <= ctx["requestTimeEpoch"] <= int(time.time() * 1000)
    assert re.fullmatch(r"\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000", ctx["requestTime"])
    assert ctx["protocol"] == "HTTP/1.1"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"
    assert ctx["identity"]["userAgent"] == "test-agent/1.0"
    assert reply.headers["x-amzn-RequestId"] == ctx["requestId"]

    # The Lambda context is the function's, fresh for the request.
    assert answer["function"] == "ItemsFunction"
    assert answer["memory"] == 256
    assert 25_000 < answer["remaining_ms"] <= 30_000
    assert answer["request_id"] != ctx["requestId"]


def test_absent_query_and_path_parameters_are_none(gateway: LocalApiGateway) -> None:
    event = request(gateway, "GET", "/items").event
    assert event["resource"] == "/items"
    assert event["pathParameters"] is None
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None
    # A bare "?" is no query either.
    assert request(gateway, "GET", "/items?").event["queryStringParameters"] is None


def test_text_body_and_binary_body(gateway: LocalApiGateway) -> None:
    text = json.dumps({"name": "café"}).encode("utf-8")
    event = request(gateway, "POST", "/items", text, [("Content-Type", "application/json")]).event
    assert event["httpMethod"] == "POST"
    assert event["body"] == text.decode("utf-8")
    assert event["isBase64Encoded"] is False

    binary = b"\xff\x00\xfe\x80 not utf-8"
    event = request(gateway, "POST", "/items", binary, [("Content-Type", "application/octet-stream")]).event
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == binary

    # An empty body is null, as API Gateway sends it.
    assert request(gateway, "POST", "/items", b"").event["body"] is None


def test_chunked_body(gateway: LocalApiGateway) -> None:
    conn = http.client.HTTPConnection(gateway.url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", "/items", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True)
        reply = Reply(conn.getresponse())
    finally:
        conn.close()
    assert reply.status == 200
    assert reply.event["body"] == "hello chunked world"


def test_literal_segments_win_over_parameters(gateway: LocalApiGateway) -> None:
    special = request(gateway, "GET", "/items/special").json()
    assert special["function"] == "SpecialFunction"
    assert special["event"]["resource"] == "/items/special"
    assert special["event"]["pathParameters"] is None

    other = request(gateway, "GET", "/items/other").json()
    assert other["function"] == "ItemsFunction"
    assert other["event"]["pathParameters"] == {"id": "other"}

    # No literal /items/special/sub: the parameter route below it matches.
    sub = request(gateway, "GET", "/items/special/sub").event
    assert sub["resource"] == "/items/{id}/sub"
    assert sub["pathParameters"] == {"id": "special"}


def test_greedy_proxy_stage_prefix_trailing_slash_and_encoding(gateway: LocalApiGateway) -> None:
    event = request(gateway, "DELETE", "/files/a/b/c.txt").event
    assert event["resource"] == "/files/{proxy+}"
    assert event["httpMethod"] == "DELETE"
    assert event["pathParameters"] == {"proxy": "a/b/c.txt"}
    assert request(gateway, "GET", "/files").status == 403  # {proxy+} needs at least one segment

    # The execute-api form of the URL, with the stage, reaches the same route.
    event = request(gateway, "GET", "/local/items/7").event
    assert event["path"] == "/items/7"
    assert event["requestContext"]["path"] == "/local/items/7"

    # A trailing slash matches the resource; the path keeps it.
    event = request(gateway, "GET", "/items/").event
    assert event["resource"] == "/items"
    assert event["path"] == "/items/"

    # Path parameters are decoded; the path stays as sent.
    event = request(gateway, "GET", "/items/a%20b%2Fc").event
    assert event["pathParameters"] == {"id": "a b/c"}
    assert event["path"] == "/items/a%20b%2Fc"


def test_unknown_route_and_wrong_method_get_missing_authentication_token(gateway: LocalApiGateway) -> None:
    for method, target in (
        ("GET", "/nothing"),
        ("GET", "/"),
        ("DELETE", "/items/special"),  # the resource exists, the method does not: still 403 in a REST API
        ("PUT", "/items"),
        ("HEAD", "/items"),  # HEAD is not mapped to GET
        ("OPTIONS", "/items/1"),  # no OPTIONS (nor ANY) route
    ):
        reply = request(gateway, method, target)
        assert reply.status == 403, (method, target)
        if method != "HEAD":
            assert reply.json() == {"message": "Missing Authentication Token"}
        assert reply.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"


def test_head_and_options_reach_an_any_route(gateway: LocalApiGateway) -> None:
    head = request(gateway, "HEAD", "/items/9/sub")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["Content-Length"]) > 0

    options = request(gateway, "OPTIONS", "/items/9/sub")
    assert options.status == 200
    assert options.event["httpMethod"] == "OPTIONS"


def test_body_over_the_limit_gets_413_and_the_server_goes_on(gateway: LocalApiGateway) -> None:
    reply = request(gateway, "POST", "/items", b"x" * (MAX_BODY + 1))
    assert reply.status == 413
    assert reply.json() == {"message": "Request Entity Too Large"}
    assert reply.headers["Connection"] == "close"

    conn = http.client.HTTPConnection(gateway.url.removeprefix("http://"), timeout=10)
    try:
        conn.request("POST", "/items", body=iter([b"y" * 40_000, b"y" * 40_000]), encode_chunked=True)
        assert conn.getresponse().status == 413
    finally:
        conn.close()

    assert request(gateway, "POST", "/items", b"x" * MAX_BODY).status == 200


def test_handler_errors_get_502_and_are_logged(gateway: LocalApiGateway, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="agentflow_local.api_gateway"):
        boom = request(gateway, "GET", "/boom")
        malformed = request(gateway, "GET", "/malformed")

    assert boom.status == 502
    assert boom.json() == {"message": "Internal server error"}
    assert malformed.status == 502
    assert malformed.json() == {"message": "Internal server error"}
    raised = [r for r in caplog.records if r.exc_info and "boom from the handler" in str(r.exc_info[1])]
    assert raised, "the handler's exception is logged with its traceback"
    assert any("malformed Lambda proxy response" in r.getMessage() for r in caplog.records)
    # The server is still serving.
    assert request(gateway, "GET", "/items").status == 200


def test_lambda_timeout_gets_502_and_integration_timeout_504(app: AppTemplate) -> None:
    with LocalApiGateway(app, port=0, integration_timeout=0.3) as gw:
        # SpecialFunction's Timeout is 1 s; API Gateway's integration timeout is shortened to 0.3 s here.
        assert gw.invoke("GET", "/slow", query={"sleep": "0.5"}).status == 504
    with LocalApiGateway(app, port=0) as gw:
        assert gw.invoke("GET", "/slow", query={"sleep": "1.1"}).status == 502


def test_status_and_headers_pass_through(gateway: LocalApiGateway) -> None:
    reply = request(gateway, "GET", "/items?status=201&type=text/plain")
    assert reply.status == 201
    assert reply.headers["X-Echo"] == "yes"  # given in both headers and multiValueHeaders: once
    assert reply.headers.get_all("X-Echo") == ["yes"]
    assert reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert reply.headers["Content-Type"] == "text/plain"

    # No Content-Type from the handler: API Gateway answers application/json.
    assert request(gateway, "GET", "/items").headers["Content-Type"] == "application/json"

    # isBase64Encoded responses are decoded to their bytes.
    binary = request(gateway, "GET", "/binary")
    assert binary.status == 200
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.body == bytes(range(256))


def test_keep_alive_serves_several_requests_on_one_connection(gateway: LocalApiGateway) -> None:
    conn = http.client.HTTPConnection(gateway.url.removeprefix("http://"), timeout=10)
    try:
        first = request(gateway, "GET", "/items/1", connection=conn)
        sock = conn.sock
        second = request(gateway, "POST", "/items", b"{}", connection=conn)
        third = request(gateway, "GET", "/nothing", connection=conn)
        assert conn.sock is sock  # the same TCP connection throughout
    finally:
        conn.close()
    assert (first.status, second.status, third.status) == (200, 200, 403)


def test_concurrent_requests_get_separate_execution_environments(gateway: LocalApiGateway) -> None:
    assert gateway.environments("ItemsFunction") == 1  # warmed at start
    with ThreadPoolExecutor(3) as pool:
        replies = list(pool.map(lambda _: request(gateway, "GET", "/items?sleep=1"), range(3)))
    instances = {r.json()["instance"] for r in replies}
    assert len(instances) == 3  # one request at a time per environment, as in Lambda
    assert gateway.environments("ItemsFunction") == 3
    # Warm environments are reused afterwards.
    assert request(gateway, "GET", "/items").json()["instance"] in instances
    assert gateway.environments("ItemsFunction") == 3


def test_invoke_without_http(app: AppTemplate) -> None:
    gw = LocalApiGateway(app, port=0)
    try:
        status, headers, body = gw.invoke(
            "POST", "/items", headers={"X-Key": "k"}, query={"tag": ["a", "b"]}, body=b"\x00\xff"
        )
        assert status == 200
        event = json.loads(body)["event"]
        assert event["headers"]["X-Key"] == "k"
        assert event["multiValueQueryStringParameters"] == {"tag": ["a", "b"]}
        assert event["isBase64Encoded"] is True
        assert ("X-Echo", "yes") in headers
        assert gw.invoke("GET", "/nope").status == 403
    finally:
        gw.stop()


def test_injected_handlers_are_used(app: AppTemplate) -> None:
    seen: list[dict[str, Any]] = []

    def fake(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return {"statusCode": 204, "body": None}

    gw = LocalApiGateway(app, port=0, handlers={"SpecialFunction": fake})
    try:
        assert gw.invoke("GET", "/items/special").status == 204
        assert seen[0]["resource"] == "/items/special"
    finally:
        gw.stop()
    with pytest.raises(ValueError, match="NoSuchFunction"):
        LocalApiGateway(app, port=0, handlers={"NoSuchFunction": fake})


def test_conflicting_routes_are_refused(tmp_path: Path) -> None:
    (tmp_path / "fn").mkdir()
    (tmp_path / "fn" / "app.py").write_text("def lambda_handler(event, context):\n    return {}\n")

    def template(events: str) -> AppTemplate:
        path = tmp_path / "template.yaml"
        path.write_text(
            "Resources:\n"
            "  A:\n    Type: AWS::Serverless::Function\n"
            "    Properties:\n      CodeUri: fn/\n      Handler: app.lambda_handler\n"
            f"      Events:\n{events}"
        )
        return load_template(path)

    duplicate = (
        "        One: {Type: Api, Properties: {Path: '/x/{id}', Method: get}}\n"
        "        Two: {Type: Api, Properties: {Path: '/x/{id}', Method: get}}\n"
    )
    with pytest.raises(TemplateError, match="already served"):
        LocalApiGateway(template(duplicate), port=0)
    renamed = (
        "        One: {Type: Api, Properties: {Path: '/x/{id}', Method: get}}\n"
        "        Two: {Type: Api, Properties: {Path: '/x/{name}', Method: post}}\n"
    )
    with pytest.raises(TemplateError, match="conflicts"):
        LocalApiGateway(template(renamed), port=0)
    greedy_inside = "        One: {Type: Api, Properties: {Path: '/x/{proxy+}/y', Method: get}}\n"
    with pytest.raises(TemplateError, match="last segment"):
        LocalApiGateway(template(greedy_inside), port=0)


def test_stop_is_clean_with_idle_and_busy_connections(app: AppTemplate, tmp_path: Path) -> None:
    before = {t for t in threading.enumerate() if not t.daemon}
    gw = LocalApiGateway(app, port=0).start()
    idle = http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=10)
    request(gw, "GET", "/items", connection=idle)  # left open: its thread waits for a next request
    mark = tmp_path / "in-flight"
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(request, gw, "GET", f"/items?sleep=0.5&mark={mark}")
        deadline = time.monotonic() + 10
        while not mark.exists():  # wait until the slow request is in its handler
            assert time.monotonic() < deadline
            time.sleep(0.01)
        started = time.monotonic()
        gw.stop(timeout=10)
        assert time.monotonic() - started < 5
        # The request in flight finished and got its answer, told that the connection closes.
        reply = busy.result(timeout=5)
    assert reply.status == 200
    assert reply.headers["Connection"] == "close"
    idle.close()

    leftover = {t for t in threading.enumerate() if not t.daemon} - before
    assert not leftover, leftover
    assert not [t for t in threading.enumerate() if t.name.startswith("local-api")]
    with pytest.raises(OSError):
        http.client.HTTPConnection(gw.url.removeprefix("http://"), timeout=2).request("GET", "/items")
    gw.stop()  # a second stop does nothing
    with pytest.raises(RuntimeError):
        gw.start()


POWERTOOLS_APP = """
from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from pydantic import BaseModel

app = APIGatewayRestResolver(enable_validation=True)
app.enable_swagger(path="/docs")


class Thing(BaseModel):
    name: str


@app.get("/things/<thing_id>")
def get_thing(thing_id: str, verbose: bool = False) -> dict:
    return {"id": thing_id, "verbose": verbose, "key": app.current_event.headers.get("X-API-Key")}


@app.post("/things")
def create_thing(thing: Thing) -> tuple[dict, int]:
    return {"name": thing.name}, 201


def lambda_handler(event, context):
    return app.resolve(event, context)
"""


def test_a_powertools_rest_resolver_runs_unchanged(app: AppTemplate, tmp_path: Path) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "app.py").write_text(POWERTOOLS_APP)
    (tmp_path / "api.yaml").write_text(
        "Resources:\n"
        "  ApiFunction:\n    Type: AWS::Serverless::Function\n"
        "    Properties:\n      CodeUri: api/\n      Handler: app.lambda_handler\n      Timeout: 30\n"
        "      Events:\n"
        "        Get: {Type: Api, Properties: {Path: '/things/{id}', Method: get}}\n"
        "        Create: {Type: Api, Properties: {Path: /things, Method: post}}\n"
        "        Docs: {Type: Api, Properties: {Path: /docs, Method: get}}\n"
    )
    with LocalApiGateway(load_template(tmp_path / "api.yaml"), port=0) as gw:
        got = request(gw, "GET", "/things/t-1?verbose=true", headers=[("X-API-Key", "secret")])
        assert got.status == 200
        assert got.json() == {"id": "t-1", "verbose": True, "key": "secret"}

        created = request(gw, "POST", "/things", b'{"name": "n"}', [("Content-Type", "application/json")])
        assert created.status == 201
        assert created.json() == {"name": "n"}
        assert request(gw, "POST", "/things", b'{"nom": 1}', [("Content-Type", "application/json")]).status == 422

        docs = request(gw, "GET", "/docs")
        assert docs.status == 200
        assert docs.headers["Content-Type"].startswith("text/html")
        # Swagger UI sends "Try it out" to the stage prefix, which the local gateway serves too.
        assert '"url": "/local"' in docs.body.decode()
        assert request(gw, "GET", "/local/things/t-2").json()["id"] == "t-2"
