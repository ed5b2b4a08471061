"""The execution routes: start a run of a graph, read it, list a graph's runs, stop and resume a run, and its status
history (README.md, "The HTTP API")."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import CONFLICT, ERRORS, Deps, _ok, _response, ok
from agentflow.api.errors import ApiError, conflict, invalid, not_found
from agentflow.executor.redrive import RedriveRefused
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import InvalidCursor
from agentflow.store.slots import SlotsFull

MAX_IDEMPOTENCY_KEY = 256


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()
    _start_routes(r, deps)
    _read_routes(r, deps)
    _control_routes(r, deps)
    return r


def _start_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.post(
        "/graphs/<graph_id>/execute",
        summary="Start an execution (202); an Idempotency-Key header returns the same execution on a repeat",
        responses={202: _response("Started", m.ExecutionStarted), **ERRORS},
    )
    def execute(
        graph_id: str,
        body: m.ExecuteIn,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Response[m.ExecutionStarted]:
        head = deps.graph_head(graph_id)
        version = body.version or head.active_version
        deps.load(graph_id, version)
        key = idempotency_key or r.current_event.headers.get("Idempotency-Key")
        if key is not None and not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
            raise invalid(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters")
        scoped = f"graph:{graph_id}:{key}" if key is not None else None  # the same key on two graphs: two runs
        started = deps.engine.start_execution(deps.user(), graph_id, version, body.inputs, idempotency_key=scoped)
        execution = deps.store.get_execution(started.execution_id)
        return _ok(
            m.ExecutionStarted(
                execution_id=started.execution_id,
                graph_id=execution.graph_id if execution else graph_id,
                graph_version=execution.graph_version if execution else version,
                status=execution.status.value if execution else ExecutionStatus.QUEUED.value,
                created=started.created,
            ),
            202,
        )


def _read_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.get(
        "/executions/<execution_id>", summary="Status, outputs, stats and node executions", responses=ok(m.ExecutionOut)
    )
    def get_execution(execution_id: str) -> m.ExecutionOut:
        execution = deps.owned_execution(execution_id)
        try:
            output_names = deps.load(execution.graph_id, execution.graph_version).output_names
        except ApiError:
            output_names = []  # the graph was deleted; the execution stays readable
        report = execution_report(deps.store, execution_id, output_names)
        if report is None:
            raise not_found("execution", execution_id)
        return m.ExecutionOut.model_validate(report)

    @r.get(
        "/graphs/<graph_id>/executions", summary="Executions of a graph, newest first", responses=ok(m.ExecutionList)
    )
    def list_executions(
        graph_id: str,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
        cursor: Annotated[str | None, Query(max_length=2048)] = None,
    ) -> m.ExecutionList:
        deps.graph_head(graph_id)
        try:
            page = deps.store.list_executions(deps.user(), graph_id, limit, cursor)
        except InvalidCursor as exc:
            raise invalid(str(exc), {"cursor": exc.cursor} if exc.malformed else None) from exc
        return m.ExecutionList(
            executions=[
                m.ExecutionSummary(
                    execution_id=e.execution_id,
                    graph_id=e.graph_id,
                    graph_version=e.graph_version,
                    status=e.status.value,
                    error=e.error,
                    created_at=e.created_at,
                    ended_at=e.ended_at,
                )
                for e in page.executions
            ],
            next_cursor=page.cursor,
        )

    @r.get("/executions/<execution_id>/events", summary="The status history, oldest first", responses=ok(m.EventList))
    def events(execution_id: str) -> m.EventList:
        execution = deps.owned_execution(execution_id)
        history = [m.StatusChange(status=h["status"], at=h.get("at")) for h in execution.history]
        return m.EventList(execution_id=execution_id, events=history)


def _control_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.post(
        "/executions/<execution_id>/stop",
        summary="Stop a run (409 when it already ended)",
        responses=ok(m.StatusOut, CONFLICT),
    )
    def stop(execution_id: str) -> m.StatusOut:
        deps.owned_execution(execution_id)
        result = deps.engine.stop(execution_id)
        current = result.status or "UNKNOWN"
        if not result.won:
            raise conflict(f"cannot stop an execution that is {current}", {"status": current})
        return m.StatusOut(execution_id=execution_id, status=current)

    @r.post(
        "/executions/<execution_id>/resume",
        summary="Resume a stopped run (409 unless TERMINATED, or when its graph is at its concurrency limit)",
        responses=ok(m.StatusOut, CONFLICT),
    )
    def resume(execution_id: str) -> m.StatusOut:
        deps.owned_execution(execution_id)
        try:
            result = deps.engine.resume(execution_id)
        except SlotsFull as full:
            raise conflict(str(full), {"status": full.status, "max_concurrent_runs": full.cap}) from None
        current = result.status or "UNKNOWN"
        if not result.won:
            raise conflict(
                f"cannot resume an execution that is {current}; only {ExecutionStatus.TERMINATED.value} runs resume",
                {"status": current},
            )
        return m.StatusOut(execution_id=execution_id, status=current)

    @r.post(
        "/executions/<execution_id>/redrive",
        summary="Re-run a FAILED run from where it failed (409 when it cannot be redriven, saying why)",
        responses=ok(m.StatusOut, CONFLICT),
    )
    def redrive(execution_id: str) -> m.StatusOut:
        deps.owned_execution(execution_id)
        try:
            result = deps.engine.redrive(execution_id)
        except RedriveRefused as refused:
            raise conflict(str(refused), {"status": refused.status}) from None
        return m.StatusOut(execution_id=execution_id, status=result.status or ExecutionStatus.RUNNING.value)
