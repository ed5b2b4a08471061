"""The HTTP API (DESIGN §7): routes on Powertools' APIGatewayRestResolver, with pydantic models, so the OpenAPI
document is generated from the code."""
