"""Schedules on the local stack: the template's fixed-rate ones (`rate(1 minute)`, the sweeper) and the users'
cron schedules stored in the table, each fired through the same handler as in AWS."""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentflow.runtime import Runtime
from agentflow.triggers.cron import next_runs
from agentflow_local.lambda_runtime import FakeLambdaContext, Handler, load_handler
from agentflow_local.template import AppTemplate, FunctionSpec, ScheduleEvent

logger = logging.getLogger(__name__)
RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """Seconds between firings of `rate(N unit)`; None for anything else (cron, at)."""
    match = RATE.match(expression.strip())
    if not match:
        return None
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass
class _Job:
    spec: FunctionSpec
    schedule: ScheduleEvent
    every: float
    handler: Handler


class _Loop:
    """A daemon thread that calls `_step` every `_interval()` seconds until stopped."""

    name = "local-scheduler"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _interval(self) -> float:
        raise NotImplementedError

    def _step(self) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self._interval()):
            try:
                self._step()
            except Exception:  # DynamoDB Local restarting, a bad schedule...: try again next time
                logger.exception("%s failed; trying again", self.name)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)


class RateScheduler(_Loop):
    """Invokes each enabled rate schedule every period. `speedup` shortens periods (tests)."""

    name = "local-rate-scheduler"

    def __init__(self, template: AppTemplate, speedup: float = 1.0, runtime: Runtime | None = None) -> None:
        super().__init__()
        self.jobs: list[_Job] = []
        for spec, schedule in template.schedules():
            every = rate_seconds(schedule.expression)
            if schedule.enabled and every is not None:
                self.jobs.append(_Job(spec, schedule, every / speedup, load_handler(spec, runtime)))
        self._tick = min((job.every for job in self.jobs), default=60.0) / 4
        self._elapsed = 0.0
        self._due = {id(job): job.every for job in self.jobs}
        self.fired = 0

    def start(self) -> RateScheduler:
        if self.jobs:
            self._thread.start()
        return self

    def _interval(self) -> float:
        return self._tick

    def _step(self) -> None:
        self._elapsed += self._tick
        for job in self.jobs:
            if self._elapsed >= self._due[id(job)]:
                self._due[id(job)] = self._elapsed + job.every
                self._fire(job)

    def _fire(self, job: _Job) -> None:
        event: dict[str, Any] = json.loads(job.schedule.input) if job.schedule.input else {}
        try:
            job.handler(event, FakeLambdaContext.for_function(job.spec))
            self.fired += 1
        except Exception:  # a failing schedule must not stop the others
            logger.exception("scheduled %s.%s failed", job.spec.logical_id, job.schedule.name)


class CronScheduler(_Loop):
    """Fires users' stored schedules on the local stack, on time in their timezones, through the same
    ScheduledRunFunction handler EventBridge Scheduler invokes when deployed, on the runtime's clock (the one that
    stamps a schedule's `created_at`), so a test that sets the runtime's clock controls time completely."""

    def __init__(
        self,
        template: AppTemplate,
        runtime: Runtime,
        function: str = "ScheduledRunFunction",
        poll_seconds: float = 1.0,
    ) -> None:
        super().__init__()
        self.spec = template.functions[function]
        self.handler = load_handler(self.spec, runtime)
        self.store = runtime.engine.store
        self.clock = runtime.clock
        self.poll_seconds = poll_seconds
        self.started_at = datetime.fromtimestamp(self.clock(), UTC)
        self._checked: dict[str, datetime] = {}  # schedule id -> fire times up to here are done
        self.fired: list[dict[str, Any]] = []

    name = "local-cron-scheduler"

    def start(self) -> CronScheduler:
        self._thread.start()
        return self

    def _interval(self) -> float:
        return self.poll_seconds

    def _step(self) -> None:
        self.tick()

    def tick(self) -> list[dict[str, Any]]:
        """Fire every enabled schedule whose fire times fell between its last check and the clock's now."""
        current = datetime.fromtimestamp(self.clock(), UTC)
        results = []
        for schedule in self.store.list_enabled_schedules():
            schedule_id = str(schedule["schedule_id"])
            created = datetime.fromisoformat(str(schedule["created_at"]).replace("Z", "+00:00"))
            since = self._checked.get(schedule_id) or max(created, self.started_at)
            if since >= current:
                continue
            due = [t for t in next_runs(str(schedule["cron"]), str(schedule["timezone"]), since, 60) if t <= current]
            for fire_time in due:
                event = {
                    "schedule_id": schedule_id,
                    "scheduled_time": fire_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                try:
                    result = self.handler(event, FakeLambdaContext.for_function(self.spec))
                except Exception:
                    logger.exception("scheduled run of %s at %s failed", schedule_id, event["scheduled_time"])
                    continue
                results.append(result)
            self._checked[schedule_id] = current
        self.fired.extend(results)
        return results
