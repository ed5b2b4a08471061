"""ApiFunction: the HTTP API behind API Gateway. Thin: the resolver lives in agentflow.api.app, the routes in
agentflow.api.graphs, executions, webhooks and schedules."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentflow.api.app import build_app, handle
from agentflow.runtime import current_runtime

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
app = build_app(RUNTIME.engine, RUNTIME.scheduler)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return handle(app, event, context)
