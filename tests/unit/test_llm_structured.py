"""`agentflow.llm.structured.structured_response`, AutoGPT's structured LLM call, through the real openai SDK to the
loopback provider server (tests/support/llm_server.py; never a mock of the SDK): the prompt filled from
`prompt_values`, the format instructions (tagged `<json_output id="...">` section or pure JSON), the answer parsed
and checked, the feedback turn and retry on a bad answer, the shrink of max_tokens after "context too long", the
conversation history, and the prompt cut to fit a small context window.

Every test runs under the socket guard: a connection (or a DNS lookup) leaving 127.0.0.0/8 fails it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from agentflow.blocks.sdk import BlockContext, BlockError
from agentflow.credentials.models import APIKeyCredentials
from agentflow.llm.call import estimate_tokens
from agentflow.llm.failures import ProviderError
from agentflow.llm.models import ModelInfo, resolve_model
from agentflow.llm.runtime import LlmRuntime
from agentflow.llm.structured import StructuredCall, structured_response
from agentflow.net.policy import HttpPolicy
from tests.support.llm_server import LlmServer, RecordedRequest, Reply, openai_text, provider_error

pytestmark = pytest.mark.usefixtures("sdk_env_cleared", "sockets")

LOOPBACK = HttpPolicy(allow_hosts=frozenset({"127.0.0.1"}))
TAG = re.compile(r'<json_output id="([0-9a-f]+)">')
PERSON = {"name": "the person's name", "age": "their age in years"}
CONTEXT_TOO_LONG = (
    "This model's maximum context length is 128000 tokens. However, you requested 140000 tokens "
    "(124000 in the messages, 16000 in the completion)."
)


def model(name: str) -> ModelInfo:
    info = resolve_model(name)
    assert info is not None, name
    return info


GPT_4O = model("gpt-4o")


@pytest.fixture
def context() -> BlockContext:
    return BlockContext(http=LOOPBACK, llm=LlmRuntime(timeout=10.0))


def usage_of(context: BlockContext) -> Any:
    assert isinstance(context.llm, LlmRuntime)
    return context.llm.usage


def openai_key(server: LlmServer) -> APIKeyCredentials:
    return APIKeyCredentials(
        id="k", provider="openai", api_key=SecretStr("sk-structured"), base_url=server.openai_base_url
    )


def person_call(server: LlmServer, **extra: Any) -> StructuredCall:
    extra.setdefault("expected_format", PERSON)
    return StructuredCall(
        prompt=extra.pop("prompt", "Describe Ada."), model=GPT_4O, credentials=openai_key(server), **extra
    )


def tag_of(request: RecordedRequest) -> str:
    for message in request.body["messages"]:
        if message["role"] == "system" and (found := TAG.search(message["content"])):
            return found.group(1)
    raise AssertionError("no <json_output id=...> in the request's system messages")


Answer = Callable[[str], str]  # the request's tag -> the reply text


def tagged(payload: Any, before: str = "Here it is:\n", after: str = "\nDone.") -> Answer:
    return lambda tag: f'{before}<json_output id="{tag}">\n{json.dumps(payload)}\n</json_output>{after}'


def plain(text: str) -> Answer:
    return lambda tag: text


def answer(server: LlmServer, *answers: Answer) -> list[str]:
    """Answer each request with the next answer, filled with that request's tag; returns the texts sent."""
    queue, sent = list(answers), []

    def respond(request: RecordedRequest) -> Reply:
        systems = [str(m.get("content")) for m in request.body["messages"] if m.get("role") == "system"]
        found = [match.group(1) for content in systems if (match := TAG.search(content))]
        text = queue.pop(0)(found[0] if found else "")  # pure JSON mode has no section id
        sent.append(text)
        return openai_text(text)

    server.respond_with(respond)
    return sent


def bodies(server: LlmServer) -> list[Any]:
    return [request.body for request in server.requests]


# --- tag mode ------------------------------------------------------------------------------------------------------


def test_tag_mode_success_with_prompt_values(server: LlmServer, context: BlockContext) -> None:
    sent = answer(server, tagged({"name": "Ada", "age": 36}))
    call = person_call(
        server,
        prompt="Describe {{who}}.",
        sys_prompt="You are {{role}}.",
        prompt_values={"who": "Ada Lovelace", "role": "a careful clerk"},
    )
    response, prompt = structured_response(context, call)
    assert response == {"name": "Ada", "age": 36}
    (body,) = bodies(server)
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "system", "user"]
    assert messages[0] == {"role": "system", "content": "You are a careful clerk."}
    assert messages[2] == {"role": "user", "content": "Describe Ada Lovelace."}
    instructions = messages[1]["content"]
    tag = tag_of(server.last())
    assert f'<json_output id="{tag}">' in instructions and "</json_output>" in instructions
    assert '"name": "the person\'s name"' in instructions and '"age": "their age in years"' in instructions
    assert "response_format" not in body  # tag mode: no JSON mode
    assert prompt == messages
    assert sent[0] not in json.dumps(prompt)  # the prompt is what was sent, not the answer
    usage = usage_of(context)
    assert (usage.llm_calls, usage.llm_retries, usage.model) == (1, 0, "gpt-4o")


