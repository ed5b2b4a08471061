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

The parts live next to this module: `gateway_routing` (the resource tree and matching), `gateway_events` (request
-> proxy event, proxy response -> answer), `gateway_environments` (warm and cold handler copies) and
`gateway_http` (the HTTP server). This module ties them together.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from agentflow.clock import Clock, system_clock
from agentflow.runtime import Runtime
from agentflow_local.gateway_environments import _Environments
from agentflow_local.gateway_events import (
    GatewayResponse,
    _ApiStage,
    _ascii_target,
    _gateway_error,
    _MalformedResponse,
    _missing_token,
    _proxy_event,
    _proxy_response,
    _Request,
)
from agentflow_local.gateway_http import _GatewayHTTPServer
from agentflow_local.gateway_routing import _build_resources, _by_specificity, _route
from agentflow_local.lambda_runtime import LOCAL_ACCOUNT, FakeLambdaContext, Handler
from agentflow_local.template import ApiRoute, AppTemplate, FunctionSpec

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
LOCAL_API_ID = "localapi00"
_LOCAL_REGION = "us-east-1"


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
        ordered = _by_specificity(self._resources)
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
            return _gateway_error(413, "Request Entity Too Large", request_id, "RequestTooLargeException")
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
            return _gateway_error(502, "Internal server error", request_id, "InternalServerErrorException")

    def _handle(self, request: _Request, request_id: str) -> GatewayResponse:
        target = _ascii_target(request.target)
        split = urlsplit(target if target.startswith("/") else target or "/")
        path = split.path or "/"
        # An execute-api URL starts with the stage; the local URL may leave it out.
        prefix = f"/{self.stage}"
        if path == prefix or path.startswith(prefix + "/"):
            path = path[len(prefix) :] or "/"
        if not path.startswith("/"):
            return _missing_token(request_id)

        routed = _route(self._resources, path)
        if routed is None:
            return _missing_token(request_id)
        resource, path_params = routed
        method = request.method.upper()
        target_route = resource.methods.get(method) or resource.methods.get("ANY")
        if target_route is None:  # REST APIs answer a missing method like a missing resource
            return _missing_token(request_id)
        spec, _ = target_route

        event = _proxy_event(
            request,
            method=method,
            path=path,
            query=split.query,
            resource=resource,
            path_params=path_params,
            request_id=request_id,
            now=self.clock(),
            port=self._server.server_address[1],
            api=_ApiStage(self.api_id, self.stage, self.account),
        )
        return self._invoke(spec, event, request, request_id)

    def _invoke(self, spec: FunctionSpec, event: dict[str, Any], request: _Request, request_id: str) -> GatewayResponse:
        where = f"{spec.logical_id} on {request.method} {event['path']}"
        internal_error = _gateway_error(502, "Internal server error", request_id, "InternalServerErrorException")
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
            return _gateway_error(504, "Endpoint request timed out", request_id, "IntegrationTimeout")
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
