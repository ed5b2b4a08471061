"""The HTTP API: routes on Powertools' APIGatewayRestResolver, with pydantic models, so the OpenAPI document is
generated from the code. `app` builds the resolver from one router per resource (`graphs`, `executions`, `webhooks`,
`schedules`, sharing `common`); `ingress` is the webhook ingress of WebhookFunction."""