def test_each_call_gets_a_fresh_tag(server: LlmServer, context: BlockContext) -> None:
    answer(server, tagged({"name": "A", "age": 1}), tagged({"name": "B", "age": 2}))
    structured_response(context, person_call(server))
    structured_response(context, person_call(server))
    first, second = (tag_of(request) for request in server.requests)
    assert first != second and len(first) == 16


def test_a_section_from_another_call_does_not_count(server: LlmServer, context: BlockContext) -> None:
    answer(server, lambda tag: '<json_output id="0123456789abcdef">{"name": "x", "age": 1}</json_output>')
    with pytest.raises(BlockError, match="does not contain the expected"):
        structured_response(context, person_call(server, retry=1))


def test_a_reply_without_the_section_is_fed_back(server: LlmServer, context: BlockContext) -> None:
    sent = answer(server, plain("Ada was born in 1815."), tagged({"name": "Ada", "age": 36}))
    response, prompt = structured_response(context, person_call(server))
    assert response == {"name": "Ada", "age": 36}
    first, second = bodies(server)
    tag = tag_of(server.requests[0])
    assert tag_of(server.requests[1]) == tag  # the same section id on every attempt
    assert len(first["messages"]) == 2  # the format instructions and the prompt
    assert second["messages"][:2] == first["messages"]
    assert second["messages"][2] == {"role": "assistant", "content": "Ada was born in 1815."}
    feedback = second["messages"][3]
    assert feedback["role"] == "user" and len(second["messages"]) == 4
    assert f'does not contain the expected <json_output id="{tag}"> section' in feedback["content"]
    usage = usage_of(context)
    assert (usage.llm_calls, usage.llm_retries) == (2, 1)
    assert prompt == second["messages"]  # the failed turn is in it ...
    assert all(sent[1] != m.get("content") for m in prompt)  # ... the final reply is not


def test_invalid_json_in_the_section_is_fed_back(server: LlmServer, context: BlockContext) -> None:
    answer(
        server, lambda tag: f'<json_output id="{tag}">{{"name": "Ada", </json_output>', tagged({"name": "A", "age": 2})
    )
    response, _ = structured_response(context, person_call(server))
    assert response == {"name": "A", "age": 2}
    feedback = server.last().body["messages"][-1]["content"]
    assert "is not valid" in feedback and "no parseable JSON object" in feedback


def test_missing_keys_are_named_in_the_feedback(server: LlmServer, context: BlockContext) -> None:
    answer(server, tagged({"name": "Ada"}), tagged({"name": "Ada", "age": 36}))
    response, prompt = structured_response(context, person_call(server))
    assert response == {"name": "Ada", "age": 36}
    feedback = server.last().body["messages"][-1]
    assert feedback["role"] == "user"
    assert "Missing keys" in feedback["content"] and "'age'" in feedback["content"]
    assert "'name'" not in feedback["content"]
    assert len(prompt) == 4 and usage_of(context).llm_retries == 1


def test_every_attempt_failing_raises_the_last_problem(server: LlmServer, context: BlockContext) -> None:
    answer(server, plain("no JSON here"), tagged({"name": "Ada"}), tagged({"age": 36}))
    with pytest.raises(BlockError) as caught:
        structured_response(context, person_call(server, retry=3))
    assert "Missing keys" in str(caught.value) and "'name'" in str(caught.value)
    assert "'age'" not in str(caught.value)
    assert server.calls() == 3
    assert len(server.last().body["messages"]) == 2 + 2 + 2  # two feedback turns before the last attempt
    assert usage_of(context).llm_calls == 3


def test_retry_1_makes_exactly_one_call(server: LlmServer, context: BlockContext) -> None:
    answer(server, tagged({"name": "Ada"}), tagged({"name": "Ada", "age": 1}))
    with pytest.raises(BlockError, match="Missing keys"):
        structured_response(context, person_call(server, retry=1))
    assert server.calls() == 1


def test_retry_0_makes_no_call(server: LlmServer, context: BlockContext) -> None:
    with pytest.raises(BlockError, match="retry"):
        structured_response(context, person_call(server, retry=0))
    assert server.calls() == 0


def test_an_optional_key_is_not_required(server: LlmServer, context: BlockContext) -> None:
    answer(server, tagged({"name": "Ada"}))
    expected = {"name": "the person's name", "nickname": "a nickname (optional)"}
    response, _ = structured_response(context, person_call(server, expected_format=expected))
    assert response == {"name": "Ada"} and server.calls() == 1


