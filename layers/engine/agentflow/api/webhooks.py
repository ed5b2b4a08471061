"""The webhook management routes: create, list, delete and rotate the webhooks that start a graph (README.md,
"Webhook-triggered agents"). The signed ingress itself, `POST /webhooks/{webhook_id}` with no API key, is
`agentflow.api.ingress`, served by WebhookFunction."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from agentflow.api import models as m
from agentflow.api.common import Deps, _check_id, _ok, created, ok
from agentflow.api.errors import invalid, not_found
from agentflow.triggers.webhooks import new_secret, new_webhook_id


def router(deps: Deps) -> APIGatewayRouter:
    r = APIGatewayRouter()
    _graph_webhook_routes(r, deps)
    _webhook_routes(r, deps)
    return r


def webhook_url(r: APIGatewayRouter, webhook_id: str) -> str:
    """The public URL of a webhook, from the host and stage this request came in on."""
    event = r.current_event
    context = event.request_context
    host = event.headers.get("Host") or event.headers.get("host") or context.domain_name or "localhost"
    scheme = event.headers.get("X-Forwarded-Proto") or event.headers.get("x-forwarded-proto") or "https"
    stage = f"/{context.stage}" if "execute-api" in host and context.stage else ""
    return f"{scheme}://{host}{stage}/webhooks/{webhook_id}"


def trigger_of(deps: Deps, graph_id: str) -> tuple[str, str]:
    """The trigger node of the graph's active version and its webhook provider."""
    head = deps.graph_head(graph_id)
    graph = deps.load(graph_id, head.active_version)
    node = graph.trigger_node
    if node is None:
        raise invalid(
            "this graph has no trigger block: add a GenericWebhookTriggerBlock or GithubPullRequestTriggerBlock",
            {"graph_id": graph_id},
        )
    return node.id, str(getattr(graph.block(node.id), "webhook_provider", "generic"))


def _graph_webhook_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.post(
        "/graphs/<graph_id>/webhooks",
        summary="Create the webhook that starts this graph; the secret is shown only here",
        responses=created(m.WebhookCreated),
    )
    def create_webhook(graph_id: str) -> Response[m.WebhookCreated]:
        node_id, provider = trigger_of(deps, graph_id)
        webhook_id, secret = new_webhook_id(), new_secret()
        deps.store.put_webhook(
            {
                "webhook_id": webhook_id,
                "user_id": deps.user(),
                "graph_id": graph_id,
                "node_id": node_id,
                "provider": provider,
                "secret": secret,
            }
        )
        answer = m.WebhookCreated(
            webhook_id=webhook_id, url=webhook_url(r, webhook_id), secret=secret, provider=provider, node_id=node_id
        )
        return _ok(answer, 201)

    @r.get("/graphs/<graph_id>/webhooks", summary="The graph's webhooks (without secrets)", responses=ok(m.WebhookList))
    def list_webhooks(graph_id: str) -> m.WebhookList:
        deps.graph_head(graph_id)
        return m.WebhookList(
            graph_id=graph_id,
            webhooks=[
                m.WebhookInfo(
                    webhook_id=str(w["webhook_id"]),
                    url=webhook_url(r, str(w["webhook_id"])),
                    provider=str(w.get("provider", "generic")),
                    node_id=str(w.get("node_id", "")),
                    created_at=w.get("created_at"),
                )
                for w in deps.store.list_webhooks(deps.user(), graph_id)
            ],
        )


def _webhook_routes(r: APIGatewayRouter, deps: Deps) -> None:
    @r.delete("/graphs/<graph_id>/webhooks/<webhook_id>", summary="Delete a webhook", responses=ok(m.WebhookDeleted))
    def delete_webhook(graph_id: str, webhook_id: str) -> m.WebhookDeleted:
        _check_id("graph", graph_id)
        _check_id("webhook", webhook_id)
        if not deps.store.delete_webhook(deps.user(), graph_id, webhook_id):
            raise not_found("webhook", webhook_id)
        return m.WebhookDeleted(webhook_id=webhook_id, deleted=True)

    @r.post(
        "/graphs/<graph_id>/webhooks/<webhook_id>/rotate",
        summary="Issue a new secret for a webhook (the old one stops working at once)",
        responses=ok(m.WebhookCreated),
    )
    def rotate_webhook(graph_id: str, webhook_id: str) -> m.WebhookCreated:
        _check_id("graph", graph_id)
        _check_id("webhook", webhook_id)
        existing = deps.store.get_webhook(webhook_id)
        secret = new_secret()
        if existing is None or not deps.store.rotate_webhook_secret(deps.user(), graph_id, webhook_id, secret):
            raise not_found("webhook", webhook_id)
        return m.WebhookCreated(
            webhook_id=webhook_id,
            url=webhook_url(r, webhook_id),
            secret=secret,
            provider=str(existing.get("provider", "generic")),
            node_id=str(existing.get("node_id", "")),
        )
