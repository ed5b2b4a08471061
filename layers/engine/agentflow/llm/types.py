"""What one LLM call takes and gives back, independent of the provider: the request (messages in the OpenAI chat
shape, which is also what the blocks store as `prompt` and `conversations`), the tool calls the model made, and
the provider's usage figures. Adapters (`openai_provider`, `anthropic_provider`) translate to and from the SDKs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]  # {"role": ..., "content": ...}, or a provider-native history entry kept verbatim


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model wrote it (it may not parse: the Orchestrator checks)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": "function", "function": {"name": self.name, "arguments": self.arguments}}


@dataclass(frozen=True)
class Endpoint:
    """Where and as whom to call: the key, the base URL (None: the SDK's default, which honours OPENAI_BASE_URL or
    ANTHROPIC_BASE_URL), extra headers, and whether the base URL came from a user and must pass the request guard."""

    api_key: str = field(repr=False)
    base_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    guarded: bool = False


@dataclass(frozen=True)
class ChatRequest:
    model: str  # the provider's model id
    messages: Sequence[Message]
    max_tokens: int
    json_mode: bool = False
    tools: Sequence[Mapping[str, Any]] = ()  # OpenAI function tools: {"type": "function", "function": {...}}
    parallel_tool_calls: bool | None = None
    timeout: float = 600.0


@dataclass(frozen=True)
class ChatResult:
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    assistant_message: Message = field(default_factory=dict)  # the reply as a history entry, provider-native
    input_tokens: int = 0
    output_tokens: int = 0
    reasoning: str | None = None


class ChatProvider(Protocol):
    """One provider family behind its SDK. Raises RetryableError for transient failures (rate limits, overload,
    5xx, timeouts, a connection that failed) and ProviderError for the rest; never quotes the key."""

    def complete(self, request: ChatRequest, endpoint: Endpoint) -> ChatResult: ...
