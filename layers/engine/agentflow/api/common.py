"""What the API's routers share: `Deps` (the engine, and the caller's graph and execution lookups, all scoped to the
caller), the documented error responses, response helpers and the listing cursor. Tenancy: another user's id
answers 404 exactly like one that does not exist."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from agentflow.api import models as m
from agentflow.api.errors import not_found
from agentflow.executor import Engine, GraphNotFound
from agentflow.graph import ValidGraph
from agentflow.store import ExecutionRecord, GraphHead, Store
from agentflow.triggers.schedules import SchedulerPort

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # graph and execution ids are ours: uuids
USER_CONTEXT_KEY = "agentflow_user_id"  # the request context key `agentflow.api.app.handle` puts the user id in


def _response(description: str, model: Any = m.ErrorResponse) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": model}}}


ERRORS: dict[int, OpenAPIResponse] = {
    400: _response("Invalid request"),
    401: _response("Missing or unknown API key"),
    404: _response("Not found (or not yours)"),
    413: _response("Body too large"),
}
CONFLICT: dict[int, OpenAPIResponse] = {409: _response("Not allowed from the current status")}


def ok(model: Any, extra: dict[int, OpenAPIResponse] | None = None) -> dict[int, OpenAPIResponse]:
    """The documented answers of a route that answers 200: Powertools documents the success response from the
    return type only when `responses` is not given, so it is listed here with the errors."""
    return {200: _response("OK", model), **ERRORS, **(extra or {})}


def created(model: Any) -> dict[int, OpenAPIResponse]:
    """The documented answers of a route that answers 201."""
    return {201: _response("Created", model), **ERRORS}


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body, default=str))


def _ok(model: Any, status: int = 200) -> Response[Any]:
    # the model itself: Powertools validates it against the route's response model, then serializes it
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=model)


def _check_id(what: str, ident: str) -> None:
    if not ID_PATTERN.match(ident):
        raise not_found(what, ident[:100])


@dataclass(frozen=True)
class Deps:
    """What the routers reach the engine through, made once per app by `build_app`. `scheduler_port` is called on
    first use: only the schedule routes need it."""

    engine: Engine
    scheduler_port: Callable[[], SchedulerPort]
    resolver: APIGatewayRestResolver  # the app the routers are included in: its current event is the request

    @property
    def store(self) -> Store:
        return self.engine.store

    def user(self) -> str:
        # set by `agentflow.api.app.handle` from the API key, before Powertools validates anything
        return str(self.resolver.current_event.raw_event["requestContext"]["authorizer"][USER_CONTEXT_KEY])

    def graph_head(self, graph_id: str) -> GraphHead:
        _check_id("graph", graph_id)
        head = self.store.get_graph_head(self.user(), graph_id)
        if head is None:
            raise not_found("graph", graph_id)
        return head

    def load(self, graph_id: str, version: int) -> ValidGraph:
        try:
            return self.engine.load_graph(self.user(), graph_id, version)
        except GraphNotFound as exc:
            raise not_found("graph version", f"{graph_id}@{version}") from exc

    def owned_execution(self, execution_id: str) -> ExecutionRecord:
        _check_id("execution", execution_id)
        execution = self.store.get_execution(execution_id)
        if execution is None or execution.user_id != self.user():
            raise not_found("execution", execution_id)
        return execution
