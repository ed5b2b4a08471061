"""The local API Gateway: real HTTP requests turned into REST API (v1) proxy events for the template's handlers.

Routes come from the `Api` events of template.yaml only (`AppTemplate.api_routes()`), so local routing cannot
drift from the deployed API. Requests are answered the way an API Gateway REST API with Lambda proxy
integrations answers them, including the answers API Gateway gives itself:

* routing: resource first, then method. Literal segments beat `{param}` segments, which beat `{proxy+}` (one or
  more segments); among the resources matching the whole path the most specific one wins. Trailing slashes are
  ignored for matching (the event's `path` keeps them). A path that matches no resource, and a resource that
  lacks the method (REST APIs have no 405), both get 403 `{"message":"Missing Authentication Token"}`.
  `ANY` covers every method, HEAD and OPTIONS included; HEAD is not mapped to GET (API Gateway does not).
* the URL carries no stage (`http://127.0.0.1:3000/graphs`, like a custom domain); `/<stage>/...` is accepted
  too and stripped, because Powertools' Swagger UI points "Try it out" at `requestContext.path`'s stage prefix.
* a body over `max_body_bytes` gets 413; a handler that raises, times out, returns something that is not a
  valid proxy response, or a response over Lambda's 6 MB limit gets 502 `{"message": "Internal server error"}`
  and the cause is logged; a handler slower than the integration timeout (29 s) gets 504. A handler cannot be
  interrupted in-process: the 502/504 replace its answer once it returns.

Deliberate differences from a deployed REST API: a request body that is not valid UTF-8 is always passed base64
encoded (no `BinaryMediaTypes` needed), and a response with `isBase64Encoded: true` is always decoded. Authorizers,
API keys, CORS preflight mocks and usage plans are not emulated: guarded routes are served and a warning is logged.

Lambda runs one request per execution environment at a time, and Powertools resolvers keep the current event on
the module-level `app` object. So each function gets a pool of separately imported handler modules ("warm
environments", up to `concurrency`), and each one serves one request at a time. Handlers passed in `handlers`
are shared by all requests: they must be thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from agentflow.clock import Clock, system_clock
from agentflow.local.lambda_runtime import LOCAL_ACCOUNT, FakeLambdaContext, Handler, load_handler
from agentflow.local.template import ApiRoute, AppTemplate, FunctionSpec, TemplateError
from agentflow.runtime import Runtime

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "INTEGRATION_TIMEOUT",
    "LAMBDA_RESPONSE_LIMIT",
    "GatewayResponse",
    "LocalApiGateway",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024  # a synchronous Lambda invocation's response limit
INTEGRATION_TIMEOUT = 29.0  # API Gateway REST's default integration timeout, seconds
KEEPALIVE_TIMEOUT = 60.0  # an idle keep-alive connection is closed after this many seconds
LINGER_SECONDS = 2.0  # how long a refused body is drained before its connection closes
LOCAL_API_ID = "localapi00"
_LOCAL_REGION = "us-east-1"

_PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Response headers API Gateway does not pass through as they are: it sets its own and renames the handler's.
_REMAPPED_HEADERS = frozenset({"connection", "content-length", "date", "server", "transfer-encoding"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Characters left as they are when a raw request target is made ASCII ("%" keeps existing escapes).
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


class GatewayResponse(NamedTuple):
    """What the gateway answers: unpacks as `(status, headers, body)`."""

    status: int
    headers: list[tuple[str, str]]  # without Content-Length, Date and Connection, which the HTTP layer adds
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def json(self) -> Any:
        return json.loads(self.body)


class _MalformedResponse(ValueError):
    """The handler's answer is not a Lambda proxy response API Gateway accepts."""


# --- routing --------------------------------------------------------------------------------------------------

_LITERAL, _PARAM, _GREEDY = 0, 1, 2  # ranks: a lower rank is more specific


@dataclass(frozen=True)
class _Segment:
    kind: int
    value: str  # the literal text, or the parameter's name


