"""Outbound HTTP for blocks: the request-safety policy (SSRF guard) and a client that connects only to addresses
the guard checked (docs/architecture.md, "Outbound requests")."""
