"""Scheduled runs (README, "Scheduled runs"): a 5-field crontab and a timezone, converted to an EventBridge
Scheduler schedule that invokes ScheduledRunFunction with `{schedule_id, scheduled_time}`. One execution starts
per (schedule, scheduled time), however often the function is invoked for it. The local stack fires the same
stored schedules."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import boto3
from botocore.exceptions import ClientError

from agentflow.config import Settings
from agentflow.errors import ConfigurationError, InvalidInput
from agentflow.executor import Engine, GraphNotFound
from agentflow.graph import GraphValidationError, Problem, validate_inputs
from agentflow.store import Item
from agentflow.triggers.cron import CronError, next_runs, parse_schedule

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

logger = logging.getLogger(__name__)

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"  # Scheduler substitutes the fire time into the input


class ScheduleError(InvalidInput):
    """A schedule that cannot be created as asked; the message names the field at fault."""

    def __init__(self, message: str, field: str, details: Any = None) -> None:
        super().__init__(message)
        self.field = field
        self.details = details


class SchedulerPort(Protocol):
    """Where schedules fire from: EventBridge Scheduler when deployed, the local stack's own loop locally."""

    def create(self, schedule_id: str, aws_expression: str, timezone: str) -> None: ...
    def delete(self, schedule_id: str) -> None: ...
    def disable(self, schedule_id: str) -> None: ...


class LocalSchedulerPort:
    """Nothing to do: the local stack reads enabled schedules from the table and fires them itself."""

    def create(self, schedule_id: str, aws_expression: str, timezone: str) -> None:
        return None

    def delete(self, schedule_id: str) -> None:
        return None

    def disable(self, schedule_id: str) -> None:
        return None