@dataclass
class _Resource:
    path: str  # the template path, trailing slash removed
    segments: tuple[_Segment, ...]
    resource_id: str
    methods: dict[str, tuple[FunctionSpec, ApiRoute]] = field(default_factory=dict)

    def match(self, parts: Sequence[str]) -> tuple[tuple[int, ...], dict[str, str]] | None:
        """(rank, decoded path parameters) when this resource matches the raw path segments, else None."""
        params: dict[str, str] = {}
        rank: list[int] = []
        for i, segment in enumerate(self.segments):
            if segment.kind == _GREEDY:
                rest = parts[i:]
                if not rest or not "".join(rest):
                    return None
                params[segment.value] = unquote("/".join(rest))
                rank.append(_GREEDY)
                return tuple(rank), params
            if i >= len(parts):
                return None
            part = parts[i]
            if segment.kind == _LITERAL:
                if unquote(part) != segment.value:
                    return None
            elif not part:  # a parameter never matches an empty segment
                return None
            else:
                params[segment.value] = unquote(part)
            rank.append(segment.kind)
        if len(parts) != len(self.segments):
            return None
        return tuple(rank), params


def _parse_path(path: str, where: str) -> tuple[str, tuple[_Segment, ...]]:
    if not path.startswith("/"):
        raise TemplateError(f"{where}: an API path must start with '/', not {path!r}")
    normalized = path.rstrip("/") or "/"
    segments: list[_Segment] = []
    raw_parts = [p for p in normalized.split("/")[1:] if p] if normalized != "/" else []
    for i, part in enumerate(raw_parts):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
                raise TemplateError(f"{where}: bad path parameter {part!r} in {path!r}")
            if greedy and i != len(raw_parts) - 1:
                raise TemplateError(f"{where}: a greedy parameter {part!r} must be the last segment of {path!r}")
            segments.append(_Segment(_GREEDY if greedy else _PARAM, name))
        elif "{" in part or "}" in part:
            raise TemplateError(f"{where}: a path parameter must fill a whole segment, not {part!r} in {path!r}")
        else:
            segments.append(_Segment(_LITERAL, part))
    return normalized, tuple(segments)


def _shape(segments: Sequence[_Segment]) -> tuple[str, ...]:
    """The path with parameter names erased: API Gateway refuses two sibling parameters of different names."""
    return tuple(s.value if s.kind == _LITERAL else ("{}" if s.kind == _PARAM else "{+}") for s in segments)


def _build_resources(template: AppTemplate) -> list[_Resource]:
    by_shape: dict[tuple[str, ...], _Resource] = {}
    for spec, route in template.api_routes():
        where = f"{spec.logical_id}.{route.name}"
        path, segments = _parse_path(route.path, where)
        resource = by_shape.get(_shape(segments))
        if resource is None:
            resource_id = hashlib.sha1(path.encode("utf-8")).hexdigest()[:6]
            resource = by_shape[_shape(segments)] = _Resource(path, segments, resource_id)
        elif resource.path != path:
            raise TemplateError(f"{where}: {path!r} conflicts with {resource.path!r} (same place, other names)")
        if route.method in resource.methods:
            other, other_route = resource.methods[route.method]
            raise TemplateError(
                f"{where}: {route.method} {path} is already served by {other.logical_id}.{other_route.name}"
            )
        resource.methods[route.method] = (spec, route)
    return list(by_shape.values())


# --- handler pools --------------------------------------------------------------------------------------------


class _Environments:
    """The warm execution environments of one function: separately imported handlers, one request each at a time."""

    def __init__(self, spec: FunctionSpec, shared: Handler | None, limit: int, runtime: Runtime | None) -> None:
        self.spec = spec
        self._runtime = runtime
        self._shared = shared
        self._limit = limit
        self._idle: list[Handler] = []
        self._count = 0
        self._cond = threading.Condition()

    def warm(self) -> None:
        """Load one environment now, so a missing or broken handler fails at start rather than on a request."""
        if self._shared is not None:
            return
        with self._cond:
            if self._count:
                return
            self._count += 1
        try:
            handler = load_handler(self.spec, self._runtime)
        except BaseException:
            with self._cond:
                self._count -= 1
            raise
        with self._cond:
            self._idle.append(handler)
            self._cond.notify()

    @property
    def size(self) -> int:
        with self._cond:
            return self._count

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Handler]:
        if self._shared is not None:
            yield self._shared
            return
        with self._cond:
            # At the limit, wait for a free environment rather than throttle: friendlier on a laptop.
            self._cond.wait_for(lambda: bool(self._idle) or self._count < self._limit)
            handler = self._idle.pop() if self._idle else None  # the most recently used: the warmest
            if handler is None:
                self._count += 1
        if handler is None:
            try:
                handler = load_handler(self.spec, self._runtime)  # a cold start
            except BaseException:
                with self._cond:
                    self._count -= 1
                    self._cond.notify()
                raise
        try:
            yield handler
        finally:
            with self._cond:
                self._idle.append(handler)
                self._cond.notify()


