"""`agentflow.llm.call.llm_call` and its two adapters, through the real openai and anthropic SDKs to the loopback
provider server (tests/support/llm_server.py; never a mock of an SDK): the endpoint chosen from the credentials or
the operator's settings, the request each SDK sent, the answer parsed, usage and cost recorded, the SDK exceptions
translated, the budget checked before any request, and the request guard in front of a user's base URL.

Every test runs under the socket guard: a connection (or a DNS lookup) leaving 127.0.0.0/8 fails it."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest
from pydantic import SecretStr

from agentflow.blocks.sdk import BlockContext, BlockError
from agentflow.credentials.models import APIKeyCredentials
from agentflow.errors import RetryableError
from agentflow.llm.call import _endpoint, llm_call
from agentflow.llm.failures import ProviderError
from agentflow.llm.models import ModelInfo, resolve_model
from agentflow.llm.openai_provider import OpenAIProvider, tool_arguments
from agentflow.llm.prices import cost_usd
from agentflow.llm.runtime import LlmRuntime
from agentflow.llm.settings import LlmSettings
from agentflow.llm.types import ChatRequest, Endpoint, ToolCall
from agentflow.llm.usage import Budget, BudgetExceeded
from agentflow.net.guard import RequestFailed, RequestRefused
from agentflow.net.policy import HttpPolicy
from tests.support.llm_server import (
    COMPLETION_TOKENS,
    PROMPT_TOKENS,
    LlmServer,
    Reply,
    anthropic_text,
    anthropic_tool_use,
    malformed,
    openai_text,
    openai_tool_calls,
    provider_error,
)
from tests.support.network import SocketGuard, static_resolver

pytestmark = pytest.mark.usefixtures("sdk_env_cleared", "sockets")

OPENAI_KEY = "sk-calls-openai-7c1e"
ANTHROPIC_KEY = "sk-ant-calls-5d2b"
SECRET_KEY = "sk-DISTINCTIVE-secret-key-8f3a91"
LOOPBACK = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))
EPHEMERAL = {"type": "ephemeral"}
HI = [{"role": "user", "content": "hi"}]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {
    "type": "function",
    "function": {"name": "get_time", "description": "The time now", "parameters": {"type": "object"}},
}


def model(name: str) -> ModelInfo:
    info = resolve_model(name)
    assert info is not None, name
    return info


GPT_4O = model("gpt-4o")
SONNET = model("claude-sonnet-4-5-20250929")


def key(provider: str, api_key: str, base_url: str | None = None) -> APIKeyCredentials:
    return APIKeyCredentials(id=f"{provider}-key", provider=provider, api_key=SecretStr(api_key), base_url=base_url)


def ctx(http: HttpPolicy = LOOPBACK, **runtime: Any) -> BlockContext:
    runtime.setdefault("timeout", 10.0)
    return BlockContext(http=http, llm=LlmRuntime(**runtime))


def usage_of(context: BlockContext) -> Any:
    assert isinstance(context.llm, LlmRuntime)
    return context.llm.usage


# Two ways to reach each provider: a user's credential carrying base_url (guarded), or the operator's setting with
# a plain credential (trusted: no allow list needed, hence the default HttpPolicy)
def openai_setup(server: LlmServer, how: str, api_key: str = OPENAI_KEY) -> tuple[BlockContext, APIKeyCredentials]:
    if how == "credential":
        return ctx(), key("openai", api_key, server.openai_base_url)
    return ctx(HttpPolicy(), settings=LlmSettings(openai_base_url=server.openai_base_url)), key("openai", api_key)


def anthropic_setup(
    server: LlmServer, how: str, api_key: str = ANTHROPIC_KEY
) -> tuple[BlockContext, APIKeyCredentials]:
    if how == "credential":
        return ctx(), key("anthropic", api_key, server.anthropic_base_url)
    settings = LlmSettings(anthropic_base_url=server.anthropic_base_url)
    return ctx(HttpPolicy(), settings=settings), key("anthropic", api_key)


HOW = pytest.mark.parametrize("how", ["credential", "settings"])


# --- OpenAI: text answers, usage and the request --------------------------------------------------------------


@HOW
def test_openai_text_answer_and_usage(server: LlmServer, how: str) -> None:
    context, credentials = openai_setup(server, how)
    server.script(openai_text("Hello there", prompt_tokens=1000, completion_tokens=500))
    result = llm_call(context, credentials, GPT_4O, HI, max_tokens=256)
    assert result.text == "Hello there"
    assert (result.input_tokens, result.output_tokens) == (1000, 500)
    assert result.tool_calls == ()
    assert result.assistant_message == {"role": "assistant", "content": "Hello there"}
    usage = usage_of(context)
    assert (usage.llm_calls, usage.llm_retries, usage.input_tokens, usage.output_tokens) == (1, 0, 1000, 500)
    assert usage.cost_usd == pytest.approx(0.0075)  # gpt-4o: $2.50 / $10.00 per 1M
    assert usage.cost_usd == cost_usd("gpt-4o", 1000, 500)
    assert usage.model == "gpt-4o"
    assert server.calls("openai") == 1 and server.last().path == "/v1/chat/completions"


def test_openai_usage_adds_up_over_calls(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(openai_text("a", prompt_tokens=10, completion_tokens=2), openai_text("b"))
    llm_call(context, credentials, GPT_4O, HI)
    llm_call(context, credentials, model("gpt-4o-mini"), HI)
    usage = usage_of(context)
    assert usage.llm_calls == 2
    assert (usage.input_tokens, usage.output_tokens) == (10 + PROMPT_TOKENS, 2 + COMPLETION_TOKENS)
    expected = cost_usd("gpt-4o", 10, 2) + cost_usd("gpt-4o-mini", PROMPT_TOKENS, COMPLETION_TOKENS)
    assert usage.cost_usd == pytest.approx(expected) and usage.cost_usd > 0
    assert usage.model == "gpt-4o-mini"


def test_openai_price_override_from_settings(server: LlmServer) -> None:
    from agentflow.llm.prices import Price

    settings = LlmSettings(prices={"gpt-4o": Price(1.0, 2.0)})
    context = ctx(settings=settings)
    server.script(openai_text("x", prompt_tokens=1_000_000, completion_tokens=1_000_000))
    llm_call(context, key("openai", OPENAI_KEY, server.openai_base_url), GPT_4O, HI)
    assert usage_of(context).cost_usd == pytest.approx(3.0)


@HOW
def test_openai_request_carries_model_messages_max_tokens_and_key(server: LlmServer, how: str) -> None:
    context, credentials = openai_setup(server, how)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    llm_call(context, credentials, GPT_4O, messages, max_tokens=256)
    body = server.last("openai").body
    assert body["model"] == "gpt-4o"
    assert body["messages"] == messages  # system and user messages exactly as given
    assert body["max_tokens"] == 256 and "max_completion_tokens" not in body  # a base URL: a compatible server
    assert "response_format" not in body and "tools" not in body and "parallel_tool_calls" not in body
    assert body.get("stream") in (None, False)
    assert server.last().api_key == OPENAI_KEY


def test_openai_max_tokens_is_bounded_by_the_model(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    llm_call(context, credentials, GPT_4O, HI, max_tokens=1_000_000)
    llm_call(context, credentials, GPT_4O, HI)  # unset: the model's max output
    first, second = server.requests
    assert first.body["max_tokens"] == 16_384 and second.body["max_tokens"] == 16_384


def test_openai_json_mode_sends_response_format(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(openai_text('{"a": 1}'))
    result = llm_call(context, credentials, GPT_4O, HI, json_mode=True)
    assert server.last().body["response_format"] == {"type": "json_object"}
    assert json.loads(result.text) == {"a": 1}


def test_openai_tools_are_sent_as_given(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    llm_call(context, credentials, GPT_4O, HI, tools=[WEATHER, CLOCK], parallel_tool_calls=False)
    llm_call(context, credentials, GPT_4O, HI, tools=[WEATHER])
    first, second = server.requests
    assert first.body["tools"] == [WEATHER, CLOCK]
    assert first.body["parallel_tool_calls"] is False
    assert second.body["tools"] == [WEATHER] and "parallel_tool_calls" not in second.body


def test_openai_parallel_tool_calls_without_tools_is_not_sent(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    llm_call(context, credentials, GPT_4O, HI, parallel_tool_calls=True)
    assert "parallel_tool_calls" not in server.last().body and "tools" not in server.last().body


def test_openai_own_api_gets_max_completion_tokens(server: LlmServer) -> None:
    provider = OpenAIProvider("openai", LOOPBACK, completion_tokens_field=True)
    request = ChatRequest(model="gpt-4o", messages=HI, max_tokens=123, timeout=10.0)
    result = provider.complete(request, Endpoint(OPENAI_KEY, server.openai_base_url))
    body = server.last().body
    assert body["max_completion_tokens"] == 123 and "max_tokens" not in body
    assert result.text == "ok"


def test_openai_itself_is_chosen_only_without_any_base_url() -> None:
    plain = key("openai", OPENAI_KEY)
    family, endpoint, itself = _endpoint(plain, LlmSettings(), None)
    assert (family, endpoint.base_url, endpoint.guarded, itself) == ("openai", None, False, True)
    family, endpoint, itself = _endpoint(plain, LlmSettings(openai_base_url="http://proxy.example/v1"), None)
    assert (family, endpoint.base_url, endpoint.guarded, itself) == ("openai", "http://proxy.example/v1", False, False)
    family, endpoint, itself = _endpoint(key("openai", OPENAI_KEY, "http://x.example/v1"), LlmSettings(), None)
    assert (family, endpoint.base_url, endpoint.guarded, itself) == ("openai", "http://x.example/v1", True, False)
    family, endpoint, itself = _endpoint(key("anthropic", ANTHROPIC_KEY, "http://x.example"), LlmSettings(), None)
    assert (family, endpoint.guarded, itself) == ("anthropic", True, False)


# --- OpenAI: tool calls -----------------------------------------------------------------------------------------


def test_openai_tool_calls_are_parsed(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(openai_tool_calls([("get_weather", {"city": "Paris"}), ("get_time", {})]))
    result = llm_call(context, credentials, GPT_4O, HI, tools=[WEATHER, CLOCK])
    assert result.text == ""
    assert [(c.id, c.name) for c in result.tool_calls] == [("call_1", "get_weather"), ("call_2", "get_time")]
    assert json.loads(result.tool_calls[0].arguments) == {"city": "Paris"}
    assert json.loads(result.tool_calls[1].arguments) == {}
    assert result.assistant_message == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
    }


def test_openai_tool_call_with_text_and_malformed_arguments(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(openai_tool_calls([("get_weather", '{"city": ')], text="Let me check."))
    result = llm_call(context, credentials, GPT_4O, HI, tools=[WEATHER])
    assert result.text == "Let me check."
    assert result.assistant_message["content"] == "Let me check."
    (call,) = result.tool_calls
    assert call.arguments == '{"city": '  # as the model wrote it
    assert tool_arguments(call) is None
    assert tool_arguments(ToolCall("c", "f", '{"x": 2}')) == {"x": 2}


def test_a_tool_call_result_can_be_sent_back(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(openai_tool_calls([("get_weather", {"city": "Oslo"})]), openai_text("It is cold."))
    first = llm_call(context, credentials, GPT_4O, HI, tools=[WEATHER])
    history = [*HI, first.assistant_message, {"role": "tool", "tool_call_id": "call_1", "content": "-5C"}]
    second = llm_call(context, credentials, GPT_4O, history, tools=[WEATHER])
    assert second.text == "It is cold."
    assert server.last().body["messages"] == history


# --- Anthropic ----------------------------------------------------------------------------------------------------


@HOW
def test_anthropic_text_answer_and_usage(server: LlmServer, how: str) -> None:
    context, credentials = anthropic_setup(server, how)
    server.script(anthropic_text("Bonjour", input_tokens=1000, output_tokens=500))
    result = llm_call(context, credentials, SONNET, HI, max_tokens=300)
    assert result.text == "Bonjour"
    assert (result.input_tokens, result.output_tokens) == (1000, 500)
    assert result.tool_calls == ()
    assert result.assistant_message == {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]}
    usage = usage_of(context)
    assert (usage.llm_calls, usage.input_tokens, usage.output_tokens) == (1, 1000, 500)
    assert usage.cost_usd == pytest.approx(0.0105)  # claude-sonnet-4-5: $3 / $15 per 1M
    assert usage.model == "claude-sonnet-4-5-20250929"
    assert server.calls("anthropic") == 1 and server.calls("openai") == 0
    assert server.last().path == "/v1/messages"


def test_anthropic_cached_input_tokens_count_as_input(server: LlmServer) -> None:
    context, credentials = anthropic_setup(server, "credential")
    reply = anthropic_text("x", input_tokens=100, output_tokens=5)
    body = dict(reply.body)
    body["usage"] = {**body["usage"], "cache_read_input_tokens": 40, "cache_creation_input_tokens": 2}
    server.script(Reply(body=body, headers=reply.headers, provider="anthropic"))
    result = llm_call(context, credentials, SONNET, HI)
    assert (result.input_tokens, result.output_tokens) == (142, 5)
    assert usage_of(context).input_tokens == 142


@HOW
def test_anthropic_request_shape(server: LlmServer, how: str) -> None:
    context, credentials = anthropic_setup(server, how)
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello. "},
        {"role": "user", "content": "How are you?"},
        {"role": "system", "content": "Answer in French."},
        {"role": "assistant", "content": "Bien."},
        {"role": "tool", "tool_call_id": "x", "content": "dropped"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "And?"},
    ]
    llm_call(context, credentials, SONNET, messages, max_tokens=300, json_mode=True)
    record = server.last("anthropic")
    body = record.body
    assert body["model"] == "claude-sonnet-4-5-20250929"
    assert body["system"] == [{"type": "text", "text": "Be brief. Answer in French.", "cache_control": EPHEMERAL}]
    assert body["messages"] == [
        {"role": "user", "content": "Hello. How are you?"},
        {"role": "assistant", "content": "Bien."},
        {"role": "user", "content": "And?"},
    ]
    assert body["max_tokens"] == 300
    assert "response_format" not in body  # no JSON mode in the Messages API
    assert set(body) == {"model", "system", "messages", "max_tokens"}
    assert record.api_key == ANTHROPIC_KEY
    assert record.headers["anthropic-version"]


def test_anthropic_without_system_messages_has_no_system_field(server: LlmServer) -> None:
    context, credentials = anthropic_setup(server, "credential")
    llm_call(context, credentials, SONNET, HI)
    body = server.last().body
    assert "system" not in body and body["messages"] == HI
    assert body["max_tokens"] == 64_000  # unset: the model's max output


def test_anthropic_tools_are_converted_and_the_last_cached(server: LlmServer) -> None:
    context, credentials = anthropic_setup(server, "credential")
    llm_call(context, credentials, SONNET, HI, tools=[WEATHER, CLOCK], parallel_tool_calls=False)
    tools = server.last().body["tools"]
    assert tools == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
        {
            "name": "get_time",
            "description": "The time now",
            "input_schema": {"type": "object", "properties": {}},
            "cache_control": EPHEMERAL,
        },
    ]


def test_anthropic_tool_use_is_parsed(server: LlmServer) -> None:
    context, credentials = anthropic_setup(server, "credential")
    server.script(anthropic_tool_use([("get_weather", {"city": "Oslo"}), ("get_time", {})], text="Checking."))
    result = llm_call(context, credentials, SONNET, HI, tools=[WEATHER, CLOCK])
    assert result.text == "Checking."
    assert [(c.id, c.name) for c in result.tool_calls] == [("toolu_1", "get_weather"), ("toolu_2", "get_time")]
    assert [json.loads(c.arguments) for c in result.tool_calls] == [{"city": "Oslo"}, {}]
    assert result.assistant_message == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        ],
    }


def test_anthropic_assistant_content_blocks_are_kept_in_history(server: LlmServer) -> None:
    context, credentials = anthropic_setup(server, "credential")
    server.script(anthropic_tool_use([("get_weather", {"city": "Oslo"})]), anthropic_text("Cold."))
    first = llm_call(context, credentials, SONNET, HI, tools=[WEATHER])
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "-5C"}
    history = [*HI, first.assistant_message, {"role": "user", "content": [result]}]
    assert llm_call(context, credentials, SONNET, history, tools=[WEATHER]).text == "Cold."
    assert server.last().body["messages"] == history  # block lists are never joined with a neighbour


# --- errors -------------------------------------------------------------------------------------------------------


def _call(server: LlmServer, provider: str, api_key: str | None = None) -> Any:
    if provider == "openai":
        context, credentials = openai_setup(server, "credential", api_key or OPENAI_KEY)
        return llm_call(context, credentials, GPT_4O, HI)
    context, credentials = anthropic_setup(server, "credential", api_key or ANTHROPIC_KEY)
    return llm_call(context, credentials, SONNET, HI)


PROVIDERS = pytest.mark.parametrize("provider", ["openai", "anthropic"])


@PROVIDERS
def test_rate_limit_is_retryable_with_retry_after_and_one_request(server: LlmServer, provider: str) -> None:
    server.script(provider_error(429, "Rate limit reached", provider=provider, retry_after=7))
    with pytest.raises(RetryableError) as caught:
        _call(server, provider)
    assert caught.value.retry_after == 7.0
    assert "429" in str(caught.value) and "Rate limit reached" in str(caught.value)
    assert not isinstance(caught.value, ProviderError)
    assert server.calls() == 1 and server.pending == 0  # the SDK did not retry


@pytest.mark.parametrize(
    ("provider", "status"), [("openai", 500), ("openai", 503), ("anthropic", 500), ("anthropic", 529)]
)
def test_server_errors_and_overload_are_retryable(server: LlmServer, provider: str, status: int) -> None:
    server.script(provider_error(status, "The server had an error", provider=provider))
    with pytest.raises(RetryableError) as caught:
        _call(server, provider)
    assert str(status) in str(caught.value) and "The server had an error" in str(caught.value)
    assert caught.value.retry_after is None
    assert server.calls() == 1  # the SDK did not retry


@PROVIDERS
def test_unauthorized_is_a_provider_error_without_the_key(server: LlmServer, provider: str) -> None:
    server.script(provider_error(401, "Incorrect API key provided", provider=provider))
    with pytest.raises(ProviderError) as caught:
        _call(server, provider, SECRET_KEY)
    assert caught.value.status == 401
    assert "Incorrect API key provided" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)
    assert not caught.value.context_too_long
    assert isinstance(caught.value, BlockError)
    assert server.last().api_key == SECRET_KEY and server.calls() == 1


@PROVIDERS
def test_a_provider_message_quoting_the_key_is_redacted(server: LlmServer, provider: str) -> None:
    server.script(provider_error(403, f"Key {SECRET_KEY} may not use this model", provider=provider))
    with pytest.raises(ProviderError) as caught:
        _call(server, provider, SECRET_KEY)
    assert SECRET_KEY not in str(caught.value) and "<redacted>" in str(caught.value)
    assert "may not use this model" in str(caught.value) and caught.value.status == 403


@PROVIDERS
def test_context_too_long_is_a_provider_error_that_says_so(server: LlmServer, provider: str) -> None:
    message = "This model's maximum context length is 128000 tokens. However, you requested 130000 tokens."
    server.script(provider_error(400, message, provider=provider))
    with pytest.raises(ProviderError) as caught:
        _call(server, provider)
    assert caught.value.status == 400 and caught.value.context_too_long
    assert "maximum context length is 128000" in str(caught.value)


def test_other_bad_requests_are_not_context_too_long(server: LlmServer) -> None:
    server.script(provider_error(400, "Invalid value for 'temperature'"))
    with pytest.raises(ProviderError) as caught:
        _call(server, "openai")
    assert caught.value.status == 400 and not caught.value.context_too_long


@PROVIDERS
def test_malformed_answer_is_retryable(server: LlmServer, provider: str) -> None:
    server.script(malformed(provider))
    with pytest.raises(RetryableError) as caught:
        _call(server, provider)
    assert "could not be read" in str(caught.value)
    assert server.calls() == 1


@PROVIDERS
def test_retry_after_ms_is_honoured(server: LlmServer, provider: str) -> None:
    error = provider_error(429, "slow down", provider=provider)
    server.script(Reply(status=429, body=error.body, headers={**error.headers, "retry-after-ms": "1500"}))
    with pytest.raises(RetryableError) as caught:
        _call(server, provider)
    assert caught.value.retry_after == 1.5


def test_an_answer_without_choices_is_a_provider_error(server: LlmServer) -> None:
    reply = openai_text("x")
    server.script(Reply(body={**reply.body, "choices": []}, headers=reply.headers, provider="openai"))
    with pytest.raises(ProviderError, match="no choices"):
        _call(server, "openai")


def test_failed_calls_record_no_usage(server: LlmServer) -> None:
    context, credentials = openai_setup(server, "credential")
    server.script(provider_error(500, "boom"))
    with pytest.raises(RetryableError):
        llm_call(context, credentials, GPT_4O, HI)
    assert usage_of(context).llm_calls == 0 and usage_of(context).model is None


def test_connection_refused_is_retryable() -> None:
    # a port bound but never listening: every connection to it is refused, and no other test can take it meanwhile
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(RetryableError) as caught:
            llm_call(ctx(), key("openai", SECRET_KEY, f"http://127.0.0.1:{port}/v1"), GPT_4O, HI)
    assert "cannot connect" in str(caught.value) and SECRET_KEY not in str(caught.value)


# --- no credentials, budget ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("credentials", [None, {}, "sk-a-bare-string"])
def test_no_credentials_says_how_to_add_one(server: LlmServer, credentials: Any) -> None:
    with pytest.raises(BlockError) as caught:
        llm_call(ctx(), credentials, GPT_4O, HI)
    message = str(caught.value)
    assert "agentflow credentials add --user <you> --provider openai" in message
    assert "OPENAI_API_KEY" in message and "gpt-4o" in message
    assert server.calls() == 0


def test_no_anthropic_credentials_names_its_variable() -> None:
    with pytest.raises(BlockError) as caught:
        llm_call(ctx(), None, SONNET, HI)
    assert "--provider anthropic" in str(caught.value) and "ANTHROPIC_API_KEY" in str(caught.value)


def test_an_exhausted_token_budget_refuses_before_any_request(server: LlmServer) -> None:
    context = ctx(budget=Budget(max_tokens=10), spent_tokens=10)
    with pytest.raises(BudgetExceeded) as caught:
        llm_call(context, key("openai", OPENAI_KEY, server.openai_base_url), GPT_4O, HI)
    assert "10" in str(caught.value) and "max_tokens" in str(caught.value)
    assert server.calls() == 0 and usage_of(context).llm_calls == 0


def test_within_the_budget_the_call_is_made(server: LlmServer) -> None:
    context = ctx(budget=Budget(max_tokens=10), spent_tokens=9)
    credentials = key("openai", OPENAI_KEY, server.openai_base_url)
    assert llm_call(context, credentials, GPT_4O, HI).text == "ok"
    assert server.calls() == 1
    # the node's own usage counts too: 9 + 18 tokens is past 10, so the next call is refused
    with pytest.raises(BudgetExceeded):
        llm_call(context, credentials, GPT_4O, HI)
    assert server.calls() == 1


def test_an_exhausted_cost_budget_refuses(server: LlmServer) -> None:
    context = ctx(budget=Budget(max_cost_usd=0.5), spent_cost_usd=0.5)
    with pytest.raises(BudgetExceeded, match="max_cost_usd"):
        llm_call(context, key("anthropic", ANTHROPIC_KEY, server.anthropic_base_url), SONNET, HI)
    assert server.calls() == 0


# --- the request guard ----------------------------------------------------------------------------------------------


@PROVIDERS
def test_a_private_base_url_is_refused_before_any_connection(sockets: SocketGuard, provider: str) -> None:
    resolver = static_resolver({})
    context = ctx(HttpPolicy(resolve=resolver))
    credentials = key(provider, SECRET_KEY, "http://10.0.0.5:11434/v1")
    with pytest.raises(RequestRefused) as caught:
        llm_call(context, credentials, GPT_4O if provider == "openai" else SONNET, HI)
    assert isinstance(caught.value, RequestFailed)
    assert "10.0.0.5" in str(caught.value) and "private" in str(caught.value)
    assert SECRET_KEY not in str(caught.value)
    assert sockets.connected_to("10.0.0.5") == [] and sockets.attempts == []
    assert resolver.calls == []  # a literal address is never looked up
    assert usage_of(context).llm_calls == 0


def test_a_user_loopback_base_url_needs_the_allow_list(server: LlmServer) -> None:
    for provider, base in (("openai", server.openai_base_url), ("anthropic", server.anthropic_base_url)):
        with pytest.raises(RequestRefused, match=r"127\.0\.0\.1"):
            llm_call(ctx(HttpPolicy()), key(provider, OPENAI_KEY, base), GPT_4O if provider == "openai" else SONNET, HI)
    assert server.calls() == 0


def test_a_host_name_resolving_to_loopback_is_refused_without_allow_list(
    server: LlmServer, sockets: SocketGuard
) -> None:
    resolver = static_resolver({"llm.internal": ["127.0.0.1"]})
    credentials = key("openai", OPENAI_KEY, f"http://llm.internal:{server.port}/v1")
    with pytest.raises(RequestRefused) as caught:
        llm_call(ctx(HttpPolicy(resolve=resolver)), credentials, GPT_4O, HI)
    assert "llm.internal" in str(caught.value) and "127.0.0.1" in str(caught.value)
    assert resolver.calls == [("llm.internal", server.port)]
    assert server.calls() == 0 and sockets.attempts == []


def test_an_allowed_host_name_connects_to_the_checked_address(server: LlmServer, sockets: SocketGuard) -> None:
    resolver = static_resolver({"llm.internal": ["127.0.0.1"]})
    policy = HttpPolicy(allow_hosts=frozenset({"llm.internal"}), resolve=resolver)
    credentials = key("openai", OPENAI_KEY, f"http://llm.internal:{server.port}/v1")
    server.script(openai_text("via the name"))
    assert llm_call(ctx(policy), credentials, GPT_4O, HI).text == "via the name"
    record = server.last()
    assert record.headers["host"] == f"llm.internal:{server.port}"
    assert record.path == "/v1/chat/completions" and record.api_key == OPENAI_KEY
    assert resolver.calls == [("llm.internal", server.port)]
    assert ("127.0.0.1", server.port) in sockets.attempts


def test_an_allowed_host_name_for_anthropic(server: LlmServer) -> None:
    resolver = static_resolver({"claude.internal": ["127.0.0.1"]})
    policy = HttpPolicy(allow_hosts=frozenset({"claude.internal"}), resolve=resolver)
    credentials = key("anthropic", ANTHROPIC_KEY, f"http://claude.internal:{server.port}")
    assert llm_call(ctx(policy), credentials, SONNET, HI).text == "ok"
    assert server.last("anthropic").headers["host"] == f"claude.internal:{server.port}"


def test_a_redirect_to_a_private_address_is_never_followed(server: LlmServer, sockets: SocketGuard) -> None:
    server.script(Reply(status=307, headers={"location": "http://10.0.0.5:11434/v1/chat/completions"}))
    with pytest.raises((RequestFailed, ProviderError)):
        _call(server, "openai")
    assert sockets.connected_to("10.0.0.5") == []
    assert server.calls() == 1


def test_an_unresolvable_base_url_fails_without_a_connection(sockets: SocketGuard) -> None:
    credentials = key("openai", OPENAI_KEY, "http://nowhere.internal:8000/v1")
    with pytest.raises(RequestFailed, match="cannot resolve"):
        llm_call(ctx(HttpPolicy(resolve=static_resolver({}))), credentials, GPT_4O, HI)
    assert sockets.attempts == []


def test_the_operator_base_url_is_trusted(server: LlmServer) -> None:
    # no allow list at all: the operator's OPENAI_BASE_URL / ANTHROPIC_BASE_URL do not pass the guard
    context = ctx(
        HttpPolicy(),
        settings=LlmSettings(openai_base_url=server.openai_base_url, anthropic_base_url=server.anthropic_base_url),
    )
    assert llm_call(context, key("openai", OPENAI_KEY), GPT_4O, HI).text == "ok"
    assert llm_call(context, key("anthropic", ANTHROPIC_KEY), SONNET, HI).text == "ok"
    assert (server.calls("openai"), server.calls("anthropic")) == (1, 1)


# --- Ollama -------------------------------------------------------------------------------------------------------


def test_ollama_goes_to_the_openai_compatible_endpoint(server: LlmServer, sockets: SocketGuard) -> None:
    server.script(openai_text("llama says hi", prompt_tokens=20, completion_tokens=4))
    context = ctx()
    llama = model("llama3")
    result = llm_call(
        context, key("ollama", "FAKE_API_KEY"), llama, HI, max_tokens=64, ollama_host=f"127.0.0.1:{server.port}"
    )
    assert result.text == "llama says hi"
    record = server.last()
    assert (record.provider, record.path) == ("openai", "/v1/chat/completions")
    assert record.headers["host"] == f"127.0.0.1:{server.port}"
    assert record.body["model"] == "llama3" and record.body["max_tokens"] == 64
    assert record.api_key == "FAKE_API_KEY"
    usage = usage_of(context)
    assert (usage.input_tokens, usage.output_tokens, usage.cost_usd, usage.model) == (20, 4, 0.0, "llama3")
    assert ("127.0.0.1", server.port) in sockets.attempts


def test_ollama_host_with_scheme_and_trailing_slash(server: LlmServer) -> None:
    llm_call(ctx(), key("ollama", "FAKE_API_KEY"), model("llama3"), HI, ollama_host=f"http://127.0.0.1:{server.port}/")
    assert server.last().path == "/v1/chat/completions"


def test_ollama_host_is_guarded(server: LlmServer) -> None:
    with pytest.raises(RequestRefused):
        llm_call(
            ctx(HttpPolicy()),
            key("ollama", "FAKE_API_KEY"),
            model("llama3"),
            HI,
            ollama_host=f"127.0.0.1:{server.port}",
        )
    assert server.calls() == 0
