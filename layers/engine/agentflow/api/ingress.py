"""The public, signed webhook ingress `POST /webhooks/{webhook_id}` (no API key), served by WebhookFunction
(README.md, "Webhook-triggered agents"). Thin: the checks live in agentflow.triggers.webhooks."""

from __future__ import annotations

import base64
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types

from agentflow.executor import Engine
from agentflow.triggers.webhooks import handle_delivery


def build_ingress(engine: Engine) -> APIGatewayRestResolver:
    app = APIGatewayRestResolver()

    @app.post("/webhooks/<webhook_id>")
    def deliver(webhook_id: str) -> Response[Any]:
        event = app.current_event
        # The signature covers the bytes as sent: never decode them as text before checking it.
        raw = base64.b64decode(event.body or "") if event.is_base64_encoded else (event.body or "").encode("utf-8")
        answer = handle_delivery(engine, webhook_id, dict(event.headers), raw)
        return Response(answer.status, content_types.APPLICATION_JSON, answer.body)

    return app
