"""The API's documentation: the OpenAPI document (`GET /openapi.json`) and Swagger UI (`GET /docs`), both built when
asked for. Powertools' OpenAPI models are slow to import, and its `enable_swagger` imports them when called, so a
resolver that set the page up at start would pay for them in every cold start of ApiFunction (README, "Performance
and cost"); the page is served here with Powertools' own page generator instead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from agentflow import __version__

DESCRIPTION = "Run AutoGPT-style agent graphs on AWS serverless. Authenticate with the X-API-Key header."


def openapi_document(app: APIGatewayRestResolver) -> str:
    """The OpenAPI document of every route the resolver has, as JSON text, with the X-API-Key scheme it requires."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, Server

    return app.get_openapi_json_schema(
        title="agentflow",
        version=__version__,
        description=DESCRIPTION,
        servers=[Server(url=_base_path(app) or "/")],
        security_schemes={"apiKey": APIKey(name="X-API-Key", in_=APIKeyIn.header)},
        security=[{"apiKey": []}],
    )


def swagger_page(app: APIGatewayRestResolver) -> str:
    """Swagger UI with the document embedded, and its script and style inline (Powertools ships both)."""
    from aws_lambda_powertools.event_handler.openapi import swagger_ui
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    folder = Path(swagger_ui.__file__).parent
    script = (folder / "swagger-ui-bundle.min.js").read_text(encoding="utf-8")
    style = (folder / "swagger-ui.min.css").read_text(encoding="utf-8")
    spec = openapi_document(app).replace("</", "<\\/")  # no "</script>" inside the page's script
    return generate_swagger_html(spec, script, style, "", None)


def _base_path(app: APIGatewayRestResolver) -> str:
    """`/Prod` when API Gateway's address carries the stage, so "Try it out" calls the stage; "" otherwise (a custom
    domain, the local stack)."""
    context: Any = app.current_event.request_context
    stage = context.stage
    if stage and stage != "$default" and str(context.path or "").startswith(f"/{stage}"):
        return f"/{stage}"
    return ""