# --- events and responses -------------------------------------------------------------------------------------


def _request_time(epoch: float) -> str:
    """API Gateway's `requestTime`, e.g. "09/Apr/2015:12:34:56 +0000" (English months whatever the locale)."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def _trace_id(epoch: float) -> str:
    return f"Root=1-{int(epoch):08x}-{uuid.uuid4().hex[:24]}"


def _header_text(value: str) -> str:
    """http.client reads header bytes as Latin-1; give back UTF-8 text when the bytes were UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _ascii_target(target: str) -> str:
    """The request target with raw non-ASCII bytes percent-encoded, as a client should have sent it."""
    return quote(target.encode("latin-1", "replace"), safe=_TARGET_SAFE)


def _header_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise _MalformedResponse(f"{where}: a header value must be a string, not {value!r}")
    if "\r" in text or "\n" in text:
        raise _MalformedResponse(f"{where}: a header value must not hold a line break")
    return text


def _response_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`multiValueHeaders` merged with `headers` as API Gateway merges them (a pair given in both appears once)."""
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(headers, Mapping) or not isinstance(multi, Mapping):
        raise _MalformedResponse("headers and multiValueHeaders must be objects")
    merged: list[tuple[str, str]] = []
    multi_values: dict[str, set[str]] = {}
    for name, values in multi.items():
        if not isinstance(values, list):
            raise _MalformedResponse(f"multiValueHeaders.{name} must be a list")
        for value in values:
            text = _header_value(value, f"multiValueHeaders.{name}")
            merged.append((str(name), text))
            multi_values.setdefault(str(name).lower(), set()).add(text)
    for name, value in headers.items():
        text = _header_value(value, f"headers.{name}")
        if text not in multi_values.get(str(name).lower(), set()):
            merged.append((str(name), text))
    for name, _ in merged:
        if not _TOKEN.fullmatch(name):
            raise _MalformedResponse(f"bad header name {name!r}")
    return merged


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy response (already through JSON, as Lambda returns it) -> (status, headers, body)."""
    if not isinstance(result, dict):
        raise _MalformedResponse(f"the handler returned {type(result).__name__}, not an object")
    extra = set(result) - _PROXY_RESPONSE_KEYS
    if extra:  # REST APIs refuse unknown keys (HTTP APIs ignore them)
        raise _MalformedResponse(f"unknown keys {sorted(extra)}")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedResponse(f"statusCode must be an HTTP status code, not {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise _MalformedResponse(f"body must be a string or null, not {type(body).__name__}")
    encoded = result.get("isBase64Encoded", False)
    if encoded is not None and not isinstance(encoded, bool):
        raise _MalformedResponse(f"isBase64Encoded must be a boolean, not {encoded!r}")
    headers = _response_headers(result)
    if encoded and body:
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise _MalformedResponse(f"isBase64Encoded is true but the body is not base64: {exc}") from None
    else:
        data = (body or "").encode("utf-8")
    # API Gateway renames the headers it sets itself, and answers application/json when no type is given.
    headers = [(f"x-amzn-Remapped-{n}" if n.lower() in _REMAPPED_HEADERS else n, v) for n, v in headers]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers, data


# --- the gateway ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    method: str
    target: str  # path and query as sent, e.g. "/items/42?tag=a"
    headers: list[tuple[str, str]]  # in order, names as sent, duplicates kept
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


class LocalApiGateway:
    """API Gateway (REST API, Lambda proxy integration) for the template's `Api` events, on real HTTP.

    `handlers` maps function logical ids to handlers to use instead of importing them (shared by every request,
    so they must be thread-safe). `concurrency` caps the imported environments of each function.
    """

    def __init__(
        self,
        template: AppTemplate,
        *,
        host: str = "127.0.0.1",
        port: int = 3000,
        handlers: Mapping[str, Handler] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        stage: str = "local",
        concurrency: int = 8,
        integration_timeout: float = INTEGRATION_TIMEOUT,
        region: str | None = None,
        account: str = LOCAL_ACCOUNT,
        api_id: str = LOCAL_API_ID,
        runtime: Runtime | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if max_body_bytes < 0 or concurrency < 1 or integration_timeout <= 0:
            raise ValueError("max_body_bytes must be >= 0, concurrency >= 1, integration_timeout > 0")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", stage):
            raise ValueError(f"a stage name is letters, digits, '-' and '_', not {stage!r}")
        self.template = template
        self.max_body_bytes = max_body_bytes
        self.stage = stage
        self.integration_timeout = integration_timeout
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or _LOCAL_REGION
        self.account = account
        self.api_id = api_id
        self.clock = clock  # requestTimeEpoch of the events

        self._resources = _build_resources(template)
        given = dict(handlers or {})
        unknown = set(given) - set(template.functions)
        if unknown:
            raise ValueError(f"handlers for functions not in the template: {', '.join(sorted(unknown))}")
        self._environments: dict[str, _Environments] = {}
        for resource in self._resources:
            for method, (spec, route) in resource.methods.items():
                if spec.logical_id not in self._environments:
                    shared = given.get(spec.logical_id)
                    self._environments[spec.logical_id] = _Environments(spec, shared, concurrency, runtime)
                self._warn_unemulated(spec, route, method, resource.path)

        self._server = _GatewayHTTPServer((host, port), self)
        self._server_thread: threading.Thread | None = None
        self._started = False
        self._closed = False

    def _warn_unemulated(self, spec: FunctionSpec, route: ApiRoute, method: str, path: str) -> None:
        if route.auth:
            logger.warning(
                "local api gateway: %s %s (%s) is guarded by an authorizer or API key; not enforced locally",
                method,
                path,
                spec.logical_id,
            )
        event = (self.template.resources.get(spec.logical_id) or {}).get("Properties", {}).get("Events", {})
        if (event.get(route.name) or {}).get("Type") == "HttpApi":
            logger.warning(
                "local api gateway: %s.%s is an HttpApi event; it gets REST API (v1) events locally",
                spec.logical_id,
                route.name,
            )

    # -- lifecycle

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def routes(self) -> list[tuple[str, str, str]]:
        """(method, path, function logical id) for every route served, most specific paths first."""
        ordered = sorted(self._resources, key=lambda r: [s.kind for s in r.segments] + [len(r.segments)])
        return [(m, r.path, spec.logical_id) for r in ordered for m, (spec, _) in sorted(r.methods.items())]

    def environments(self, logical_id: str) -> int:
        """How many execution environments (imported copies of the handler) a function has now."""
        return self._environments[logical_id].size

    def start(self) -> LocalApiGateway:
        """Import every routed handler once (a missing or broken one fails here), then serve."""
        if self._started:
            return self
        if self._closed:
            raise RuntimeError("a stopped LocalApiGateway cannot start again: make a new one")
        for environments in self._environments.values():
            environments.warm()
        self._server_thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="local-api-http", daemon=True
        )
        self._server_thread.start()
        self._started = True
        logger.info("local api gateway serving %d routes at %s", len(self.routes), self.url)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, let requests in flight finish (up to `timeout`), close every connection, join threads."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            self._server.server_close()
            return
        deadline = time.monotonic() + timeout
        server = self._server
        server.stopping = True
        server.shutdown()  # serve_forever returns: no new connections
        server.close_idle_connections()  # keep-alive connections waiting for a next request
        if not server.wait_quiet(max(0.0, deadline - time.monotonic())):
            logger.warning("local api gateway: requests still running after %ss; closing their connections", timeout)
        server.close_all_connections()
        server.server_close()
        for thread in server.request_threads():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                logger.warning("local api gateway: %s still running a handler after %ss", thread.name, timeout)
        if self._server_thread is not None:
            self._server_thread.join(max(0.0, deadline - time.monotonic()))
        self._started = False

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests

    def invoke(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        query: Mapping[str, str | Sequence[str]] | None = None,
        body: str | bytes | None = None,
    ) -> GatewayResponse:
        """Answer one request without HTTP (the same routing, event and response handling)."""
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        if not any(name.lower() == "host" for name, _ in pairs):
            host, port = self._server.server_address[:2]
            pairs.insert(0, ("Host", f"{host!s}:{port}"))
        target = path
        if query:
            target += ("&" if "?" in target else "?") + urlencode(
                {k: [v] if isinstance(v, str) else list(v) for k, v in query.items()}, doseq=True
            )
        data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
        request_id = str(uuid.uuid4())
        if len(data) > self.max_body_bytes:
            return self._gateway_error(413, "Request Entity Too Large", request_id, "RequestTooLargeException")
        response = self._answer(_Request(method.upper(), target, pairs, data))
        if method.upper() == "HEAD":
            return response._replace(body=b"")
        return response

    def _answer(self, request: _Request) -> GatewayResponse:
        """Route one request and answer it; never raises."""
        request_id = str(uuid.uuid4())
        try:
            return self._handle(request, request_id)
        except Exception:
            logger.exception("local api gateway: failed on %s %s", request.method, request.target)
            return self._gateway_error(502, "Internal server error", request_id, "InternalServerErrorException")

    def _gateway_error(self, status: int, message: str, request_id: str, error_type: str) -> GatewayResponse:
        headers = [
            ("Content-Type", "application/json"),
            ("x-amzn-RequestId", request_id),
            ("x-amzn-ErrorType", error_type),
        ]
        return GatewayResponse(status, headers, json.dumps({"message": message}).encode("utf-8"))

    def _missing_token(self, request_id: str) -> GatewayResponse:
        return self._gateway_error(
            403, "Missing Authentication Token", request_id, "MissingAuthenticationTokenException"
        )

    def _route(self, path: str) -> tuple[_Resource, dict[str, str]] | None:
        trimmed = path.rstrip("/")
        parts = trimmed.split("/")[1:] if trimmed else []
        best: tuple[tuple[int, ...], _Resource, dict[str, str]] | None = None
        for resource in self._resources:
            found = resource.match(parts)
            if found is not None and (best is None or found[0] < best[0]):
                best = (found[0], resource, found[1])
        return None if best is None else (best[1], best[2])

    def _handle(self, request: _Request, request_id: str) -> GatewayResponse:
        target = _ascii_target(request.target)
        split = urlsplit(target if target.startswith("/") else target or "/")
        path = split.path or "/"
        # An execute-api URL starts with the stage; the local URL may leave it out.
        prefix = f"/{self.stage}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :] or "/"
        if not path.startswith("/"):
            return self._missing_token(request_id)

        routed = self._route(path)
        if routed is None:
            return self._missing_token(request_id)
        resource, path_params = routed
        method = request.method.upper()
        target_route = resource.methods.get(method) or resource.methods.get("ANY")
        if target_route is None:  # REST APIs answer a missing method like a missing resource
            return self._missing_token(request_id)
        spec, _ = target_route

        event = self._event(request, method, path, split.query, resource, path_params, request_id)
        return self._invoke(spec, event, request, request_id)

    def _event(
        self,
        request: _Request,
        method: str,
        path: str,
        query: str,
        resource: _Resource,
        path_params: dict[str, str],
        request_id: str,
    ) -> dict[str, Any]:
        now = self.clock()
        multi_headers: dict[str, list[str]] = {}
        names: dict[str, str] = {}  # lower-case name -> the name as first sent
        for raw_name, raw_value in request.headers:
            name = names.setdefault(raw_name.lower(), raw_name)
            multi_headers.setdefault(name, []).append(_header_text(raw_value))
        # Headers API Gateway adds on its way to the integration.
        forwarded = names.get("x-forwarded-for")
        if forwarded is None:
            multi_headers["X-Forwarded-For"] = [request.source_ip]
        else:
            multi_headers[forwarded] = [f"{multi_headers[forwarded][-1]}, {request.source_ip}"]
        for name, value in (
            ("X-Forwarded-Port", str(self._server.server_address[1])),
            ("X-Forwarded-Proto", "http"),
            ("X-Amzn-Trace-Id", _trace_id(now)),
        ):
            if name.lower() not in names:
                multi_headers[name] = [value]
        headers = {name: values[-1] for name, values in multi_headers.items()}

        multi_query: dict[str, list[str]] = {}
        for key, value in parse_qsl(query, keep_blank_values=True):
            multi_query.setdefault(key, []).append(value)

        if request.body:
            try:
                body: str | None = request.body.decode("utf-8")
                is_base64 = False
            except UnicodeDecodeError:
                body = base64.b64encode(request.body).decode("ascii")
                is_base64 = True
        else:
            body, is_base64 = None, False

        lower = {name.lower(): value for name, value in headers.items()}
        host = lower.get("host", "")
        return {
            "resource": resource.path,
            "path": path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": resource.resource_id,
                "resourcePath": resource.path,
                "httpMethod": method,
                "extendedRequestId": request_id.replace("-", "")[:16],
                "requestTime": _request_time(now),
                "path": f"/{self.stage}{path}",
                "accountId": self.account,
                "protocol": request.protocol,
                "stage": self.stage,
                "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
                "requestTimeEpoch": int(now * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": request.source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": lower.get("user-agent"),
                    "user": None,
                    "apiKey": None,
                    "apiKeyId": None,
                    "clientCert": None,
                },
                "domainName": host,
                "apiId": self.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def _invoke(self, spec: FunctionSpec, event: dict[str, Any], request: _Request, request_id: str) -> GatewayResponse:
        where = f"{spec.logical_id} on {request.method} {event['path']}"
        internal_error = self._gateway_error(502, "Internal server error", request_id, "InternalServerErrorException")
        with self._environments[spec.logical_id].acquire() as handler:
            context = FakeLambdaContext.for_function(spec, region=self.region, account=self.account)
            started = time.monotonic()
            try:
                result = handler(event, context)
            except Exception:
                logger.exception("local api gateway: %s raised", where)
                return internal_error
            finally:
                elapsed = time.monotonic() - started
        if elapsed > self.integration_timeout:
            logger.error(
                "local api gateway: %s took %.1fs, over the %ss integration timeout",
                where,
                elapsed,
                self.integration_timeout,
            )
            return self._gateway_error(504, "Endpoint request timed out", request_id, "IntegrationTimeout")
        if elapsed > spec.timeout:
            logger.error("local api gateway: %s took %.1fs; Lambda stops it after %ss", where, elapsed, spec.timeout)
            return internal_error
        try:
            # Lambda hands API Gateway the handler's answer as JSON: what JSON cannot hold fails there.
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            logger.error("local api gateway: %s returned something Lambda cannot serialize: %s", where, exc)
            return internal_error
        if len(payload.encode("utf-8")) > LAMBDA_RESPONSE_LIMIT:
            logger.error(
                "local api gateway: %s returned over Lambda's %d-byte response limit", where, LAMBDA_RESPONSE_LIMIT
            )
            return internal_error
        try:
            status, headers, body = _proxy_response(json.loads(payload))
        except _MalformedResponse as exc:
            logger.error("local api gateway: %s returned a malformed Lambda proxy response: %s", where, exc)
            return internal_error
        headers.append(("x-amzn-RequestId", request_id))
        return GatewayResponse(status, headers, body)


# --- HTTP -----------------------------------------------------------------------------------------------------


class _GatewayHTTPServer(ThreadingHTTPServer):
    """Tracks connections (idle or busy) and request threads, so stop() can close and join every one of them."""

    daemon_threads = False
    block_on_close = False  # stop() joins the request threads itself, with a deadline
    request_queue_size = socket.SOMAXCONN  # socketserver's default backlog of 5 drops bursts of new clients

    def __init__(self, address: tuple[str, int], gateway: LocalApiGateway) -> None:
        self.gateway = gateway
        self.stopping = False
        self._cond = threading.Condition()
        self._connections: dict[socket.socket, bool] = {}  # connection -> busy with a request
        self._request_threads: set[threading.Thread] = set()
        self._thread_count = 0
        super().__init__(address, _GatewayRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._cond:
            self._connections[request] = False
            self._thread_count += 1
            thread = threading.Thread(
                target=self._serve_connection,
                args=(request, client_address),
                name=f"local-api-request-{self._thread_count}",
                daemon=self.daemon_threads,
            )
            self._request_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._cond:
                self._request_threads.discard(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        with self._cond:
            self._connections.pop(request, None)
            self._cond.notify_all()
        super().shutdown_request(request)

    def set_busy(self, connection: socket.socket, busy: bool) -> None:
        with self._cond:
            if connection in self._connections:
                self._connections[connection] = busy
            self._cond.notify_all()

    def request_threads(self) -> list[threading.Thread]:
        with self._cond:
            return list(self._request_threads)

    def _close(self, only_idle: bool) -> None:
        with self._cond:
            connections = [c for c, busy in self._connections.items() if not (only_idle and busy)]
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def close_idle_connections(self) -> None:
        """End keep-alive connections waiting for a next request, whose threads would otherwise wait on."""
        self._close(only_idle=True)

    def close_all_connections(self) -> None:
        self._close(only_idle=False)

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no connection is busy with a request; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not any(self._connections.values()), timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Never print to stderr nor let a connection's failure reach the server loop.
        logger.debug("local api gateway: connection from %s failed", client_address, exc_info=True)


class _GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _GatewayHTTPServer
    timeout = KEEPALIVE_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    _linger = False  # set when a body was refused unread: drain it before closing

    def handle_one_request(self) -> None:
        """One request of any method (API Gateway routes any method token), then back to idle."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.server.set_busy(self.connection, True)
            if not self.parse_request():  # an error was answered already
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
        finally:
            self.server.set_busy(self.connection, False)
            if self.server.stopping:
                self.close_connection = True

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        length = self._content_length()
        if length is not None and length > self.server.gateway.max_body_bytes:
            self._too_large()
            return False
        return super().handle_expect_100()

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return -1
        return length if length >= 0 else -1

    def _too_large(self) -> None:
        gateway = self.server.gateway
        error = gateway._gateway_error(413, "Request Entity Too Large", str(uuid.uuid4()), "RequestTooLargeException")
        self.close_connection = True  # the body is not read: the connection cannot be reused
        self._linger = True
        self._write(error)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._drain_unread()

    def _drain_unread(self) -> None:
        """Read and drop what the client still sends, for a while, before closing.

        Closing a socket with unread data sends a reset, which can destroy the 413 before the client reads it
        (the client is often still sending the body it was refused).
        """
        deadline = time.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break

    def _bad_request(self) -> None:
        error = self.server.gateway._gateway_error(400, "Bad Request", str(uuid.uuid4()), "BadRequestException")
        self.close_connection = True
        self._write(error)

    def _read_chunked(self, limit: int) -> bytes | None:
        """A chunked body; None (and 413 answered) when it grows over the limit. Raises ValueError when malformed."""
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ValueError("bad chunk size line")
            chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            if chunk_size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are dropped
                return b"".join(chunks)
            size += chunk_size
            if size > limit:
                self._too_large()
                return None
            chunk = self.rfile.read(chunk_size)
            if len(chunk) != chunk_size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("truncated chunk")
            chunks.append(chunk)

    def _read_body(self) -> bytes | None:
        """The request body; None when an error (400 or 413) was answered instead."""
        limit = self.server.gateway.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            try:
                return self._read_chunked(limit)
            except ValueError:
                self._bad_request()
                return None
        length = self._content_length()
        if length is None:
            return b""
        if length < 0:
            self._bad_request()
            return None
        if length > limit:
            self._too_large()
            return None
        body = self.rfile.read(length)
        if len(body) != length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _dispatch(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            return
        request = _Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=str(self.client_address[0]),
            protocol=self.request_version,
        )
        response = self.server.gateway._answer(request)
        self._write(response)
        logger.info(
            "%s %s -> %d (%.0f ms)", self.command, self.path, response.status, (time.monotonic() - started) * 1000
        )

    def _write(self, response: GatewayResponse) -> None:
        self.send_response_only(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection or self.server.stopping:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local api gateway http: " + format, *args)
