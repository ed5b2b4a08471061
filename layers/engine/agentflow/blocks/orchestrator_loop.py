"""The Orchestrator's turns (BLOCKS-AGENTS.md §3.2-3.4): the conversation rebuilt from its history, the model asked
with the tools, its tool calls checked against the tools' schemas (errors fed back for another try), and either the
calls' arguments yielded on the tool pins (traditional mode) or the tools run here (agent mode)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any

from agentflow.blocks.execution import execute_block
from agentflow.blocks.sdk import BlockContext, BlockError
from agentflow.llm.call import llm_call, runtime_of
from agentflow.llm.models import ModelInfo
from agentflow.llm.structured import compress, fill, model_of
from agentflow.llm.tools import Tool, build_tools, pending_calls, tool_result_message
from agentflow.llm.types import ChatResult, Message, ToolCall

MAIN_OBJECTIVE = "[Main Objective Prompt]: "


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _has_prefixed(history: list[Message], role: str) -> bool:
    return any(
        m.get("role") == role and isinstance(m.get("content"), str) and m["content"].startswith(MAIN_OBJECTIVE)
        for m in history
    )


def _call_problems(call: ToolCall, tools: dict[str, Tool]) -> tuple[Tool | None, dict[str, Any], list[str]]:
    tool = tools.get(call.name) or (next(iter(tools.values())) if len(tools) == 1 else None)
    if tool is None:
        return None, {}, [f"Tool call '{call.name}' names no tool; the tools are: {', '.join(sorted(tools))}"]
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError as exc:
        return tool, {}, [f"Tool call '{call.name}' has arguments that are not valid JSON: {exc}"]
    if not isinstance(arguments, dict):
        return tool, {}, [f"Tool call '{call.name}' must have a JSON object as arguments"]
    problems = []
    known = set(tool.parameters.get("properties", {}))
    unknown = sorted(set(arguments) - known)
    if unknown:
        problems.append(f"Tool call '{call.name}' has unknown parameters: {unknown} (expected: {sorted(known)})")
    missing = sorted(set(tool.required) - set(arguments))
    if missing:
        problems.append(f"Tool call '{call.name}' is missing required parameters: {missing}")
    return tool, arguments, problems


class Turn:
    """One model turn with tools: asked up to `retry` times until every tool call is valid."""

    def __init__(self, data: Any, context: BlockContext, model: ModelInfo, tools: list[Tool]) -> None:
        self.data, self.context, self.model = data, context, model
        self.tools = {tool.name: tool for tool in tools}
        self.schemas = [tool.schema() for tool in tools]

    def ask(self, history: list[Message]) -> tuple[ChatResult, list[tuple[ToolCall, Tool, dict[str, Any]]]]:
        attempts = max(1, self.data.retry)
        messages = list(history)
        last = ""
        for attempt in range(attempts):
            if attempt:
                runtime_of(self.context).usage.llm_retries += 1
            result = llm_call(
                self.context,
                self.context.credentials.get("credentials"),
                self.model,
                messages,
                max_tokens=self.data.max_tokens,
                tools=self.schemas,
                parallel_tool_calls=self.data.multiple_tool_calls if not self.model.name.startswith("o") else None,
                ollama_host=self.data.ollama_host,
            )
            checked, problems = [], []
            for call in result.tool_calls:
                tool, arguments, found = _call_problems(call, self.tools)
                problems += found
                if tool is not None:
                    checked.append((call, tool, arguments))
            if not problems:
                return result, checked
            last = "\n".join(problems)
            # the invalid calls go back as text: calls without results are not a valid history for the providers
            said = {"role": "assistant", "content": result.text or _calls_text(result.tool_calls)}
            messages = [*messages, said, {"role": "user", "content": f"{last}\nPlease fix the tool calls."}]
        raise BlockError(last)


def _calls_text(calls: tuple[ToolCall, ...]) -> str:
    return "; ".join(f"called {call.name}({call.arguments})" for call in calls) or "(no answer)"


def _history(data: Any) -> list[Message]:
    history: list[Message] = [dict(m) for m in data.conversation_history or [] if isinstance(m, Mapping) and m]
    return history


def _objective(data: Any, history: list[Message], model: ModelInfo) -> list[Message]:
    sys_prompt = fill(data.sys_prompt, data.prompt_values)
    prompt = fill(data.prompt, data.prompt_values)
    if sys_prompt and not _has_prefixed(history, "system"):
        history.append({"role": "system", "content": MAIN_OBJECTIVE + sys_prompt})
    if prompt and not _has_prefixed(history, "user"):
        history.append({"role": "user", "content": MAIN_OBJECTIVE + prompt})
    if data.conversation_compaction:  # AutoGPT's compress_prompt_to_fit: toward half the context window
        history = compress(history, model.context_window // 2)
    return history


def run_orchestrator(data: Any, context: BlockContext) -> Iterator[tuple[str, Any]]:
    model = model_of(data.model)
    tools = build_tools(context.graph, context.node_id)
    if not tools:
        raise BlockError("There is no next node to execute: link the Orchestrator's tools pin to the tools it may use")
    yield "tool_functions", json.dumps([tool.schema() for tool in tools])
    if data.agent_mode_max_iterations != 0:
        yield from _agent_mode(data, context, model, tools)
        return
    history = _history(data)
    pending = pending_calls(history)
    output = data.last_tool_output
    if pending:
        if output is None:
            raise BlockError("a tool call waits for its result, and last_tool_output has none")
        history.append(tool_result_message(pending[0], _as_text(output)))
        if len(pending) > 1:  # more results to come: wait for the next one
            yield "conversations", history
            return
    elif output:
        history.append({"role": "user", "content": f"Last tool output: {json.dumps(output, default=str)}"})
    history = _objective(data, history, model)
    result, calls = Turn(data, context, model, tools).ask(history)
    if not calls:
        yield "finished", result.text
        return
    for _call, tool, arguments in calls:
        for link in tool.links:
            value = arguments.get(_clean_key(tool, link.sink_name))
            if value is not None:  # an omitted argument is not delivered (AutoGPT's rule)
                yield link.pin, value
    if result.reasoning:
        history.append({"role": "assistant", "content": f"[Reasoning]: {result.reasoning}"})
    history.append(result.assistant_message)
    yield "conversations", history


def _clean_key(tool: Tool, sink_name: str) -> str:
    return next((key for key, name in tool.field_mapping.items() if name == sink_name), sink_name)


def _run_tool(context: BlockContext, tool: Tool, arguments: Mapping[str, Any]) -> str:
    """Agent mode: run the tool's block here, with the sink node's own defaults under the model's arguments."""
    graph = context.graph
    sink = graph.nodes[tool.sink_id]
    block = graph.block(tool.sink_id)
    if block.block_type.value == "Agent":
        return "Tool execution failed: sub-agents cannot run as tools in agent mode yet"
    inputs = {**sink.input_default, **{tool.field_mapping.get(k, k): v for k, v in arguments.items()}}
    sub = dataclasses.replace(
        context, node_id=tool.sink_id, node_exec_id=f"{context.node_exec_id}/{tool.name}", credentials={}
    )
    run = execute_block(block, inputs, sub)
    if run.error is not None:
        return f"Tool execution failed: {run.error}"
    outputs: dict[str, Any] = {}
    for pin, value in run.outputs:
        outputs.setdefault(pin, []).append(value)
    flat = {pin: values[0] if len(values) == 1 else values for pin, values in outputs.items()}
    return json.dumps(flat, default=str) if flat else "Tool executed successfully"


def _agent_mode(data: Any, context: BlockContext, model: ModelInfo, tools: list[Tool]) -> Iterator[tuple[str, Any]]:
    limit = data.agent_mode_max_iterations
    history = _objective(data, _history(data), model)
    turn = Turn(data, context, model, tools)
    iteration = 0
    while limit < 0 or iteration < limit:
        iteration += 1
        if limit > 0 and iteration == limit:
            history.append({"role": "system", "content": "This is the last iteration: give your final answer now."})
        result, calls = turn.ask(history)
        history.append(result.assistant_message)
        if not calls:
            yield "finished", result.text
            yield "conversations", history
            return
        results = []
        for call, tool, arguments in calls:
            results.append(tool_result_message(call.id, _run_tool(context, tool, arguments)))
        if all(r["role"] == "user" for r in results) and len(results) > 1:  # Anthropic: one user turn for all
            history.append({"role": "user", "content": [block for r in results for block in r["content"]]})
        else:
            history.extend(results)
        yield "conversations", history
        for _call, tool, arguments in calls:
            yield "tool_calls", {"name": tool.name, "arguments": arguments}
    yield "finished", f"Agent mode completed after {iteration} iterations (limit reached)"
    yield "conversations", history
