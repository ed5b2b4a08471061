"""OpenAI and every OpenAI-compatible server (Ollama, vLLM, LM Studio, OpenRouter, Groq, ...) through the official
`openai` SDK's Chat Completions API: the one API all of them speak (AutoGPT uses OpenAI's newer Responses API for
OpenAI itself; README, "Compatibility", says why agentflow does not). The SDK's own retries are off: the engine's
retry policy (backoff, `retry-after`) decides."""

from __future__ import annotations

import json
from typing import Any

import openai

from agentflow.llm.failures import ProviderError, translate
from agentflow.llm.types import ChatRequest, ChatResult, Endpoint, ToolCall
from agentflow.net.policy import HttpPolicy
from agentflow.net.transport import guarded_client


class OpenAIProvider:
    def __init__(self, name: str = "openai", http: HttpPolicy | None = None, completion_tokens_field: bool = False):
        self.name = name
        self.http = http or HttpPolicy()
        # OpenAI's own API wants `max_completion_tokens` (its reasoning models refuse `max_tokens`); compatible
        # servers know `max_tokens`
        self.completion_tokens_field = completion_tokens_field

    def _client(self, request: ChatRequest, endpoint: Endpoint) -> openai.OpenAI:
        http_client = guarded_client(self.http, endpoint.guarded, request.timeout)
        return openai.OpenAI(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,  # None: the SDK's default, which honours OPENAI_BASE_URL
            timeout=request.timeout,
            max_retries=0,
            default_headers=dict(endpoint.headers) or None,
            http_client=http_client,
        )

    def _params(self, request: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {"model": request.model, "messages": list(request.messages)}
        params["max_completion_tokens" if self.completion_tokens_field else "max_tokens"] = request.max_tokens
        if request.json_mode:
            params["response_format"] = {"type": "json_object"}
        if request.tools:
            params["tools"] = list(request.tools)
            if request.parallel_tool_calls is not None:
                params["parallel_tool_calls"] = request.parallel_tool_calls
        return params

    def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        try:
            with self._client(request, endpoint) as client:
                response = client.chat.completions.create(**self._params(request))
        except Exception as exc:
            raise translate(exc, self.name, endpoint.api_key, openai) from None
        if not getattr(response, "choices", None):
            raise ProviderError(f"{self.name}: the answer has no choices")
        message = response.choices[0].message
        calls = tuple(
            ToolCall(call.id, call.function.name, call.function.arguments or "")
            for call in message.tool_calls or ()
            if getattr(call, "function", None) is not None
        )
        entry: dict[str, Any] = {"role": "assistant", "content": message.content}
        if calls:
            entry["tool_calls"] = [call.to_dict() for call in calls]
        usage = response.usage
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        return ChatResult(
            text=message.content or "",
            tool_calls=calls,
            assistant_message=entry,
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
            reasoning=reasoning if isinstance(reasoning, str) else None,
        )


def tool_arguments(call: ToolCall) -> Any:
    """The call's arguments parsed (None when they are not JSON)."""
    try:
        return json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        return None
