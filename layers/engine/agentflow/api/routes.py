"""The API's routes (DESIGN §7). `build_app(engine)` returns a Powertools resolver; the Lambda handler and the
local stack both call it. Tenancy: every read goes through keys or checks that carry the caller's user id, and
another user's id answers 404 exactly like one that does not exist."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from botocore.exceptions import ClientError

from agentflow import __version__, keys
from agentflow.api import models as m
from agentflow.api.auth import user_for_key
from agentflow.api.errors import ApiError, conflict, invalid, not_found, too_large, unauthorized
from agentflow.blocks.registry import all_blocks
from agentflow.executor import Engine, GraphNotFound
from agentflow.graph import GraphValidationError, ValidGraph, validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Item, deserialize_item, serialize
from agentflow.triggers.schedules import (
    ScheduleError,
    SchedulerPort,
    create_schedule,
    delete_schedule,
    schedule_view,
)
from agentflow.triggers.webhooks import new_secret, new_webhook_id

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 400_000  # a graph document (300 KB) with room to spare; above this: 413
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # graph and execution ids are ours: uuids
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs"})
MAX_IDEMPOTENCY_KEY = 256


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


OPENAPI: dict[str, Any] = {
    "title": "agentflow",
    "version": __version__,
    "description": "Run AutoGPT-style agent graphs on AWS serverless. Authenticate with the X-API-Key header.",
    "security_schemes": {"apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header)},
    "security": [{"apiKey": []}],
}


def _json(status: int, body: Any) -> Response[Any]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=json.dumps(body, default=str))


def _ok(model: Any, status: int = 200) -> Response[Any]:
    # the model itself: Powertools validates it against the route's response model, then serializes it
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=model)


def _check_id(what: str, ident: str) -> None:
    if not ID_PATTERN.match(ident):
        raise not_found(what, ident[:100])


def _encode_cursor(key: dict[str, Any] | None) -> str | None:
    if not key:
        return None
    return base64.urlsafe_b64encode(json.dumps(deserialize_item(key)).encode()).decode()


CURSOR_KEYS = frozenset({"PK", "SK", "GSI1PK", "GSI1SK"})


def _decode_cursor(cursor: str | None, partition: str) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(raw, dict) or set(raw) != CURSOR_KEYS or raw.get("GSI1PK") != partition:
            raise ValueError("not a key of this listing")
        if not all(isinstance(v, str) and v for v in raw.values()):
            raise ValueError("not a key")
        return {k: serialize(v) for k, v in raw.items()}
    except (ValueError, binascii.Error, UnicodeError) as exc:
        raise invalid("invalid cursor: pass back the next_cursor of the previous page", {"cursor": cursor}) from exc


USER_CONTEXT_KEY = "agentflow_user_id"


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
    return app.resolve(prepare_event(event), context)


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
    app.enable_swagger(path="/docs", **OPENAPI)
    store = engine.store

    def user() -> str:
        # set by `handle` from the API key, before Powertools validates anything (see `handle`)
        return str(app.current_event.raw_event["requestContext"]["authorizer"][USER_CONTEXT_KEY])

    # -- cross-cutting: auth, body limit, error shapes

    app._agentflow_engine = engine  # type: ignore[attr-defined]  # `handle` and contract tests reach it here

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

    # -- helpers over the store, all scoped to the caller

    def graph_head(graph_id: str) -> Item:
        _check_id("graph", graph_id)
        head = store.get_graph_head(user(), graph_id)
        if head is None:
            raise not_found("graph", graph_id)
        return head

    def load(graph_id: str, version: int) -> ValidGraph:
        try:
            return engine.load_graph(user(), graph_id, version)
        except GraphNotFound as exc:
            raise not_found("graph version", f"{graph_id}@{version}") from exc

    def graph_out(head: Item, version: int | None = None) -> m.GraphOut:
        shown = version or int(head["active_version"])
        if shown > int(head["latest_version"]):
            raise not_found("graph version", f"{head['graph_id']}@{shown}")
        graph = load(str(head["graph_id"]), shown)
        return m.GraphOut(
            graph_id=str(head["graph_id"]),
            name=str(head.get("name", "")),
            active_version=int(head["active_version"]),
            latest_version=int(head["latest_version"]),
            created_at=head.get("created_at"),
            updated_at=head.get("updated_at"),
            version=shown,
            graph=json.loads(graph.graph.to_json()),
            input_names=graph.input_names,
            required_inputs=graph.required_input_names,
            output_names=graph.output_names,
        )

    def owned_execution(execution_id: str) -> Item:
        _check_id("execution", execution_id)
        execution = store.get_execution(execution_id)
        if execution is None or execution.get("user_id") != user():
            raise not_found("execution", execution_id)
        return execution

    # -- routes

    @app.get("/openapi.json", summary="The OpenAPI document of this API", include_in_schema=False)
    def openapi() -> Response[Any]:
        return Response(200, content_types.APPLICATION_JSON, app.get_openapi_json_schema(**OPENAPI))

    @app.get("/blocks", summary="Every block with its input and output JSON schemas", responses=ok(m.BlockList))
    def list_blocks() -> m.BlockList:
        return m.BlockList(blocks=[m.BlockInfo(**b.info()) for b in all_blocks()])

    @app.post(
        "/graphs",
        summary="Create a graph (version 1)",
        responses={201: _response("Created", m.GraphOut), **ERRORS},
    )
    def create_graph(graph: m.GraphIn) -> Response[m.GraphOut]:
        valid = validate_graph(graph.model_dump(exclude_none=True))
        graph_id, _ = engine.register_graph(user(), valid)
        return _ok(graph_out(graph_head(graph_id)), 201)

    @app.get("/graphs", summary="Your graphs", responses=ok(m.GraphList))
    def list_graphs() -> m.GraphList:
        heads = sorted(store.list_graph_heads(user()), key=lambda h: str(h.get("created_at", "")), reverse=True)
        return m.GraphList(
            graphs=[
                m.GraphSummary(
                    graph_id=str(h["graph_id"]),
                    name=str(h.get("name", "")),
                    active_version=int(h["active_version"]),
                    latest_version=int(h["latest_version"]),
                    created_at=h.get("created_at"),
                    updated_at=h.get("updated_at"),
                )
                for h in heads
            ]
        )

    @app.get("/graphs/<graph_id>", summary="A graph (its active version, or ?version=N)", responses=ok(m.GraphOut))
    def get_graph(graph_id: str, version: Annotated[int | None, Query(ge=1, le=1_000_000)] = None) -> m.GraphOut:
        return graph_out(graph_head(graph_id), version)

    @app.put("/graphs/<graph_id>", summary="Save a new version of a graph and make it active", responses=ok(m.GraphOut))
    def update_graph(graph_id: str, graph: m.GraphIn) -> m.GraphOut:
        graph_head(graph_id)
        valid = validate_graph(graph.model_dump(exclude_none=True))
        engine.register_graph(user(), valid, graph_id=graph_id)
        return graph_out(graph_head(graph_id))

    @app.delete(
        "/graphs/<graph_id>",
        summary="Delete a graph (its executions stay readable; runs in flight finish)",
        responses=ok(m.Deleted),
    )
    def delete_graph(graph_id: str) -> m.Deleted:
        _check_id("graph", graph_id)
        if not store.delete_graph(user(), graph_id):
            raise not_found("graph", graph_id)
        return m.Deleted(graph_id=graph_id, deleted=True)

    @app.get("/graphs/<graph_id>/versions", summary="The versions of a graph", responses=ok(m.VersionList))
    def list_versions(graph_id: str) -> m.VersionList:
        head = graph_head(graph_id)
        versions = store.list_graph_versions(user(), graph_id)
        return m.VersionList(
            graph_id=graph_id,
            versions=[
                m.VersionInfo(
                    version=int(v["version"]),
                    created_at=v.get("created_at"),
                    active=int(v["version"]) == int(head["active_version"]),
                )
                for v in versions
            ],
        )

    @app.put(
        "/graphs/<graph_id>/versions/active", summary="Choose which version runs by default", responses=ok(m.GraphOut)
    )
    def set_active(graph_id: str, body: m.ActiveVersionIn) -> m.GraphOut:
        graph_head(graph_id)
        if not store.set_active_version(user(), graph_id, body.version).won:
            raise not_found("graph version", f"{graph_id}@{body.version}")
        return graph_out(graph_head(graph_id))

    @app.post(
        "/graphs/<graph_id>/execute",
        summary="Start an execution (202); an Idempotency-Key header returns the same execution on a repeat",
        responses={
            202: {"description": "Started", "content": {"application/json": {"model": m.ExecutionStarted}}},
            **ERRORS,
        },
    )
    def execute(
        graph_id: str,
        body: m.ExecuteIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response[m.ExecutionStarted]:
        head = graph_head(graph_id)
        version = body.version or int(head["active_version"])
        load(graph_id, version)
        key = idempotency_key or app.current_event.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        scoped = f"graph:{graph_id}:{key}" if key is not None else None  # the same key on two graphs: two runs
        started = engine.start_execution(user(), graph_id, version, body.inputs, idempotency_key=scoped)
        execution = store.get_execution(started.execution_id) or {}
        return _ok(
            m.ExecutionStarted(
                execution_id=started.execution_id,
                graph_id=str(execution.get("graph_id", graph_id)),
                graph_version=int(execution.get("graph_version", version)),
                status=str(execution.get("status", "QUEUED")),
                created=started.created,
            ),
            202,
        )

    @app.get(
        "/executions/<execution_id>", summary="Status, outputs, stats and node executions", responses=ok(m.ExecutionOut)
    )
    def get_execution(execution_id: str) -> m.ExecutionOut:
        execution = owned_execution(execution_id)
        try:
            output_names = load(str(execution["graph_id"]), int(execution["graph_version"])).output_names
        except ApiError:
            output_names = []  # the graph was deleted; the execution stays readable
        report = execution_report(store, execution_id, output_names)
        if report is None:
            raise not_found("execution", execution_id)
        return m.ExecutionOut.model_validate(report)

    @app.get(
        "/graphs/<graph_id>/executions", summary="Executions of a graph, newest first", responses=ok(m.ExecutionList)
    )
    def list_executions(
        graph_id: str,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> m.ExecutionList:
        graph_head(graph_id)
        try:
            start = _decode_cursor(cursor, keys.executions_by_graph(user(), graph_id))
            items, last = store.list_executions(user(), graph_id, limit, start)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ValidationException":
                raise invalid("invalid cursor: pass back the next_cursor of the previous page") from exc
            raise
        return m.ExecutionList(
            executions=[
                m.ExecutionSummary(
                    execution_id=str(i["execution_id"]),
                    graph_id=str(i["graph_id"]),
                    graph_version=int(i["graph_version"]),
                    status=str(i["status"]),
                    error=i.get("error"),
                    created_at=i.get("created_at"),
                    ended_at=i.get("ended_at"),
                )
                for i in items
            ],
            next_cursor=_encode_cursor(last),
        )

    @app.post(
        "/executions/<execution_id>/stop",
        summary="Stop a run (409 when it already ended)",
        responses=ok(m.StatusOut, CONFLICT),
    )
    def stop(execution_id: str) -> m.StatusOut:
        owned_execution(execution_id)
        result = engine.stop(execution_id)
        current = result.status or "UNKNOWN"
        if not result.won:
            raise conflict(f"cannot stop an execution that is {current}", {"status": current})
        return m.StatusOut(execution_id=execution_id, status=current)

    @app.post(
        "/executions/<execution_id>/resume",
        summary="Resume a stopped run (409 unless TERMINATED)",
        responses=ok(m.StatusOut, CONFLICT),
    )
    def resume(execution_id: str) -> m.StatusOut:
        owned_execution(execution_id)
        result = engine.resume(execution_id)
        current = result.status or "UNKNOWN"
        if not result.won:
            raise conflict(
                f"cannot resume an execution that is {current}; only {ExecutionStatus.TERMINATED.value} runs resume",
                {"status": current},
            )
        return m.StatusOut(execution_id=execution_id, status=current)

    # -- webhooks (the ingress itself is WebhookFunction: POST /webhooks/{webhook_id}, no API key)

    def webhook_url(webhook_id: str) -> str:
        event = app.current_event
        context = event.request_context
        host = event.headers.get("Host") or event.headers.get("host") or context.domain_name or "localhost"
        scheme = event.headers.get("X-Forwarded-Proto") or event.headers.get("x-forwarded-proto") or "https"
        stage = f"/{context.stage}" if "execute-api" in host and context.stage else ""
        return f"{scheme}://{host}{stage}/webhooks/{webhook_id}"

    def trigger_of(graph_id: str) -> tuple[str, str]:
        head = graph_head(graph_id)
        graph = load(graph_id, int(head["active_version"]))
        node = graph.trigger_node
        if node is None:
            raise invalid(
                "this graph has no trigger block: add a GenericWebhookTriggerBlock or GithubPullRequestTriggerBlock",
                {"graph_id": graph_id},
            )
        return node.id, str(getattr(graph.block(node.id), "webhook_provider", "generic"))

    @app.post(
        "/graphs/<graph_id>/webhooks",
        summary="Create the webhook that starts this graph; the secret is shown only here",
        responses={201: _response("Created", m.WebhookCreated), **ERRORS},
    )
    def create_webhook(graph_id: str) -> Response[m.WebhookCreated]:
        node_id, provider = trigger_of(graph_id)
        webhook_id, secret = new_webhook_id(), new_secret()
        store.put_webhook(
            {
                "webhook_id": webhook_id,
                "user_id": user(),
                "graph_id": graph_id,
                "node_id": node_id,
                "provider": provider,
                "secret": secret,
            }
        )
        created = m.WebhookCreated(
            webhook_id=webhook_id, url=webhook_url(webhook_id), secret=secret, provider=provider, node_id=node_id
        )
        return _ok(created, 201)

    @app.get(
        "/graphs/<graph_id>/webhooks", summary="The graph's webhooks (without secrets)", responses=ok(m.WebhookList)
    )
    def list_webhooks(graph_id: str) -> m.WebhookList:
        graph_head(graph_id)
        return m.WebhookList(
            graph_id=graph_id,
            webhooks=[
                m.WebhookInfo(
                    webhook_id=str(w["webhook_id"]),
                    url=webhook_url(str(w["webhook_id"])),
                    provider=str(w.get("provider", "generic")),
                    node_id=str(w.get("node_id", "")),
                    created_at=w.get("created_at"),
                )
                for w in store.list_webhooks(user(), graph_id)
            ],
        )

    @app.delete("/graphs/<graph_id>/webhooks/<webhook_id>", summary="Delete a webhook", responses=ok(m.WebhookDeleted))
    def delete_webhook(graph_id: str, webhook_id: str) -> m.WebhookDeleted:
        _check_id("graph", graph_id)
        _check_id("webhook", webhook_id)
        if not store.delete_webhook(user(), graph_id, webhook_id):
            raise not_found("webhook", webhook_id)
        return m.WebhookDeleted(webhook_id=webhook_id, deleted=True)

    @app.post(
        "/graphs/<graph_id>/webhooks/<webhook_id>/rotate",
        summary="Issue a new secret for a webhook (the old one stops working at once)",
        responses=ok(m.WebhookCreated),
    )
    def rotate_webhook(graph_id: str, webhook_id: str) -> m.WebhookCreated:
        _check_id("graph", graph_id)
        _check_id("webhook", webhook_id)
        existing = store.get_webhook(webhook_id)
        secret = new_secret()
        if existing is None or not store.rotate_webhook_secret(user(), graph_id, webhook_id, secret):
            raise not_found("webhook", webhook_id)
        return m.WebhookCreated(
            webhook_id=webhook_id,
            url=webhook_url(webhook_id),
            secret=secret,
            provider=str(existing.get("provider", "generic")),
            node_id=str(existing.get("node_id", "")),
        )

    # -- schedules

    @app.post(
        "/graphs/<graph_id>/schedules",
        summary="Run a graph on a 5-field crontab in a timezone (EventBridge Scheduler)",
        responses={201: _response("Created", m.ScheduleOut), **ERRORS},
    )
    def create_schedule_route(graph_id: str, body: m.ScheduleIn) -> Response[m.ScheduleOut]:
        head = graph_head(graph_id)
        try:
            item = create_schedule(
                engine,
                scheduler_port(),
                user(),
                graph_id,
                int(head["active_version"]),
                body.name,
                body.cron,
                body.timezone,
                body.inputs,
                body.graph_version,
            )
        except ScheduleError as exc:
            raise invalid(str(exc), [{"field": exc.field, "message": str(exc)}]) from exc
        return _ok(m.ScheduleOut.model_validate(schedule_view(item, engine.store.clock())), 201)

    @app.get("/schedules", summary="Your schedules with their next run times", responses=ok(m.ScheduleList))
    def list_schedules() -> m.ScheduleList:
        items = sorted(store.list_schedules(user()), key=lambda i: str(i.get("created_at", "")), reverse=True)
        now = engine.store.clock()
        return m.ScheduleList(schedules=[m.ScheduleOut.model_validate(schedule_view(i, now)) for i in items])

    @app.delete("/schedules/<schedule_id>", summary="Delete a schedule", responses=ok(m.ScheduleDeleted))
    def delete_schedule_route(schedule_id: str) -> m.ScheduleDeleted:
        _check_id("schedule", schedule_id)
        if not delete_schedule(engine, scheduler_port(), user(), schedule_id):
            raise not_found("schedule", schedule_id)
        return m.ScheduleDeleted(schedule_id=schedule_id, deleted=True)

    @app.get("/executions/<execution_id>/events", summary="The status history, oldest first", responses=ok(m.EventList))
    def events(execution_id: str) -> m.EventList:
        execution = owned_execution(execution_id)
        history = [m.StatusChange(status=h["status"], at=h.get("at")) for h in execution.get("history", [])]
        return m.EventList(execution_id=execution_id, events=history)

    return app
