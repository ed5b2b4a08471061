"""AutoGPT's structured LLM call (BLOCKS-AGENTS.md §2.3), which all five LLM blocks build on: the prompt filled
with `prompt_values`, format instructions for `expected_format`, the answer's JSON found (inside a tagged section,
or the whole answer in pure-JSON mode), checked against the expected keys, and on failure the error fed back to the
model for another try, `retry` attempts in all. Transient provider failures are not retried here: they raise
RetryableError and the engine's retry policy (backoff, `retry-after`) runs the node again."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentflow.blocks.sdk import BlockContext, BlockError
from agentflow.llm.call import estimate_tokens, llm_call, runtime_of
from agentflow.llm.failures import ProviderError
from agentflow.llm.models import ModelInfo, effective_max_tokens, resolve_model, unknown_model_message
from agentflow.llm.types import Message

CONTEXT_SHRINK = 0.85  # AutoGPT's: the output-token allowance after a "context too long" answer
MAX_COMPRESS_ROUNDS = 40


@dataclass
class StructuredCall:
    """One structured request, as the blocks fill it in."""

    prompt: str
    model: ModelInfo
    credentials: Any
    expected_format: Mapping[str, str] = field(default_factory=dict)
    list_result: bool = False
    force_json_output: bool = False
    sys_prompt: str = ""
    conversation_history: Sequence[Any] | None = None
    retry: int = 3
    prompt_values: Mapping[str, Any] = field(default_factory=dict)
    max_tokens: int | None = None
    compress_prompt_to_fit: bool = True
    ollama_host: str | None = None


def model_of(value: Any) -> ModelInfo:
    """The catalogue entry for a node's `model`; BlockError naming it when unknown."""
    info = resolve_model(value)
    if info is None:
        raise BlockError(unknown_model_message(value))
    return info


def fill(template: str, values: Mapping[str, Any]) -> str:
    """`{{name}}` placeholders filled from `prompt_values` (BLOCKS.md §2.8's sandboxed Jinja, no autoescape)."""
    if not values or not template:
        return template
    from agentflow.blocks.text_format import TemplateRenderError, render_template

    try:
        return render_template(template, values)
    except TemplateRenderError as exc:
        raise BlockError(f"prompt_values could not be filled into the prompt: {exc}") from None


def format_instructions(expected: Mapping[str, str], list_result: bool, pure: bool, tag: str) -> str:
    layout = json.dumps(dict(expected), indent=2)
    if pure and list_result:
        shape = json.dumps({"reasoning": "... (optional)", "results": ["<an object in the format below>"]}, indent=2)
        return (
            "Reply with valid JSON only, no other text: an object of this shape\n"
            f'{shape}\nwhere each element of `results` is an object with exactly these keys (use "" for a key '
            f"you cannot answer):\n{layout}"
        )
    what = "a JSON array of objects, each with" if list_result else "a JSON object with"
    keys = f'{what} these keys (use "" for a key you cannot answer):\n{layout}'
    if pure:
        return f"Reply with valid JSON only, no other text: {keys}"
    return (
        f'Reply with {keys}\nPut the JSON inside exactly one <json_output id="{tag}">...</json_output> section; '
        "text outside the section is allowed."
    )


