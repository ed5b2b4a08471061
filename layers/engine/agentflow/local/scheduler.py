"""Fires the template's fixed-rate schedules (`rate(1 minute)`, e.g. the sweeper) on the local stack, through the
same handlers. Cron schedules created by users at run time are a separate concern."""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from typing import Any

from agentflow.local.lambda_runtime import FakeLambdaContext, Handler, load_handler
from agentflow.local.template import AppTemplate, FunctionSpec, ScheduleEvent

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


class RateScheduler:
    """One thread that invokes each enabled rate schedule every period. `speedup` shortens periods (tests)."""

    def __init__(self, template: AppTemplate, speedup: float = 1.0) -> None:
        self.jobs: list[_Job] = []
        for spec, schedule in template.schedules():
            every = rate_seconds(schedule.expression)
            if schedule.enabled and every is not None:
                self.jobs.append(_Job(spec, schedule, every / speedup, load_handler(spec)))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="local-rate-scheduler", daemon=True)
        self.fired = 0

    def start(self) -> RateScheduler:
        if self.jobs:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        due = {id(job): job.every for job in self.jobs}
        elapsed = 0.0
        tick = min(job.every for job in self.jobs) / 4
        while not self._stop.wait(tick):
            elapsed += tick
            for job in self.jobs:
                if elapsed >= due[id(job)]:
                    due[id(job)] = elapsed + job.every
                    self._fire(job)

    def _fire(self, job: _Job) -> None:
        event: dict[str, Any] = json.loads(job.schedule.input) if job.schedule.input else {}
        try:
            job.handler(event, FakeLambdaContext.for_function(job.spec))
            self.fired += 1
        except Exception:  # a failing schedule must not stop the others
            logger.exception("scheduled %s.%s failed", job.spec.logical_id, job.schedule.name)