def test_a_non_object_answer_is_fed_back(server: LlmServer, context: BlockContext) -> None:
    answer(server, tagged(["Ada", 36]), tagged({"name": "Ada", "age": 36}))
    response, _ = structured_response(context, person_call(server))
    assert response == {"name": "Ada", "age": 36}
    assert "Expected a dictionary, but got str" in server.last().body["messages"][-1]["content"]


def test_tag_mode_list_result_accepts_an_array_of_objects(server: LlmServer, context: BlockContext) -> None:
    people = [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]
    answer(server, tagged(people))
    response, _ = structured_response(context, person_call(server, list_result=True))
    assert response == people
    instructions = server.last().body["messages"][0]["content"]
    assert "a JSON array of objects" in instructions and '"name"' in instructions


def test_tag_mode_list_result_checks_every_element(server: LlmServer, context: BlockContext) -> None:
    people = [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]
    answer(server, tagged([{"name": "Ada", "age": 36}, {"name": "Alan"}]), tagged(people))
    response, _ = structured_response(context, person_call(server, list_result=True))
    assert response == people
    feedback = server.last().body["messages"][-1]["content"]
    assert "expected array format" in feedback and "Missing keys: {'age'}" in feedback


# --- pure JSON mode ----------------------------------------------------------------------------------------------


def test_pure_json_mode_sends_json_mode_and_parses(server: LlmServer, context: BlockContext) -> None:
    answer(server, plain('{"name": "Ada", "age": 36}'))
    response, prompt = structured_response(context, person_call(server, force_json_output=True))
    assert response == {"name": "Ada", "age": 36}
    body = server.last().body
    assert body["response_format"] == {"type": "json_object"}
    instructions = body["messages"][0]
    assert instructions["role"] == "system"
    assert "Reply with valid JSON only" in instructions["content"] and "<json_output" not in instructions["content"]
    assert '"name"' in instructions["content"] and '"age"' in instructions["content"]
    assert prompt == body["messages"]


def test_pure_json_mode_finds_the_object_inside_text(server: LlmServer, context: BlockContext) -> None:
    answer(server, plain('Sure! Here you go: {"name": "Ada", "age": 36, "tags": {"a": 1}} Hope that helps.'))
    response, _ = structured_response(context, person_call(server, force_json_output=True))
    assert response == {"name": "Ada", "age": 36, "tags": {"a": 1}}
    assert server.calls() == 1


def test_pure_json_mode_feeds_back_a_non_json_answer(server: LlmServer, context: BlockContext) -> None:
    answer(server, plain("I cannot answer in JSON."), plain('{"name": "Ada", "age": 36}'))
    response, _ = structured_response(context, person_call(server, force_json_output=True))
    assert response == {"name": "Ada", "age": 36}
    feedback = server.last().body["messages"][-1]["content"]
    assert "not valid JSON" in feedback and "tagged section" not in feedback


def test_pure_list_result_needs_a_results_key(server: LlmServer, context: BlockContext) -> None:
    people = [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]
    answer(server, plain('{"name": "Ada", "age": 36}'), plain(json.dumps({"reasoning": "two", "results": people})))
    response, prompt = structured_response(context, person_call(server, force_json_output=True, list_result=True))
    assert response == people
    first, second = bodies(server)
    assert '"results"' in first["messages"][0]["content"]
    feedback = second["messages"][-1]
    assert feedback["role"] == "user"
    assert "Expected an array of objects in the 'results' key" in feedback["content"]
    assert second["messages"][-2] == {"role": "assistant", "content": '{"name": "Ada", "age": 36}'}
    assert usage_of(context).llm_retries == 1 and len(prompt) == 4


# --- no expected format -------------------------------------------------------------------------------------------


