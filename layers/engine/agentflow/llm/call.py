"""`llm_call`, the one function the AI blocks call (BLOCKS-AGENTS.md §2.2, as README "LLM blocks" describes): pick
the SDK and endpoint from the credentials, bound the output tokens by the model's limits, refuse a call the run's
budget no longer allows, and add the provider's usage figures (and their estimated cost) to the node's stats."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from agentflow.blocks.sdk import BlockContext, BlockError
from agentflow.credentials.models import APIKeyCredentials
from agentflow.credentials.platform import BY_PROVIDER
from agentflow.llm.models import ModelInfo, effective_max_tokens
from agentflow.llm.prices import cost_usd
from agentflow.llm.runtime import LlmRuntime
from agentflow.llm.settings import LlmSettings
from agentflow.llm.types import ChatProvider, ChatRequest, ChatResult, Endpoint, Message
from agentflow.net.policy import HttpPolicy

# OpenAI-compatible providers' own endpoints (AutoGPT's); `openai` uses the SDK's default or OPENAI_BASE_URL
PROVIDER_BASE_URLS: Mapping[str, str] = {
    "groq": "https://api.groq.com/openai/v1",
    "open_router": "https://openrouter.ai/api/v1",
    "llama_api": "https://api.llama.com/compat/v1",
    "aiml_api": "https://api.aimlapi.com/v2",
    "v0": "https://api.v0.dev/v1",
}
PROVIDER_HEADERS: Mapping[str, Mapping[str, str]] = {
    "open_router": {"HTTP-Referer": "https://github.com/agentflow", "X-Title": "agentflow"},
}
DEFAULT_OLLAMA_HOST = "localhost:11434"


def runtime_of(context: BlockContext) -> LlmRuntime:
    runtime = context.llm
    return runtime if isinstance(runtime, LlmRuntime) else LlmRuntime()


def missing_credentials_message(model: ModelInfo) -> str:
    platform = BY_PROVIDER.get(model.provider.value)
    variable = f" or set {platform.env} for the platform" if platform is not None and platform.env else ""
    return (
        f"no credentials for {model.provider.value} (model {model.name}): add one with `agentflow credentials add "
        f"--user <you> --provider {model.provider.value}` (or POST /credentials) and name it on the node's "
        f"credentials input{variable}"
    )


def _endpoint(
    credentials: APIKeyCredentials, settings: LlmSettings, ollama_host: str | None
) -> tuple[str, Endpoint, bool]:
    """(SDK family, endpoint, whether it is OpenAI's own API)."""
    provider, key = credentials.provider, credentials.api_key.get_secret_value()
    headers = PROVIDER_HEADERS.get(provider, {})
    if credentials.base_url:  # a user's: it must pass the request guard
        family = "anthropic" if provider == "anthropic" else "openai"
        return family, Endpoint(key, credentials.base_url, headers, guarded=True), False
    if provider == "anthropic":
        return "anthropic", Endpoint(key, settings.anthropic_base_url), False
    if provider == "ollama":
        host = (ollama_host or DEFAULT_OLLAMA_HOST).strip().rstrip("/")
        base = host if "://" in host else f"http://{host}"
        return "openai", Endpoint(key, f"{base}/v1", guarded=True), False
    if provider in PROVIDER_BASE_URLS:
        return "openai", Endpoint(key, PROVIDER_BASE_URLS[provider], headers), False
    return "openai", Endpoint(key, settings.openai_base_url), settings.openai_base_url is None


def _provider(runtime: LlmRuntime, family: str, http: HttpPolicy, openai_itself: bool) -> ChatProvider:
    if runtime.providers is not None and family in runtime.providers:
        return runtime.providers[family]
    # imported on first use: the SDKs take a while to import, and only the AI blocks' workers need them
    if family == "anthropic":
        from agentflow.llm.anthropic_provider import AnthropicProvider

        return AnthropicProvider(http)
    from agentflow.llm.openai_provider import OpenAIProvider

    return OpenAIProvider("openai", http, completion_tokens_field=openai_itself)


def estimate_tokens(messages: Sequence[Message]) -> int:
    """A rough count (4 characters a token) to keep the output within the context window; never billed."""
    return len(json.dumps(list(messages), default=str)) // 4


def llm_call(
    context: BlockContext,
    credentials: Any,
    model: ModelInfo,
    messages: Sequence[Message],
    *,
    max_tokens: int | None = None,
    json_mode: bool = False,
    tools: Sequence[Mapping[str, Any]] = (),
    parallel_tool_calls: bool | None = None,
    ollama_host: str | None = None,
) -> ChatResult:
    """One call, counted on the node's usage. Raises BudgetExceeded, RetryableError (transient), ProviderError
    (refused) or BlockError (no credentials)."""
    runtime = runtime_of(context)
    runtime.check_budget()
    if not isinstance(credentials, APIKeyCredentials):
        raise BlockError(missing_credentials_message(model))
    family, endpoint, openai_itself = _endpoint(credentials, runtime.settings, ollama_host)
    request = ChatRequest(
        model=model.name,
        messages=list(messages),
        max_tokens=effective_max_tokens(model, max_tokens, estimate_tokens(messages)),
        json_mode=json_mode and family == "openai",
        tools=list(tools),
        parallel_tool_calls=parallel_tool_calls,
        timeout=runtime.timeout,
    )
    result = _provider(runtime, family, context.http, openai_itself).complete(request, endpoint)
    cost = cost_usd(model.name, result.input_tokens, result.output_tokens, runtime.settings.prices)
    runtime.usage.add_call(model.name, result.input_tokens, result.output_tokens, cost)
    return result
