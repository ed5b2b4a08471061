"""WebhookFunction: the public, signed webhook ingress `POST /webhooks/{webhook_id}` (no API key).
Thin: the route lives in agentflow.api.ingress, the checks in agentflow.triggers.webhooks."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentflow.api.app import resolve
from agentflow.api.ingress import build_ingress
from agentflow.runtime import current_runtime

RUNTIME = current_runtime()
logger = RUNTIME.logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
ENGINE = RUNTIME.engine
app = build_ingress(ENGINE)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
