"""A provider SDK's exceptions as the engine's (README, "LLM blocks", errors): rate limits, overload, 5xx answers,
timeouts and failed connections are transient (RetryableError, honouring `retry-after`); authentication, permission
and bad-request answers fail the node at once with the provider's own message. No message ever quotes the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentflow.blocks.sdk import BlockError
from agentflow.errors import RetryableError
from agentflow.net.guard import RequestFailed
from agentflow.net.messages import parse_retry_after

CONTEXT_LIMIT_PHRASES = (
    "maximum context length",
    "context length",
    "token limit",
    "too many tokens",
    "prompt is too long",
)


class ProviderError(BlockError):
    """A provider refused the call (4xx other than 429), or answered something that cannot be used."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def context_too_long(self) -> bool:
        """The prompt does not fit the model's context window (the caller may retry with fewer output tokens)."""
        text = str(self).lower()
        return self.status == 400 and any(phrase in text for phrase in CONTEXT_LIMIT_PHRASES)


def _hide(text: str, secret: str) -> str:
    return text.replace(secret, "<redacted>") if len(secret) >= 4 else text


def provider_message(body: Any, fallback: str) -> str:
    """The human part of a provider's error body: OpenAI's and Anthropic's `error.message`, else the fallback."""
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return fallback


def retry_after_of(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the provider asks to wait: `retry-after-ms` (OpenAI, Anthropic), else `retry-after`."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"), headers.get("date"))


def translate(exc: Exception, provider: str, api_key: str, sdk: Any) -> Exception:
    """The engine's exception for an SDK's (`sdk` is the `openai` or `anthropic` module: both name theirs alike)."""
    if isinstance(exc, RequestFailed):  # the guard refused a user's base URL: nothing was sent
        return exc
    if isinstance(exc, sdk.APITimeoutError):
        return RetryableError(f"{provider}: the call timed out")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__
        if isinstance(cause, RequestFailed):
            return cause
        return RetryableError(_hide(f"{provider}: cannot connect ({cause or exc})", api_key))
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        message = _hide(provider_message(exc.body, exc.message), api_key)
        if status == 429 or status >= 500 or status == 408:
            return RetryableError(f"{provider} answered {status}: {message}", retry_after_of(exc.response.headers))
        hint = ""
        if status in (401, 403):
            hint = " (check the credential's API key, or the platform key's environment variable)"
        return ProviderError(f"{provider} answered {status}: {message}{hint}", status)
    if isinstance(exc, sdk.APIResponseValidationError | ValueError):  # a 200 whose body is not what the API promises
        return RetryableError(_hide(f"{provider}: the answer could not be read ({exc})", api_key))
    return exc
