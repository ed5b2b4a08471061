"""API errors: every 4xx is `{"error": {"code", "message", "details"}}`, naming what is wrong."""

from __future__ import annotations

from typing import Any

from agentflow.errors import AgentflowError


class ApiError(AgentflowError):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def not_found(what: str, ident: str) -> ApiError:
    # Another user's id answers exactly like an id that does not exist (tenancy: never 403, never data).
    return ApiError(404, "not_found", f"{what} {ident!r} not found")


def unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


def invalid(message: str, details: Any = None) -> ApiError:
    return ApiError(400, "invalid_request", message, details)


def conflict(message: str, details: Any = None) -> ApiError:
    return ApiError(409, "conflict", message, details)


def too_large(limit: int, size: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the request body is {size} bytes; the limit is {limit}")