def test_empty_expected_format_returns_the_text(server: LlmServer, context: BlockContext) -> None:
    server.script(openai_text("Just some prose."))
    call = person_call(server, expected_format={}, sys_prompt="Be nice.", force_json_output=True)
    response, prompt = structured_response(context, call)
    assert response == {"response": "Just some prose."}
    body = server.last().body
    assert body["messages"] == [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Describe Ada."}]
    assert "response_format" not in body
    assert prompt == body["messages"]
    assert (usage_of(context).llm_calls, usage_of(context).llm_retries) == (1, 0)


# --- context too long -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("requested", "first_sent"), [(None, 16_384), (1000, 1000)])
def test_context_too_long_shrinks_max_tokens(
    server: LlmServer, context: BlockContext, requested: int | None, first_sent: int
) -> None:
    server.script(provider_error(400, CONTEXT_TOO_LONG))
    sent = answer(server, tagged({"name": "Ada", "age": 36}))
    response, prompt = structured_response(context, person_call(server, max_tokens=requested))
    assert response == {"name": "Ada", "age": 36}
    first, second = bodies(server)
    assert first["max_tokens"] == first_sent
    assert second["max_tokens"] == int(0.85 * first_sent)
    assert second["messages"] == first["messages"]  # no feedback turn: the same prompt again
    assert prompt == first["messages"] and len(sent) == 1
    assert usage_of(context).llm_calls == 1  # the refused call is not counted as a call
    assert usage_of(context).llm_retries == 1


@pytest.mark.parametrize(
    ("requested", "prompt_chars", "compress"),
    [(100_000, 20, True), (None, 470_000, False)],
    ids=["requested-above-the-model-max", "capped-by-the-context-window"],
)
def test_context_too_long_shrinks_what_was_sent(
    server: LlmServer, context: BlockContext, requested: int | None, prompt_chars: int, compress: bool
) -> None:
    server.script(provider_error(400, CONTEXT_TOO_LONG))
    answer(server, tagged({"name": "Ada", "age": 36}))
    call = person_call(server, max_tokens=requested, prompt="x" * prompt_chars, compress_prompt_to_fit=compress)
    structured_response(context, call)
    first, second = bodies(server)
    assert second["max_tokens"] == int(0.85 * first["max_tokens"])


def test_context_too_long_on_every_attempt_raises_the_provider_error(server: LlmServer, context: BlockContext) -> None:
    server.script(*(provider_error(400, CONTEXT_TOO_LONG) for _ in range(2)))
    with pytest.raises(ProviderError) as caught:
        structured_response(context, person_call(server, retry=2, max_tokens=1000))
    assert caught.value.context_too_long
    assert [body["max_tokens"] for body in bodies(server)] == [1000, 850]


def test_other_provider_errors_are_not_retried_here(server: LlmServer, context: BlockContext) -> None:
    server.script(provider_error(400, "Invalid value for 'temperature'"))
    with pytest.raises(ProviderError, match="temperature"):
        structured_response(context, person_call(server))
    assert server.calls() == 1


# --- conversation history and prompt compression -----------------------------------------------------------------


def test_conversation_history_comes_first_verbatim(server: LlmServer, context: BlockContext) -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "What is 6 x 7?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "mul", "arguments": "[6, 7]"}}],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "42"},
        {"role": "assistant", "content": "42."},
    ]
    snapshot = json.loads(json.dumps(history))
    answer(server, tagged({"name": "Ada", "age": 36}))
    _, prompt = structured_response(context, person_call(server, conversation_history=history, sys_prompt="Hi."))
    messages = server.last().body["messages"]
    assert messages[:4] == snapshot
    assert [m["role"] for m in messages[4:]] == ["system", "system", "user"]
    assert messages[4]["content"] == "Hi."
    assert prompt[:4] == snapshot
    assert history == snapshot  # the caller's list is not changed


def ollama_call(server: LlmServer, prompt: str, **extra: Any) -> StructuredCall:
    credentials = APIKeyCredentials(id="o", provider="ollama", api_key=SecretStr("FAKE_API_KEY"))
    return StructuredCall(
        prompt=prompt,
        model=model("llama3"),  # an 8192-token context window
        credentials=credentials,
        expected_format={},
        ollama_host=f"127.0.0.1:{server.port}",
        **extra,
    )


def test_a_prompt_too_long_for_the_model_is_cut(server: LlmServer, context: BlockContext) -> None:
    original = "".join(f"line {n}: some words to fill the context window\n" for n in range(4000))
    assert estimate_tokens([{"role": "user", "content": original}]) > 8192  # far over half the window
    response, prompt = structured_response(context, ollama_call(server, original, sys_prompt="Summarise."))
    assert response == {"response": "ok"}
    record = server.last()
    assert record.path == "/v1/chat/completions" and record.body["model"] == "llama3"
    system, user = record.body["messages"]
    assert system == {"role": "system", "content": "Summarise."}
    assert user["role"] == "user" and len(user["content"]) < len(original)
    assert "[...]" in user["content"]
    assert user["content"].startswith("line 0: ") and user["content"].endswith(
        "line 3999: some words to fill the context window\n"
    )
    assert estimate_tokens(record.body["messages"]) <= 8192 // 2
    assert prompt == record.body["messages"]


def test_compress_prompt_to_fit_false_sends_the_prompt_whole(server: LlmServer, context: BlockContext) -> None:
    original = "".join(f"line {n}: some words to fill the context window\n" for n in range(4000))
    structured_response(context, ollama_call(server, original, compress_prompt_to_fit=False))
    (user,) = server.last().body["messages"]
    assert user == {"role": "user", "content": original}


def test_a_prompt_that_fits_is_not_cut(server: LlmServer, context: BlockContext) -> None:
    original = "short enough " * 100
    structured_response(context, ollama_call(server, original))
    assert server.last().body["messages"] == [{"role": "user", "content": original}]
