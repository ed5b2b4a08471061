"""ScheduledRunFunction: invoked by EventBridge Scheduler with `{schedule_id, scheduled_time}`; starts one
execution per (schedule, scheduled time), however often it is invoked for it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

from agentflow.runtime import current_runtime
from agentflow.triggers.schedules import run_scheduled

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
ENGINE = RUNTIME.engine
SCHEDULER = RUNTIME.scheduler()


class ScheduledRun(BaseModel):
    schedule_id: str = Field(min_length=1, max_length=64)
    scheduled_time: str = Field(min_length=1, max_length=64)


@logger.inject_lambda_context(correlation_id_path="schedule_id")
@event_parser(model=ScheduledRun)
def lambda_handler(event: ScheduledRun, context: LambdaContext) -> dict[str, Any]:
    result = run_scheduled(ENGINE, SCHEDULER, event.schedule_id, event.scheduled_time)
    logger.info("scheduled run", extra={"scheduled_run": result})  # nested: keys like "created" clash with LogRecord
    return result
