"""The HTTP API's resolver (README.md, "The HTTP API"). `build_app(engine, scheduler_port)` returns a Powertools
resolver with the OpenAPI document, the error shapes and every resource's router; `handle` is its entry point, for
the Lambda handler and the local stack alike. Tenancy: every read goes through keys or checks that carry the
caller's user id, and another user's id answers 404 exactly like one that does not exist."""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from agentflow.api import credentials, docs, executions, graphs, pages, reviews, schedules, webhooks
from agentflow.api.auth import user_for_key
from agentflow.api.common import USER_CONTEXT_KEY, Deps, _json
from agentflow.api.errors import ApiError, invalid, not_found, too_large, unauthorized
from agentflow.executor import Engine
from agentflow.graph import GraphValidationError
from agentflow.triggers.schedules import SchedulerPort

MAX_BODY_BYTES = 400_000  # a graph document (300 KB) with room to spare; above this: 413
# the API's documentation, and the web page's static files (agentflow.api.pages: no data, answered before the key check)
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", *pages.PAGE_RESOURCES})


def _proxy_error(error: ApiError) -> dict[str, Any]:
    return {
        "statusCode": error.status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(error.body()),
        "isBase64Encoded": False,
    }


def handle(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The API's entry point. Size and API key are checked first, as API Gateway's own authorizer would, so an
    oversized or unauthenticated request answers 413/401 before Powertools validates its body or query; the
    caller's user id then travels in the request context like an authorizer's."""
    engine: Engine = app._agentflow_engine  # type: ignore[attr-defined]
    if pages.is_page(event):  # static files only: they never reach a route, the table or the key
        return pages.respond(event)
    path = str(event.get("resource") or event.get("path") or "")
    if path not in PUBLIC_PATHS:
        body = event.get("body") or ""
        try:
            size = len(base64.b64decode(body)) if event.get("isBase64Encoded") else len(body.encode())
        except (ValueError, binascii.Error):
            size = len(body)
        if size > MAX_BODY_BYTES:
            return _proxy_error(too_large(MAX_BODY_BYTES, size))
        headers = event.get("headers") or {}
        key = next((str(v) for k, v in headers.items() if k.lower() == "x-api-key"), None)
        user_id = user_for_key(engine.store, key)
        if user_id is None:
            return _proxy_error(unauthorized("missing or unknown API key: send it in the X-API-Key header"))
        context_part = {**(event.get("requestContext") or {})}
        context_part["authorizer"] = {**(context_part.get("authorizer") or {}), USER_CONTEXT_KEY: user_id}
        event = {**event, "requestContext": context_part}
    return resolve(app, prepare_event(event), context)


# Powertools keeps the request being resolved on a class attribute (`BaseRouter.current_event`), shared by every
# resolver in the process. Lambda resolves one request per sandbox; the local stack runs several handler copies
# in threads of one process, where two requests resolved at once could read each other's event.
_RESOLVING = threading.Lock()


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`app.resolve`, one request at a time per process (see `_RESOLVING`)."""
    with _RESOLVING:
        return app.resolve(event, context)


def prepare_event(event: dict[str, Any]) -> dict[str, Any]:
    """Every request body of this API is JSON, whatever Content-Type the client sent (curl -d sends a form type):
    without this, Powertools would parse it as a form and a malformed body could pass as an empty object."""
    if not event.get("body"):
        return event
    headers = {k: v for k, v in (event.get("headers") or {}).items() if k.lower() != "content-type"}
    multi = {k: v for k, v in (event.get("multiValueHeaders") or {}).items() if k.lower() != "content-type"}
    headers["Content-Type"] = "application/json"
    multi["Content-Type"] = ["application/json"]
    return {**event, "headers": headers, "multiValueHeaders": multi}


def build_app(engine: Engine, scheduler_port: Callable[[], SchedulerPort]) -> APIGatewayRestResolver:
    """`scheduler_port` is called on first use: only the schedule routes need it."""
    app = APIGatewayRestResolver(enable_validation=True)
    app._agentflow_engine = engine  # type: ignore[attr-defined]  # `handle` and contract tests reach it here
    _error_handlers(app)

    @app.get("/openapi.json", summary="The OpenAPI document of this API", include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(200, content_types.APPLICATION_JSON, docs.openapi_document(app))

    @app.get("/docs", summary="Swagger UI for this API", include_in_schema=False)
    def swagger() -> Response[Any]:
        return Response(200, content_types.TEXT_HTML, docs.swagger_page(app))

    deps = Deps(engine, scheduler_port, app)
    for resource in (graphs, executions, reviews, webhooks, schedules, credentials):
        app.include_router(resource.router(deps))
    return app


def _error_handlers(app: APIGatewayRestResolver) -> None:
    """Every error answers `{"error": {"code", "message", "details"}}` (agentflow.api.errors)."""

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[Any]:
        return _json(error.status, error.body())

    @app.exception_handler(RequestValidationError)
    def _request_invalid(error: RequestValidationError) -> Response[Any]:
        details = []
        for e in error.errors():
            if e.get("type") == "json_invalid":  # loc points into the text; the body as a whole is at fault
                reason = (e.get("ctx") or {}).get("error", "")
                details.append({"field": "body", "message": f"the body is not valid JSON: {reason}".rstrip(": ")})
            else:
                details.append({"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")})
        fields = ", ".join(d["field"] for d in details) or "request"
        return _json(400, invalid(f"invalid request: {fields}", details).body())

    @app.exception_handler(UnicodeDecodeError)
    def _not_utf8(_: UnicodeDecodeError) -> Response[Any]:
        return _json(400, invalid("the body is not valid UTF-8 JSON").body())

    @app.exception_handler(GraphValidationError)
    def _graph_invalid(error: GraphValidationError) -> Response[Any]:
        details = [p.to_dict() for p in error.problems]
        return _json(400, invalid(str(error), details).body())

    @app.not_found
    def _no_route(_: Exception) -> Response[Any]:
        return _json(404, not_found("route", f"{app.current_event.http_method} {app.current_event.path}").body())
