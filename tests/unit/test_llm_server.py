"""tests/support/llm_server.py through the real openai and anthropic SDKs (no mock of either): their typed objects
parse its answers, its records carry what they sent, its errors raise the SDKs' own exceptions, one scripted error
is one request (max_retries=0), and it answers many threads, a keep-alive connection and another process.

Every test runs under the socket guard: a connection leaving 127.0.0.0/8 fails it."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from anthropic.types import Message, TextBlock, ToolUseBlock
from openai.types.chat import ChatCompletion

from tests.support.llm_server import (
    COMPLETION_TOKENS,
    CREATED,
    DEFAULT_TEXT,
    MODELS,
    PROMPT_TOKENS,
    LlmServer,
    RecordedRequest,
    Reply,
    anthropic_text,
    anthropic_tool_use,
    malformed,
    openai_text,
    openai_tool_calls,
    provider_error,
)
from tests.support.network import SocketGuard
from tests.unit.conftest import SDK_ENV

pytestmark = pytest.mark.usefixtures("sdk_env_cleared", "sockets")

ROOT = Path(__file__).resolve().parents[2]
OPENAI_KEY = "sk-test-openai-123"
ANTHROPIC_KEY = "sk-ant-test-456"
HI: Any = [{"role": "user", "content": "hi"}]  # Any: the SDKs' TypedDict params
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def oai(server: LlmServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.openai_base_url, api_key=OPENAI_KEY, max_retries=0, timeout=10)


def claude(server: LlmServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.anthropic_base_url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=10)


def chat(client: openai.OpenAI, **extra: Any) -> ChatCompletion:
    resp: ChatCompletion = client.chat.completions.create(model="gpt-4o", messages=HI, **extra)
    return resp


def ask(client: anthropic.Anthropic, **extra: Any) -> Message:
    msg: Message = client.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=HI, **extra)
    return msg


def text_of(msg: Message) -> str:
    block = msg.content[0]
    assert isinstance(block, TextBlock), block
    return block.text


# --- OpenAI --------------------------------------------------------------------------------------------------


def test_openai_text_reply_parses_into_a_chat_completion(server: LlmServer) -> None:
    server.script(openai_text("Hello there", prompt_tokens=5, completion_tokens=3))
    resp = chat(oai(server))
    assert resp.choices[0].message.content == "Hello there"
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == "stop"
    assert (resp.usage is not None) and (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 3)
    assert resp.usage.total_tokens == 8
    assert (resp.id, resp.object, resp.created, resp.model) == (
        "chatcmpl-llmserver-1",
        "chat.completion",
        CREATED,
        "gpt-4o",
    )


def test_openai_default_usage_and_model_override(server: LlmServer) -> None:
    server.script(openai_text("x", model="gpt-4.1"), openai_text("y", finish_reason="length"))
    first, second = chat(oai(server)), chat(oai(server))
    assert first.model == "gpt-4.1"
    assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (
        PROMPT_TOKENS,
        COMPLETION_TOKENS,
    )
    assert second.choices[0].finish_reason == "length" and second.id == "chatcmpl-llmserver-2"


def test_openai_tool_calls_parse_with_their_arguments(server: LlmServer) -> None:
    server.script(
        openai_tool_calls([("get_weather", {"city": "Paris"}), ("broken", '{"city": ')], text="Let me check.")
    )
    message = chat(oai(server), tools=[WEATHER_TOOL_OPENAI]).choices[0]
    assert message.finish_reason == "tool_calls"
    assert message.message.content == "Let me check."
    calls = message.message.tool_calls
    assert calls is not None and [call.id for call in calls] == ["call_1", "call_2"]
    first, second = calls
    assert first.type == "function" and second.type == "function"
    assert first.function.name == "get_weather" and json.loads(first.function.arguments) == {"city": "Paris"}
    assert second.function.arguments == '{"city": '  # malformed arguments arrive as given


def test_openai_request_is_recorded_with_model_messages_tools_and_key(server: LlmServer) -> None:
    client = oai(server)
    chat(
        client,
        max_tokens=50,
        tools=[WEATHER_TOOL_OPENAI],
        response_format={"type": "json_object"},
        temperature=0.2,
    )
    chat(client, max_completion_tokens=40)
    first, second = server.requests
    assert (first.path, first.provider, first.method) == ("/v1/chat/completions", "openai", "POST")
    assert first.body["model"] == "gpt-4o" and first.body["messages"] == HI
    assert first.body["max_tokens"] == 50 and first.body["temperature"] == 0.2
    assert first.body["tools"] == [WEATHER_TOOL_OPENAI]
    assert first.body["response_format"] == {"type": "json_object"}
    assert first.headers["authorization"] == f"Bearer {OPENAI_KEY}" and first.api_key == OPENAI_KEY
    assert second.body["max_completion_tokens"] == 40 and "response_format" not in second.body
    assert server.calls() == server.calls("openai") == 2 and server.calls("anthropic") == 0


def test_openai_rate_limit_carries_retry_after_and_is_one_request(server: LlmServer) -> None:
    server.script(provider_error(429, "Rate limit reached for gpt-4o", retry_after=2))
    with pytest.raises(openai.RateLimitError) as caught:
        chat(oai(server))
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.code == "rate_limit_exceeded" and "Rate limit reached" in str(caught.value)
    assert server.calls() == 1 and server.pending == 0


def test_openai_server_error_is_internal_server_error(server: LlmServer) -> None:
    server.script(provider_error(500, "The server had an error"))
    with pytest.raises(openai.InternalServerError) as caught:
        chat(oai(server))
    assert caught.value.status_code == 500 and caught.value.type == "server_error"
    assert server.calls() == 1


def test_openai_unauthorized_is_authentication_error_with_the_message(server: LlmServer) -> None:
    server.script(provider_error(401, "Incorrect API key provided: sk-test***"))
    with pytest.raises(openai.AuthenticationError) as caught:
        chat(oai(server))
    assert "Incorrect API key provided: sk-test***" in str(caught.value)
    assert caught.value.code == "invalid_api_key"


def test_openai_malformed_body_raises_json_decode_error_not_an_openai_error(server: LlmServer) -> None:
    server.script(malformed())
    with pytest.raises(json.JSONDecodeError) as caught:
        chat(oai(server))
    assert not isinstance(caught.value, openai.OpenAIError)  # the SDK does not wrap it: callers must catch it
    assert server.calls() == 1


def test_openai_models_list_is_fixed_and_takes_no_scripted_reply(server: LlmServer) -> None:
    server.script(openai_text("for the chat"))
    client = oai(server)
    assert [model.id for model in client.models.list()] == list(MODELS)
    assert server.pending == 1 and chat(client).choices[0].message.content == "for the chat"
    assert server.requests[0].method == "GET" and server.requests[0].path == "/v1/models"


def test_openai_base_url_without_v1_is_served_too(server: LlmServer) -> None:
    client = openai.OpenAI(base_url=server.url, api_key=OPENAI_KEY, max_retries=0, timeout=10)
    assert chat(client).choices[0].message.content == DEFAULT_TEXT
    assert server.last().path == "/chat/completions"


def test_openai_streaming_request_is_refused(server: LlmServer) -> None:
    with pytest.raises(openai.BadRequestError, match="does not stream"):
        chat(oai(server), stream=True)
    assert server.problems and "stream" in server.problems[0]
    server.reset()  # the fixture checks `problems`; this one was expected


# --- Anthropic -----------------------------------------------------------------------------------------------


def test_anthropic_text_reply_parses_into_a_message(server: LlmServer) -> None:
    server.script(anthropic_text("Bonjour", input_tokens=9, output_tokens=4))
    msg = ask(claude(server))
    assert msg.content[0].type == "text" and text_of(msg) == "Bonjour"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (9, 4)
    assert (msg.id, msg.type, msg.role, msg.model) == ("msg_llmserver_1", "message", "assistant", "claude-sonnet-4-5")
    assert msg.stop_reason == "end_turn" and msg.stop_sequence is None


def test_anthropic_tool_use_parses(server: LlmServer) -> None:
    server.script(anthropic_tool_use([("get_weather", {"city": "Oslo"}), ("noop", {})], text="Checking."))
    msg = ask(claude(server), tools=[WEATHER_TOOL_ANTHROPIC])
    assert msg.stop_reason == "tool_use"
    text, first, second = msg.content
    assert isinstance(text, TextBlock) and text.text == "Checking."
    assert isinstance(first, ToolUseBlock) and isinstance(second, ToolUseBlock)
    assert (first.id, first.name, first.input) == ("toolu_1", "get_weather", {"city": "Oslo"})
    assert (second.id, second.name, second.input) == ("toolu_2", "noop", {})


def test_anthropic_request_is_recorded_with_system_messages_tools_and_key(server: LlmServer) -> None:
    ask(claude(server), system="Be brief.", tools=[WEATHER_TOOL_ANTHROPIC])
    record = server.last("anthropic")
    assert (record.path, record.provider) == ("/v1/messages", "anthropic")
    assert record.body["system"] == "Be brief." and record.body["messages"] == HI
    assert record.body["max_tokens"] == 64 and record.body["model"] == "claude-sonnet-4-5"
    assert record.body["tools"] == [WEATHER_TOOL_ANTHROPIC]
    assert record.api_key == ANTHROPIC_KEY  # anthropic 2.x: `authorization: Bearer <key>`, no x-api-key
    assert (
        record.headers.get("x-api-key") == ANTHROPIC_KEY or record.headers["authorization"] == f"Bearer {ANTHROPIC_KEY}"
    )
    assert record.headers["anthropic-version"]
    assert server.calls("anthropic") == 1 and server.calls("openai") == 0


def test_anthropic_rate_limit(server: LlmServer) -> None:
    server.script(
        provider_error(429, "Number of requests has exceeded your rate limit", provider="anthropic", retry_after=0.5)
    )
    with pytest.raises(anthropic.RateLimitError) as caught:
        ask(claude(server))
    assert caught.value.response.headers["retry-after"] == "0.5"
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": "Number of requests has exceeded your rate limit"},
    }
    assert server.calls() == 1


def test_anthropic_overloaded_529_is_overloaded_error_an_internal_server_error(server: LlmServer) -> None:
    server.script(provider_error(529, "Overloaded", provider="anthropic"))
    with pytest.raises(anthropic.OverloadedError) as caught:
        ask(claude(server))
    assert isinstance(caught.value, anthropic.InternalServerError)
    assert caught.value.status_code == 529 and caught.value.response.reason_phrase == "Overloaded"
    assert server.calls() == 1


def test_anthropic_unauthorized_is_authentication_error(server: LlmServer) -> None:
    server.script(provider_error(401, "invalid x-api-key", provider="anthropic"))
    with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
        ask(claude(server))
    assert server.calls() == 1


def test_anthropic_malformed_body_raises_json_decode_error(server: LlmServer) -> None:
    server.script(malformed("anthropic"))
    with pytest.raises(json.JSONDecodeError) as caught:
        ask(claude(server))
    assert not isinstance(caught.value, anthropic.AnthropicError)


def test_anthropic_base_url_with_v1_is_a_404(server: LlmServer) -> None:
    client = anthropic.Anthropic(base_url=server.openai_base_url, api_key=ANTHROPIC_KEY, max_retries=0, timeout=10)
    with pytest.raises(anthropic.NotFoundError, match="/v1/v1/messages"):
        ask(client)
    assert server.last().provider == "unknown"


# --- wire shape: the SDKs build their objects without validation, so validate the bodies against their types --


@pytest.mark.parametrize(
    "reply", [openai_text("a"), openai_tool_calls([("f", {"x": 1})]), openai_tool_calls([("f", "{")])]
)
def test_openai_bodies_validate_as_chat_completion(server: LlmServer, reply: Reply) -> None:
    server.script(reply)
    raw = oai(server).chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
    assert raw.headers["content-type"] == "application/json" and raw.headers["x-request-id"]
    ChatCompletion.model_validate(raw.http_response.json())


@pytest.mark.parametrize("reply", [anthropic_text("a"), anthropic_tool_use([("f", {"x": 1})], text="t")])
def test_anthropic_bodies_validate_as_message(server: LlmServer, reply: Reply) -> None:
    server.script(reply)
    raw = claude(server).messages.with_raw_response.create(model="claude-x", max_tokens=5, messages=HI)
    assert raw.headers["request-id"] == "req_llmserver_1"
    Message.model_validate(raw.http_response.json())


def test_error_bodies_match_the_providers_shapes() -> None:
    openai_body = provider_error(400, "bad", code="context_length_exceeded").body
    assert openai_body == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": None, "code": "context_length_exceeded"}
    }
    assert provider_error(503, "x").body["error"]["type"] == "server_error"
    kinds = {
        status: provider_error(status, "m", provider="anthropic").body["error"]["type"]
        for status in (400, 401, 403, 404, 429, 500, 529)
    }
    assert kinds == {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    assert "retry-after" not in provider_error(429, "m").headers
    with pytest.raises(ValueError, match="provider"):
        provider_error(500, "m", provider="gemini")


# --- the script, the responder, the defaults -----------------------------------------------------------------


def test_script_is_one_fifo_for_both_providers_then_the_default(server: LlmServer) -> None:
    server.script(anthropic_text("first"), openai_text("second"))
    assert text_of(ask(claude(server))) == "first"
    assert chat(oai(server)).choices[0].message.content == "second"
    assert chat(oai(server)).choices[0].message.content == DEFAULT_TEXT
    assert text_of(ask(claude(server))) == DEFAULT_TEXT
    assert [r.provider for r in server.requests] == ["anthropic", "openai", "openai", "anthropic"]


def test_responder_answers_when_the_queue_is_empty(server: LlmServer) -> None:
    def echo(request: RecordedRequest) -> Reply:
        return openai_text("echo: " + request.body["messages"][-1]["content"])

    server.respond_with(echo)
    server.script(openai_text("scripted"))
    client = oai(server)
    assert chat(client).choices[0].message.content == "scripted"
    assert chat(client).choices[0].message.content == "echo: hi"
    server.respond_with(None)
    assert chat(client).choices[0].message.content == DEFAULT_TEXT


def test_reset_forgets_everything(server: LlmServer) -> None:
    server.script(openai_text("never sent"))
    server.respond_with(lambda request: openai_text("never either"))
    chat(oai(server))
    server.script(openai_text("queued"))
    server.reset()
    assert (server.requests, server.calls(), server.pending, server.problems) == ([], 0, 0, [])
    assert chat(oai(server)).choices[0].message.content == DEFAULT_TEXT


def test_a_reply_for_the_other_provider_is_a_500_and_a_problem(server: LlmServer) -> None:
    server.script(openai_text("meant for openai"))
    with pytest.raises(anthropic.InternalServerError, match="made for openai"):
        ask(claude(server))
    assert server.problems == ["request 1 to /v1/messages got a reply made for openai"]
    server.reset()


def test_a_responder_that_raises_is_a_500_and_a_problem(server: LlmServer) -> None:
    def broken(request: RecordedRequest) -> Reply:
        raise KeyError("oops")

    server.respond_with(broken)
    with pytest.raises(openai.InternalServerError, match="responder raised"):
        chat(oai(server))
    assert len(server.problems) == 1 and "KeyError" in server.problems[0]
    server.reset()


def test_hand_made_replies_are_sent_as_given(server: LlmServer) -> None:
    server.script(Reply(status=200, body="not json", headers={"Content-Type": "text/plain"}), Reply(status=204))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for expected in (b"not json", b""):
        connection.request("POST", "/v1/chat/completions", body=b"{}", headers={"content-type": "application/json"})
        response = connection.getresponse()
        assert response.read() == expected
    assert response.status == 204
    assert response.getheader("content-type") == "application/json"  # a hand-made reply's default
    connection.close()


def test_unknown_path_is_an_openai_style_404(server: LlmServer) -> None:
    server.script(openai_text("kept"))
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/v1/completions?x=1", body=b'{"model": "m"}')
    response = connection.getresponse()
    assert response.status == 404
    assert json.loads(response.read()) == {
        "error": {
            "message": "Invalid URL (POST /v1/completions)",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    connection.close()
    assert server.pending == 1 and server.last() == RecordedRequest(
        "/v1/completions", server.last().headers, {"model": "m"}, "unknown"
    )


def test_chunked_request_body_is_read_and_the_connection_stays_usable(server: LlmServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(
        "POST", "/v1/messages", body=iter([b'{"model": ', b'"claude-x", "max_tokens": 3}']), encode_chunked=True
    )
    assert json.loads(connection.getresponse().read())["model"] == "claude-x"
    connection.request("POST", "/v1/messages", body=b'{"model": "claude-y"}')
    assert json.loads(connection.getresponse().read())["model"] == "claude-y"
    connection.close()
    assert [r.body["model"] for r in server.requests] == ["claude-x", "claude-y"]


# --- threads, keep-alive, another process --------------------------------------------------------------------


def test_eight_threads_at_once_all_get_their_answers(server: LlmServer) -> None:
    together = threading.Barrier(8, timeout=10)  # every answer waits for all 8 requests: a serial server would fail

    def respond(request: RecordedRequest) -> Reply:
        together.wait()
        asked = request.body["messages"][-1]["content"]
        return (openai_text if request.provider == "openai" else anthropic_text)(f"answer to {asked}")

    server.respond_with(respond)
    openai_client, anthropic_client = oai(server), claude(server)  # shared by the threads, as a worker pool would

    def call(n: int) -> str:
        messages: Any = [{"role": "user", "content": f"q{n}"}]
        if n % 2:
            msg = anthropic_client.messages.create(model="claude-x", max_tokens=5, messages=messages)
            return text_of(msg)
        resp = openai_client.chat.completions.create(model="gpt-4o", messages=messages)
        return resp.choices[0].message.content or ""

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(call, range(8)))
    assert answers == [f"answer to q{n}" for n in range(8)]
    assert server.calls() == 8 and server.calls("openai") == 4 and server.calls("anthropic") == 4


def test_keep_alive_reuses_one_connection(server: LlmServer, sockets: SocketGuard) -> None:
    client = oai(server)
    port = server.port
    for _ in range(3):
        chat(client)
    assert sockets.attempts.count(("127.0.0.1", port)) == 1
    assert server.calls() == 3


def test_another_process_can_call_it(server: LlmServer) -> None:
    """As the e2e tests' `agentflow` subprocess does: the real SDK there (two calls on one keep-alive connection),
    and a plain urllib call sending its key as x-api-key."""
    server.script(openai_text("from the parent"), openai_text("twice"), anthropic_text("and again"))
    code = textwrap.dedent(
        f"""
        import json, urllib.request
        import openai
        client = openai.OpenAI(base_url={server.openai_base_url!r}, api_key="sk-child", max_retries=0, timeout=10)
        for _ in range(2):
            print(client.chat.completions.create(model="m", messages=[{{"role": "user", "content": "hi"}}])
                  .choices[0].message.content)
        request = urllib.request.Request(
            {server.anthropic_base_url + "/v1/messages"!r},
            data=json.dumps({{"model": "claude-x", "max_tokens": 5, "messages": []}}).encode(),
            headers={{"x-api-key": "ak-child", "anthropic-version": "2023-06-01", "content-type": "application/json"}},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            print(json.load(response)["content"][0]["text"])
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in SDK_ENV}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["from the parent", "twice", "and again"]
    assert [r.api_key for r in server.requests] == ["sk-child", "sk-child", "ak-child"]
    assert [r.provider for r in server.requests] == ["openai", "openai", "anthropic"]
