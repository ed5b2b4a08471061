"""Webhook ingress (README, "Webhook-triggered agents"): GitHub's signature scheme, delivery-id idempotency,
provider event filters.

The secret must be read back to check signatures, so it is stored as is (the table is encrypted at rest) and
shown in full only when the webhook is created or rotated. Signatures are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentflow.blocks.triggers import GithubPullRequestTriggerBlock
from agentflow.executor import Engine, GraphNotFound
from agentflow.graph import GraphValidationError

logger = logging.getLogger(__name__)

# The payload is a node's input and then its outputs (a GitHub trigger yields it whole and in parts), all on one
# 400 KB DynamoDB item: 100 KB keeps that safe. GitHub's pull_request payloads are typically 20-60 KB.
MAX_WEBHOOK_BODY_BYTES = 100_000
SIGNATURE_HEADER = "X-Hub-Signature-256"
DELIVERY_HEADERS = ("X-GitHub-Delivery", "X-Webhook-Delivery")
GITHUB_EVENT_HEADER = "X-GitHub-Event"
WEBHOOK_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_DELIVERY_ID = 200


def new_webhook_id() -> str:
    return uuid.uuid4().hex


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, body: bytes) -> str:
    """GitHub's `X-Hub-Signature-256` value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: dict[str, Any]


def _error(status: int, code: str, message: str, details: Any = None) -> WebhookAnswer:
    return WebhookAnswer(status, {"error": {"code": code, "message": message, "details": details}})


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    return next((v for k, v in headers.items() if k.lower() == lowered), None)


def _github_filter(event: str, payload: Mapping[str, Any], trigger_inputs: dict[str, Any]) -> str | None:
    """Why a GitHub pull-request trigger ignores this delivery (None: it starts a run)."""
    if event != GithubPullRequestTriggerBlock.github_event:
        return f"event {event or '(none)'!r} is not pull_request"
    action = str(payload.get("action", ""))
    repository = str((payload.get("repository") or {}).get("full_name", ""))
    wanted = str(trigger_inputs.get("repo", ""))
    if wanted and repository and repository.lower() != wanted.lower():
        return f"repository {repository!r} is not the trigger's repo {wanted!r}"
    if not GithubPullRequestTriggerBlock.selects(trigger_inputs, action):
        return f"action {action!r} is not selected in events"
    return None


def handle_delivery(engine: Engine, webhook_id: str, headers: Mapping[str, str], body: bytes) -> WebhookAnswer:
    """Answer one webhook delivery. Checks, in order: size (413), webhook (404), signature (401), JSON (400);
    nothing is created before all of them pass. A redelivery (same delivery id) answers the same execution."""
    if len(body) > MAX_WEBHOOK_BODY_BYTES:
        return _error(413, "payload_too_large", f"the body is {len(body)} bytes; the limit is {MAX_WEBHOOK_BODY_BYTES}")
    webhook = engine.store.get_webhook(webhook_id) if WEBHOOK_ID_PATTERN.match(webhook_id) else None
    if webhook is None:
        return _error(404, "not_found", f"webhook {webhook_id[:64]!r} not found")
    if not signature_matches(str(webhook["secret"]), body, _header(headers, SIGNATURE_HEADER)):
        return _error(401, "bad_signature", f"missing or wrong {SIGNATURE_HEADER}: expected sha256=<hex HMAC-SHA256>")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, "invalid_request", f"the body is not valid JSON: {exc}")
    if not isinstance(payload, dict):
        return _error(400, "invalid_request", f"the body must be a JSON object, not {type(payload).__name__}")

    user_id, graph_id = str(webhook["user_id"]), str(webhook["graph_id"])
    head = engine.store.get_graph_head(user_id, graph_id)
    if head is None:
        return _error(404, "not_found", f"the graph of webhook {webhook_id!r} was deleted")
    version = head.active_version
    try:
        graph = engine.load_graph(user_id, graph_id, version)
    except GraphNotFound:
        return _error(404, "not_found", f"the graph of webhook {webhook_id!r} was deleted")
    trigger = graph.trigger_node
    if trigger is None:
        return _error(409, "conflict", "the graph's active version has no trigger block; this webhook cannot start it")

    event = _header(headers, GITHUB_EVENT_HEADER) or ""
    if event == "ping":  # GitHub's hello when a webhook is connected: answer it, start nothing
        return WebhookAnswer(200, {"message": "pong", "webhook_id": webhook_id})
    if graph.block(trigger.id) is GithubPullRequestTriggerBlock:
        reason = _github_filter(event, payload, trigger.input_default)
        if reason is not None:
            return WebhookAnswer(202, {"started": False, "reason": reason})

    delivery = next((d for d in (_header(headers, h) for h in DELIVERY_HEADERS) if d), None)
    if delivery is not None and len(delivery) > MAX_DELIVERY_ID:
        return _error(400, "invalid_request", f"the delivery id is longer than {MAX_DELIVERY_ID} characters")
    key = f"webhook:{webhook_id}:{delivery}" if delivery else None
    try:
        started = engine.start_execution(user_id, graph_id, version, {}, idempotency_key=key, trigger_payload=payload)
    except GraphValidationError as exc:
        return _error(400, "invalid_request", str(exc), [p.to_dict() for p in exc.problems])
    execution = engine.store.get_execution(started.execution_id)
    logger.info("webhook %s started execution %s (delivery %s)", webhook_id, started.execution_id, delivery)
    return WebhookAnswer(
        202,
        {
            "started": True,
            "execution_id": started.execution_id,
            "graph_id": graph_id,
            "graph_version": version,
            "status": execution.status.value if execution else "QUEUED",
            "created": started.created,
        },
    )
