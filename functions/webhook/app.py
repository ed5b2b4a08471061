"""WebhookFunction: the public, signed webhook ingress `POST /webhooks/{webhook_id}` (no API key).
Thin: the checks live in agentflow.triggers.webhooks."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentflow.runtime import current_runtime
from agentflow.triggers.webhooks import handle_delivery

logger = Logger()
copy_config_to_registered_loggers(source_logger=logger, include={"agentflow"})
RUNTIME = current_runtime()
ENGINE = RUNTIME.engine
app = APIGatewayRestResolver()


@app.post("/webhooks/<webhook_id>")
def deliver(webhook_id: str) -> Response[Any]:
    event = app.current_event
    # The signature covers the bytes as sent: never decode them as text before checking it.
    raw = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")
    answer = handle_delivery(ENGINE, webhook_id, dict(event.headers), raw)
    return Response(answer.status, content_types.APPLICATION_JSON, answer.body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
