"""The schedule routes: run a graph on a crontab through EventBridge Scheduler, list and delete schedules
(README.md, "Scheduled runs")."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import Deps, _check_id, _ok, created, ok
from agentflow.api.errors import invalid, not_found
from agentflow.triggers.schedules import ScheduleError, create_schedule, delete_schedule, schedule_view


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()
    engine = deps.engine

    @r.post(
        "/graphs/<graph_id>/schedules",
        summary="Run a graph on a 5-field crontab in a timezone (EventBridge Scheduler)",
        responses=created(m.ScheduleOut),
    )
    def create_schedule_route(graph_id: str, body: m.ScheduleIn) -> Response[m.ScheduleOut]:
        head = deps.graph_head(graph_id)
        try:
            item = create_schedule(
                engine,
                deps.scheduler_port(),
                deps.user(),
                graph_id,
                head.active_version,
                body.name,
                body.cron,
                body.timezone,
                body.inputs,
                body.graph_version,
            )
        except ScheduleError as exc:
            raise invalid(str(exc), [{"field": exc.field, "message": str(exc)}]) from exc
        return _ok(m.ScheduleOut.model_validate(schedule_view(item, engine.store.clock())), 201)

    @r.get("/schedules", summary="Your schedules with their next run times", responses=ok(m.ScheduleList))
    def list_schedules() -> m.ScheduleList:
        items = sorted(deps.store.list_schedules(deps.user()), key=lambda i: str(i.get("created_at", "")), reverse=True)
        now = engine.store.clock()
        return m.ScheduleList(schedules=[m.ScheduleOut.model_validate(schedule_view(i, now)) for i in items])

    @r.delete("/schedules/<schedule_id>", summary="Delete a schedule", responses=ok(m.ScheduleDeleted))
    def delete_schedule_route(schedule_id: str) -> m.ScheduleDeleted:
        _check_id("schedule", schedule_id)
        if not delete_schedule(engine, deps.scheduler_port(), deps.user(), schedule_id):
            raise not_found("schedule", schedule_id)
        return m.ScheduleDeleted(schedule_id=schedule_id, deleted=True)

    return r