def _parse_pure(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as first:
        start, end = text.find("{"), text.rfind("}")
        if 0 <= start < end:
            try:
                return json.loads(text[start : end + 1])
            except json.JSONDecodeError:
                pass
        raise ValueError(f"the reply is not valid JSON: {first}") from None


def _parse_tagged(text: str, tag: str) -> Any:
    opening = f'<json_output id="{tag}">'
    start = text.find(opening)
    if start < 0:
        raise ValueError(f"Response does not contain the expected {opening} section")
    body = text[start + len(opening) :]
    end = body.rfind("</json_output>")
    body = (body[:end] if end >= 0 else body).strip()
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the JSON in the {opening} section is not valid: {exc}") from None


def _format_problems(parsed: Any, expected: Mapping[str, str], list_result: bool, pure: bool) -> tuple[Any, str]:
    """(the response, problems joined by newlines; "" when it matches)."""
    if pure and list_result and isinstance(parsed, dict):
        if not isinstance(parsed.get("results"), list):
            return parsed, f"Expected an array of objects in the 'results' key, but got: {json.dumps(parsed)}"
        parsed = parsed["results"]
    items = parsed if isinstance(parsed, list) else [parsed]
    problems = []
    for item in items:
        if not isinstance(item, dict):
            problems.append(f"Expected a dictionary, but got {type(item).__name__}")
            continue
        required = {key for key, about in expected.items() if not str(about).rstrip().endswith("(optional)")}
        missing = sorted(required - set(item))
        if missing:
            problems.append(f"Missing keys: {{{', '.join(repr(k) for k in missing)}}}")
    return parsed, "\n".join(problems)


def compress(messages: list[Message], limit_tokens: int) -> list[Message]:
    """Cut the longest text contents in their middle until the prompt fits about `limit_tokens` (AutoGPT truncates
    toward half the context window; nothing is summarised)."""
    rounds = 0
    while estimate_tokens(messages) > limit_tokens and rounds < MAX_COMPRESS_ROUNDS:
        rounds += 1
        texts = [(len(m["content"]), i) for i, m in enumerate(messages) if isinstance(m.get("content"), str)]
        if not texts:
            break
        length, index = max(texts)
        if length < 200:
            break
        content: str = messages[index]["content"]
        keep = length // 4
        messages[index] = {**messages[index], "content": content[:keep] + "\n[...]\n" + content[-keep:]}
    return messages


def build_messages(call: StructuredCall, tag: str) -> list[Message]:
    messages: list[Message] = [dict(m) for m in call.conversation_history or [] if isinstance(m, Mapping) and m]
    sys_prompt = fill(call.sys_prompt, call.prompt_values)
    prompt = fill(call.prompt, call.prompt_values)
    if sys_prompt:
        messages.append({"role": "system", "content": sys_prompt})
    if call.expected_format:
        pure = call.force_json_output
        messages.append(
            {"role": "system", "content": format_instructions(call.expected_format, call.list_result, pure, tag)}
        )
    if prompt:
        messages.append({"role": "user", "content": prompt})
    if call.compress_prompt_to_fit:
        messages = compress(messages, call.model.context_window // 2)
    return messages


def structured_response(context: BlockContext, call: StructuredCall) -> tuple[Any, list[Message]]:
    """(response, prompt): the parsed answer (`{"response": text}` with no expected format) and the messages sent,
    failed turns included. Raises BlockError once `retry` attempts are used up."""
    if call.retry < 1:
        raise BlockError("retry is 0: no LLM call was made (retry counts every attempt, at least 1)")
    tag = secrets.token_hex(8)  # a fresh id per call: text the model quotes cannot close the section early
    messages = build_messages(call, tag)
    usage = runtime_of(context).usage
    max_tokens = call.max_tokens
    feedback = ""
    for attempt in range(call.retry):
        sent = effective_max_tokens(call.model, max_tokens, estimate_tokens(messages))  # what llm_call will ask
        if attempt:
            usage.llm_retries += 1
        try:
            result = llm_call(
                context,
                call.credentials,
                call.model,
                messages,
                max_tokens=max_tokens,
                json_mode=call.force_json_output and bool(call.expected_format),
                ollama_host=call.ollama_host,
            )
        except ProviderError as exc:
            if not exc.context_too_long or attempt + 1 >= call.retry:
                raise
            max_tokens = max(1, int(CONTEXT_SHRINK * sent))  # of what was sent: the model's caps apply first
            feedback = str(exc)
            continue
        text = result.text
        if not call.expected_format:
            return {"response": text}, messages
        pure = call.force_json_output
        try:
            parsed = _parse_pure(text) if pure else _parse_tagged(text, tag)
        except ValueError as exc:
            feedback = str(exc)
            what = "array" if call.list_result else "object"
            messages.extend(_feedback(text, f"Your previous reply had no parseable JSON {what}: {exc}", what, pure))
            continue
        response, problems = _format_problems(parsed, call.expected_format, call.list_result, pure)
        if not problems:
            return response, messages
        feedback = problems
        what = "array" if call.list_result else "object"
        messages.extend(
            _feedback(text, f"Your previous reply did not match the expected {what} format:\n{problems}", what, pure)
        )
    raise BlockError(feedback or "the LLM gave no usable answer")


def _feedback(reply: str, problem: str, what: str, pure: bool) -> list[Message]:
    again = f"Please answer again with a valid JSON {what} in the expected format"
    again += "." if pure else ", inside the tagged section."
    return [{"role": "assistant", "content": reply}, {"role": "user", "content": f"{problem}\n{again}"}]
