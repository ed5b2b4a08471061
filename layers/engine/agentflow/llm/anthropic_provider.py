"""Anthropic through the official `anthropic` SDK's Messages API, as AutoGPT calls it: the system messages joined
into one cached system block, only user and assistant turns kept (consecutive plain-text turns of one role joined),
tools as Anthropic tools with the last one cached. The SDK's own retries are off: the engine's policy decides."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anthropic

from agentflow.llm.failures import translate
from agentflow.llm.types import ChatRequest, ChatResult, Endpoint, Message, ToolCall
from agentflow.net.policy import HttpPolicy
from agentflow.net.transport import guarded_client

EPHEMERAL = {"type": "ephemeral"}


def split_system(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    """(system text, user/assistant turns) in Anthropic's shape."""
    system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "system").strip()
    turns: list[Message] = []
    for message in messages:
        role, content = message.get("role"), message.get("content")
        if role not in ("user", "assistant") or content is None or content == "":
            continue  # role `tool` and empty turns are not Anthropic's (AutoGPT drops them too)
        if turns and turns[-1]["role"] == role and isinstance(content, str) and isinstance(turns[-1]["content"], str):
            turns[-1] = {"role": role, "content": turns[-1]["content"] + content}
        else:
            turns.append({"role": role, "content": content})
    return system, turns


def anthropic_tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {}
        schema = {"type": "object", "properties": parameters.get("properties", {})}
        if parameters.get("required"):
            schema["required"] = list(parameters["required"])
        converted.append(
            {"name": function["name"], "description": function.get("description", ""), "input_schema": schema}
        )
    if converted:
        converted[-1]["cache_control"] = EPHEMERAL
    return converted


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, http: HttpPolicy | None = None) -> None:
        self.http = http or HttpPolicy()

    def _client(self, request: ChatRequest, endpoint: Endpoint) -> anthropic.Anthropic:
        http_client = guarded_client(self.http, endpoint.guarded, request.timeout)
        return anthropic.Anthropic(
            api_key=endpoint.api_key,
            base_url=endpoint.base_url,  # None: the SDK's default, which honours ANTHROPIC_BASE_URL
            timeout=request.timeout,
            max_retries=0,
            default_headers=dict(endpoint.headers) or None,
            http_client=http_client,
        )

    def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult:
        system, turns = split_system(request.messages)
        params: dict[str, Any] = {"model": request.model, "messages": turns, "max_tokens": request.max_tokens}
        if system:
            params["system"] = [{"type": "text", "text": system, "cache_control": EPHEMERAL}]
        if request.tools:
            params["tools"] = anthropic_tools(request.tools)
        try:
            with self._client(request, endpoint) as client:
                message = client.messages.create(**params)
        except Exception as exc:
            raise translate(exc, self.name, endpoint.api_key, anthropic) from None
        texts, calls, reasoning = [], [], None
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(ToolCall(block.id, block.name, json.dumps(block.input)))
            elif block.type == "thinking" and reasoning is None:
                reasoning = block.thinking
        usage = message.usage
        cached = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        cached += int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        entry = {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in message.content]}
        return ChatResult(
            text="".join(texts),
            tool_calls=tuple(calls),
            assistant_message=entry,
            input_tokens=int(usage.input_tokens or 0) + cached,
            output_tokens=int(usage.output_tokens or 0),
            reasoning=reasoning,
        )
