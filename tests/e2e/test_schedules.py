"""Schedules on the local stack: created through the API, fired by the local cron scheduler on a clock the test
controls, through the same ScheduledRunFunction handler EventBridge Scheduler invokes in AWS.

The stack's one clock stamps every schedule and run and drives the scheduler, so each test runs at dates years in
the past, today and years in the future: none depends on the machine's date."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agentflow.api.auth import create_api_key
from agentflow_local.api_gateway import LocalApiGateway
from agentflow_local.dynamodb import DynamoDBLocal
from agentflow_local.scheduler import CronScheduler
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests import graphs

ROOT = Path(__file__).resolve().parents[2]
# 08:59:30 UTC on days far apart; the machine's own date is never read
EPOCHS = [datetime(2003, 2, 11, 8, 59, 30, tzinfo=UTC), datetime(2026, 11, 24, 8, 59, 30, tzinfo=UTC)]
EPOCHS.append(datetime(2071, 6, 30, 8, 59, 30, tzinfo=UTC))


def at(t0: datetime, seconds: float) -> str:
    return (t0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(params=EPOCHS, ids=lambda d: str(d.year))
def world(request: pytest.FixtureRequest, dynamodb_local: DynamoDBLocal) -> Iterator[dict[str, Any]]:
    t0: datetime = request.param
    saved = dict(os.environ)
    clock = {"now": t0.timestamp()}
    config = LocalStackConfig(
        root=ROOT,
        dynamodb_endpoint=dynamodb_local.endpoint,
        table_name=f"t-{uuid.uuid4().hex[:10]}",
        log_level="WARNING",
        clock=lambda: clock["now"],
    )
    try:
        with LocalStack(config) as stack:
            gateway = LocalApiGateway(stack.template, port=0, runtime=stack.runtime).start()
            cron = CronScheduler(stack.template, stack.runtime)
            keys = {user: create_api_key(stack.engine.store, user) for user in ("alice", "bob")}
            try:
                yield {"stack": stack, "gateway": gateway, "cron": cron, "clock": clock, "keys": keys, "t0": t0}
            finally:
                gateway.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def call(world: dict[str, Any], method: str, path: str, user: str = "alice", body: Any = None) -> tuple[int, Any]:
    response = world["gateway"].invoke(
        method, path, headers={"X-API-Key": world["keys"][user]}, body=None if body is None else json.dumps(body)
    )
    return response.status, response.json()


def wait_done(world: dict[str, Any], execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _status, body = call(world, "GET", f"/executions/{execution_id}")
        if body["status"] in ("COMPLETED", "FAILED"):
            return body  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError("execution did not finish")


def make_graph(world: dict[str, Any], graph: dict[str, Any], user: str = "alice") -> str:
    status, body = call(world, "POST", "/graphs", user, graph)
    assert status == 201, body
    return str(body["graph_id"])


def test_schedule_fires_on_time_once_per_time(world: dict[str, Any]) -> None:
    graph_id = make_graph(world, graphs.linear())
    status, created = call(
        world,
        "POST",
        f"/graphs/{graph_id}/schedules",
        body={"name": "every minute", "cron": "* * * * *", "timezone": "UTC", "inputs": {"x": 1}},
    )
    assert status == 201, created
    assert created["aws_expression"].startswith("cron(") and created["enabled"]
    assert len(created["next_runs"]) == 5
    t0 = world["t0"]
    assert created["next_runs"][0] == (t0 + timedelta(seconds=30)).isoformat()
    assert datetime.fromisoformat(created["created_at"].replace("Z", "+00:00")) == t0  # the stack's clock stamped it
    world["clock"]["now"] = t0.timestamp() + 5  # nothing due yet (09:00:00 is 25 s away)
    assert world["cron"].tick() == []
    world["clock"]["now"] = t0.timestamp() + 95  # 09:00 and 09:01 have passed
    fired = world["cron"].tick()
    assert [f["scheduled_time"] for f in fired] == [at(t0, 30), at(t0, 90)]
    assert all(f["started"] and f["created"] for f in fired)
    assert world["cron"].tick() == []  # already fired up to now
    for result in fired:
        assert wait_done(world, result["execution_id"])["outputs"] == {"result": [70.0]}
    # Scheduler may invoke the function more than once for one time: still one execution
    handler, spec = world["cron"].handler, world["cron"].spec
    from agentflow_local.lambda_runtime import FakeLambdaContext

    again = handler(
        {"schedule_id": created["schedule_id"], "scheduled_time": at(t0, 30)},
        FakeLambdaContext.for_function(spec),
    )
    assert again["execution_id"] == fired[0]["execution_id"] and not again["created"]
    status, listed = call(world, "GET", f"/graphs/{graph_id}/executions")
    assert len(listed["executions"]) == 2


def test_schedules_fire_in_their_timezone(world: dict[str, Any]) -> None:
    graph_id = make_graph(world, graphs.linear())
    status, created = call(
        world,
        "POST",
        f"/graphs/{graph_id}/schedules",
        body={"name": "morning in Kolkata", "cron": "30 9 * * *", "timezone": "Asia/Kolkata", "inputs": {"x": 2}},
    )
    assert status == 201, created
    assert created["next_runs"][0].endswith("09:30:00+05:30")
    t0 = world["t0"]
    world["clock"]["now"] = t0.timestamp() + 86_400  # a day later: one firing, 09:30 IST = 04:00 UTC
    fired = world["cron"].tick()
    next_day = (t0 + timedelta(days=1)).strftime("%Y-%m-%d")
    assert [f["scheduled_time"] for f in fired] == [f"{next_day}T04:00:00Z"]


def test_list_and_delete_are_per_user(world: dict[str, Any]) -> None:
    graph_id = make_graph(world, graphs.linear())
    status, created = call(
        world,
        "POST",
        f"/graphs/{graph_id}/schedules",
        body={"name": "weekdays", "cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "inputs": {"x": 1}},
    )
    assert status == 201 and created["aws_expression"] == "cron(0 9 ? * 2-6 *)"
    status, mine = call(world, "GET", "/schedules")
    assert [s["schedule_id"] for s in mine["schedules"]] == [created["schedule_id"]]
    assert mine["schedules"][0]["next_runs"]
    status, theirs = call(world, "GET", "/schedules", user="bob")
    assert theirs["schedules"] == []
    assert call(world, "DELETE", f"/schedules/{created['schedule_id']}", user="bob")[0] == 404
    assert (
        call(world, "POST", f"/graphs/{graph_id}/schedules", user="bob", body={"name": "x", "cron": "* * * * *"})[0]
        == 404
    )
    assert call(world, "DELETE", f"/schedules/{created['schedule_id']}")[0] == 200
    assert call(world, "GET", "/schedules")[1]["schedules"] == []


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"cron": "0 9 1 * 1"}, "day"),  # day-of-month AND day-of-week: EventBridge cannot express the OR
        ({"cron": "61 * * * *"}, "61"),
        ({"cron": "* * * *"}, "5"),
        ({"cron": "* * * * *", "timezone": "Mars/Base"}, "Mars/Base"),
        ({"cron": "* * * * *", "inputs": {}}, "'x'"),
        ({"cron": "* * * * *", "inputs": {"x": 1, "nope": 2}}, "'nope'"),
    ],
)
def test_invalid_schedules_answer_400_naming_the_problem(
    world: dict[str, Any], body: dict[str, Any], fragment: str
) -> None:
    graph_id = make_graph(world, graphs.linear())
    status, answer = call(
        world, "POST", f"/graphs/{graph_id}/schedules", body={"name": "bad", "inputs": {"x": 1}, **body}
    )
    assert status == 400, answer
    assert fragment in json.dumps(answer["error"])
    assert call(world, "GET", "/schedules")[1]["schedules"] == []  # nothing was created


def test_schedule_of_a_deleted_graph_disables_itself(world: dict[str, Any]) -> None:
    graph_id = make_graph(world, graphs.linear())
    status, _created = call(
        world, "POST", f"/graphs/{graph_id}/schedules", body={"name": "n", "cron": "* * * * *", "inputs": {"x": 1}}
    )
    assert status == 201
    assert call(world, "DELETE", f"/graphs/{graph_id}")[0] == 200
    t0 = world["t0"].timestamp()
    world["clock"]["now"] = t0 + 40
    [result] = world["cron"].tick()
    assert not result["started"] and "deleted" in result["reason"]
    schedule = call(world, "GET", "/schedules")[1]["schedules"][0]
    assert not schedule["enabled"] and "deleted" in schedule["disabled_reason"] and schedule["next_runs"] == []
    world["clock"]["now"] = t0 + 200
    assert world["cron"].tick() == []  # disabled schedules no longer fire


def test_webhook_graphs_cannot_be_scheduled(world: dict[str, Any]) -> None:
    graph_id = make_graph(world, json.loads((ROOT / "examples/webhooks/greet_on_webhook.json").read_text()))
    status, answer = call(world, "POST", f"/graphs/{graph_id}/schedules", body={"name": "n", "cron": "* * * * *"})
    assert status == 400 and "webhook" in answer["error"]["message"]