@dataclass
class EventBridgeSchedulerPort:
    client: EventBridgeSchedulerClient
    group: str
    target_arn: str
    role_arn: str

    def create(self, schedule_id: str, aws_expression: str, timezone: str) -> None:
        self.client.create_schedule(
            Name=schedule_id,
            GroupName=self.group,
            ScheduleExpression=aws_expression,
            ScheduleExpressionTimezone=timezone,
            FlexibleTimeWindow={"Mode": "OFF"},
            State="ENABLED",
            Target={
                "Arn": self.target_arn,
                "RoleArn": self.role_arn,
                "Input": json.dumps({"schedule_id": schedule_id, "scheduled_time": SCHEDULED_TIME}),
                "RetryPolicy": {"MaximumRetryAttempts": 10, "MaximumEventAgeInSeconds": 3600},
            },
        )

    def delete(self, schedule_id: str) -> None:
        try:
            self.client.delete_schedule(Name=schedule_id, GroupName=self.group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    def disable(self, schedule_id: str) -> None:
        try:
            current = self.client.get_schedule(Name=schedule_id, GroupName=self.group)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return
            raise
        self.client.update_schedule(
            Name=schedule_id,
            GroupName=self.group,
            ScheduleExpression=current["ScheduleExpression"],
            ScheduleExpressionTimezone=current.get("ScheduleExpressionTimezone", "UTC"),
            FlexibleTimeWindow=current["FlexibleTimeWindow"],
            Target=current["Target"],
            State="DISABLED",
        )


def scheduler_for(settings: Settings) -> SchedulerPort:
    if settings.scheduler_mode == "local":
        return LocalSchedulerPort()
    if not settings.schedule_group_name:
        raise ConfigurationError("SCHEDULE_GROUP_NAME is not set (see template.yaml)")
    return EventBridgeSchedulerPort(
        boto3.client("scheduler"),
        group=settings.schedule_group_name,
        # the run function itself only disables schedules, which keeps their stored target and role
        target_arn=settings.scheduled_run_function_arn,
        role_arn=settings.scheduler_role_arn,
    )


def schedule_view(item: Item, now: float, count: int = 5) -> dict[str, Any]:
    """A schedule as the API shows it, with its next run times after `now` (epoch seconds; none when disabled)."""
    upcoming: list[str] = []
    if item.get("enabled", True):
        after = datetime.fromtimestamp(now, UTC)
        upcoming = [t.isoformat() for t in next_runs(str(item["cron"]), str(item["timezone"]), after, count)]
    return {
        "schedule_id": item["schedule_id"],
        "name": item.get("name", ""),
        "cron": item["cron"],
        "timezone": item["timezone"],
        "aws_expression": item.get("aws_expression"),
        "graph_id": item["graph_id"],
        "graph_version": item.get("graph_version"),
        "inputs": json.loads(item.get("inputs") or "{}"),
        "enabled": bool(item.get("enabled", True)),
        "disabled_reason": item.get("disabled_reason"),
        "created_at": item.get("created_at"),
        "next_runs": upcoming,
    }


def create_schedule(
    engine: Engine,
    port: SchedulerPort,
    user_id: str,
    graph_id: str,
    active_version: int,
    name: str,
    cron: str,
    timezone: str,
    inputs: Mapping[str, Any],
    graph_version: int | None,
) -> Item:
    """Validate graph, inputs and crontab now, store the schedule, then create it in the scheduler."""
    version = graph_version or active_version
    try:
        graph = engine.load_graph(user_id, graph_id, version)
    except GraphNotFound as exc:
        raise ScheduleError(f"graph {graph_id} has no version {version}", "graph_version") from exc
    if graph.trigger_node is not None:
        raise ScheduleError("this graph starts only from its webhook; it cannot be scheduled", "graph_id")
    validate_inputs(graph, inputs)  # GraphValidationError names each input
    try:
        inputs_json = json.dumps(dict(inputs), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GraphValidationError([Problem(f"inputs are not JSON: {exc}")], what="inputs") from exc
    try:
        parsed = parse_schedule(cron, timezone)
    except CronError as exc:
        raise ScheduleError(str(exc), "cron" if "zone" not in str(exc).lower() else "timezone") from exc
    schedule_id = uuid.uuid4().hex
    item: Item = {
        "schedule_id": schedule_id,
        "user_id": user_id,
        "graph_id": graph_id,
        "graph_version": graph_version,  # None: whatever version is active when it fires
        "name": name,
        "cron": parsed.cron,
        "timezone": parsed.timezone,
        "aws_expression": parsed.aws_expression,
        "inputs": inputs_json,
    }
    engine.store.put_schedule(item)
    try:
        port.create(schedule_id, parsed.aws_expression, parsed.timezone)
    except Exception:
        engine.store.delete_schedule(user_id, schedule_id)  # no schedule without its trigger, nor the reverse
        raise
    stored = engine.store.get_schedule(schedule_id)
    assert stored is not None
    return stored


def delete_schedule(engine: Engine, port: SchedulerPort, user_id: str, schedule_id: str) -> bool:
    existing = engine.store.get_schedule(schedule_id)
    if existing is None or existing.get("user_id") != user_id:
        return False
    port.delete(schedule_id)
    return engine.store.delete_schedule(user_id, schedule_id)


def _disable(engine: Engine, port: SchedulerPort, schedule_id: str, reason: str) -> dict[str, Any]:
    logger.warning("schedule %s disabled: %s", schedule_id, reason)
    engine.store.disable_schedule(schedule_id, reason)
    port.disable(schedule_id)
    return {"started": False, "schedule_id": schedule_id, "reason": reason}


def run_scheduled(engine: Engine, port: SchedulerPort, schedule_id: str, scheduled_time: str) -> dict[str, Any]:
    """Start the run of one (schedule, scheduled time); a repeat for the same time finds the same execution."""
    schedule = engine.store.get_schedule(schedule_id)
    if schedule is None:
        logger.warning("schedule %s fired but no longer exists", schedule_id)
        return {"started": False, "schedule_id": schedule_id, "reason": "the schedule was deleted"}
    if not schedule.get("enabled", True):
        return {"started": False, "schedule_id": schedule_id, "reason": "the schedule is disabled"}
    user_id, graph_id = str(schedule["user_id"]), str(schedule["graph_id"])
    head = engine.store.get_graph_head(user_id, graph_id)
    if head is None:
        return _disable(engine, port, schedule_id, f"its graph {graph_id} was deleted")
    version = int(schedule.get("graph_version") or head.active_version)
    try:
        started = engine.start_execution(
            user_id,
            graph_id,
            version,
            json.loads(schedule.get("inputs") or "{}"),
            idempotency_key=f"schedule:{schedule_id}:{scheduled_time}",
        )
    except GraphNotFound:
        return _disable(engine, port, schedule_id, f"version {version} of graph {graph_id} was deleted")
    except GraphValidationError as exc:
        return _disable(engine, port, schedule_id, f"its graph no longer accepts the stored inputs: {exc}")
    return {
        "started": True,
        "schedule_id": schedule_id,
        "scheduled_time": scheduled_time,
        "execution_id": started.execution_id,
        "created": started.created,
    }
