"""SweeperFunction: runs every minute (EventBridge Scheduler) and moves on whatever a crash left behind."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentflow.runtime import current_runtime

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
ENGINE = RUNTIME.engine
metrics = RUNTIME.metrics("agentflow")


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    report = ENGINE.sweep()
    for name, value in asdict(report).items():
        metrics.add_metric(name=f"Sweep_{name}", unit=MetricUnit.Count, value=value)
    logger.info("sweep done", extra={"sweep": asdict(report)})
    return asdict(report)
