"""The Orchestrator (tool calling) and LLM accounting through the engine: model turns as node executions, tool
calls routed to their tools' pins, results fed back through the links, every event delivered more than once
without a second provider call, per-node and per-run token figures, budgets. The providers are the loopback
server of tests/support/llm_server.py, called through the real SDKs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.graph import GraphValidationError, validate_graph
from tests.graphs import GraphBuilder
from tests.support.llm_server import (
    LlmServer,
    anthropic_text,
    anthropic_tool_use,
    openai_text,
    openai_tool_calls,
)
from tests.unit.driver import run_graph


def calculator_agent(model: str = "gpt-4o", legacy: bool = False, **orchestrator: Any) -> dict[str, Any]:
    """question -> Orchestrator with one tool (a calculator) -> answer. `legacy`: the tool links named as
    SmartDecisionMaker exports name them (`tools_^_<tool>_~_<arg>`) instead of the current `tools`."""
    builder = (
        GraphBuilder("calculator agent")
        .input("question", "question")
        .node("brain", "SmartDecisionMakerBlock" if legacy else "OrchestratorBlock", model=model, **orchestrator)
        .node("calc", "CalculatorBlock")
        .output("answer", "answer")
        .link("question", "result", "brain", "prompt", static=True)
    )
    for pin in ("a", "b", "operation"):
        builder.link("brain", f"tools_^_calculatorblock_~_{pin}" if legacy else "tools", "calc", pin)
    if not orchestrator.get("agent_mode_max_iterations"):  # agent mode runs its tools itself: no loop links
        builder.link("calc", "result", "brain", "last_tool_output")
        builder.link("brain", "conversations", "brain", "conversation_history")
    return builder.link("brain", "finished", "answer", "value").build()


def _nodes(report: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    return [n for n in report["nodes"] if n["node_id"] == node_id]


MULTIPLY = {"a": 6, "b": 7, "operation": "Multiply"}


@pytest.mark.parametrize("legacy", [False, True], ids=["tools-pin", "legacy-pins"])
def test_a_tool_call_runs_the_tool_and_its_result_goes_back_to_the_model(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer, legacy: bool
) -> None:
    llm.script(
        openai_tool_calls([("calculatorblock", MULTIPLY)], prompt_tokens=30, completion_tokens=5),
        openai_text("6 times 7 is 42", prompt_tokens=50, completion_tokens=8),
    )
    report = run_graph(ai_engine, publisher, calculator_agent(legacy=legacy), {"question": "What is 6 x 7?"})
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": ["6 times 7 is 42"]}
    first, second = llm.requests
    tool = first.body["tools"][0]["function"]
    assert tool["name"] == "calculatorblock"
    assert set(tool["parameters"]["properties"]) == {"a", "b", "operation"}
    assert sorted(tool["parameters"]["required"]) == ["a", "b", "operation"]
    assert first.body["messages"][-1] == {"role": "user", "content": "[Main Objective Prompt]: What is 6 x 7?"}
    assert first.api_key == "sk-platform-openai"  # no credential on the node: the platform's key for openai
    # the calculator ran as a node of the graph, and its result answered the model's call
    (calc,) = _nodes(report, "calc")
    assert calc["inputs"]["operation"] == "Multiply" and calc["outputs"] == {"result": [42.0]}
    assert {"role": "tool", "tool_call_id": "call_1", "content": "42.0"} in second.body["messages"]
    turns = _nodes(report, "brain")
    assert [t["stats"]["llm_calls"] for t in turns] == [1, 1]
    assert [(t["stats"]["input_tokens"], t["stats"]["output_tokens"]) for t in turns] == [(30, 5), (50, 8)]
    assert report["stats"]["llm_calls"] == 2
    assert (report["stats"]["llm_input_tokens"], report["stats"]["llm_output_tokens"]) == (80, 13)
    # gpt-4o at $2.50 / $10 per million tokens (agentflow.llm.prices)
    assert report["stats"]["llm_cost_usd"] == pytest.approx((80 * 2.5 + 13 * 10) / 1e6)
    assert calc["stats"] == {
        "llm_calls": 0,
        "llm_retries": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "model": None,
    }


def test_every_event_delivered_three_times_calls_the_provider_once_per_turn(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer
) -> None:
    llm.script(openai_tool_calls([("calculatorblock", MULTIPLY)]), openai_text("42"))
    report = run_graph(ai_engine, publisher, calculator_agent(), {"question": "6 x 7?"}, seed=3, copies=3)
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": ["42"]}
    assert llm.calls() == 2
    assert report["stats"]["llm_calls"] == 2


def test_anthropic_tool_use_and_tool_result(ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer) -> None:
    llm.script(
        anthropic_tool_use([("calculatorblock", MULTIPLY)], text="Let me compute."),
        anthropic_text("It is 42.", input_tokens=40, output_tokens=6),
    )
    report = run_graph(ai_engine, publisher, calculator_agent("claude-sonnet-4-5-20250929"), {"question": "6x7"})
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": ["It is 42."]}
    first, second = llm.requests
    assert first.provider == second.provider == "anthropic"
    assert first.body["tools"][0]["name"] == "calculatorblock"
    assert "Think step by step" in first.body["system"][0]["text"]  # the default system prompt, as `system`
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42.0"}
    assert {"role": "user", "content": [result]} in second.body["messages"]
    assert report["stats"]["llm_input_tokens"] == 11 + 40


def test_agent_mode_runs_the_tools_itself_and_stops_at_its_limit(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer
) -> None:
    llm.script(*[openai_tool_calls([("calculatorblock", {"a": n, "b": 2, "operation": "Add"})]) for n in range(3)])
    graph = calculator_agent(agent_mode_max_iterations=3)
    report = run_graph(ai_engine, publisher, graph, {"question": "add forever"})
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": ["Agent mode completed after 3 iterations (limit reached)"]}
    assert not _nodes(report, "calc")  # agent mode: the tool ran inside the Orchestrator's node execution
    (turn,) = _nodes(report, "brain")
    assert turn["outputs"]["tool_calls"] == [
        {"name": "calculatorblock", "arguments": {"a": n, "b": 2, "operation": "Add"}} for n in range(3)
    ]
    assert turn["stats"]["llm_calls"] == 3
    last = llm.requests[-1].body["messages"]
    assert {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"result": 3.0})} in last
    assert last[-1]["content"].startswith("This is the last iteration")


def test_an_invalid_tool_call_is_fed_back_and_asked_again(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer
) -> None:
    llm.script(
        openai_tool_calls([("calculatorblock", {"a": 6, "x": 1})]),
        openai_tool_calls([("calculatorblock", MULTIPLY)]),
        openai_text("42"),
    )
    report = run_graph(ai_engine, publisher, calculator_agent(), {"question": "6 x 7?"})
    assert report["status"] == "COMPLETED", report["error"]
    feedback = llm.requests[1].body["messages"][-1]["content"]
    assert "unknown parameters: ['x']" in feedback and "missing required parameters: ['b', 'operation']" in feedback
    first_turn = _nodes(report, "brain")[0]["stats"]
    assert (first_turn["llm_calls"], first_turn["llm_retries"]) == (2, 1)


def test_an_orchestrator_with_no_tools_fails_with_a_clear_error(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer
) -> None:
    graph = (
        GraphBuilder()
        .input("q", "q")
        .node("brain", "OrchestratorBlock", model="gpt-4o")
        .output("out", "answer")
        .link("q", "result", "brain", "prompt")
        .link("brain", "finished", "out", "value")
        .build()
    )
    report = run_graph(ai_engine, publisher, graph, {"q": "hi"})
    assert report["status"] == "FAILED"
    assert "There is no next node to execute" in report["error"]
    assert llm.calls() == 0


def test_unknown_model_is_refused_when_the_graph_is_saved() -> None:
    graph = calculator_agent(model="gpt-9-turbo")
    with pytest.raises(GraphValidationError) as refused:
        validate_graph(graph)
    (problem,) = refused.value.problems
    assert (problem.node_id, problem.pin) == ("brain", "model")
    assert "unknown LLM model 'gpt-9-turbo'" in problem.message


def two_writers(budget: dict[str, Any] | None = None, handled: bool = False) -> dict[str, Any]:
    builder = (
        GraphBuilder("two writers")
        .input("topic", "topic")
        .node("draft", "AITextGeneratorBlock", model="gpt-4o-mini")
        .node("polish", "AITextGeneratorBlock", model="gpt-4o-mini")
        .output("out", "text")
        .link("topic", "result", "draft", "prompt")
        .link("draft", "response", "polish", "prompt")
        .link("polish", "response", "out", "value")
    )
    if handled:
        builder.output("err", "error").link("polish", "error", "err", "value")
    graph = builder.build()
    if budget is not None:
        graph["budget"] = budget
    return graph


def test_usage_is_summed_on_the_run(ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer) -> None:
    llm.script(openai_text("draft", prompt_tokens=15, completion_tokens=10), openai_text("final", prompt_tokens=4))
    report = run_graph(ai_engine, publisher, two_writers(), {"topic": "cats"})
    assert report["status"] == "COMPLETED"
    assert report["outputs"] == {"text": ["final"]}
    stats = report["stats"]
    assert (stats["llm_calls"], stats["llm_input_tokens"], stats["llm_output_tokens"]) == (2, 19, 17)
    assert [n["stats"]["model"] for n in _nodes(report, "draft") + _nodes(report, "polish")] == ["gpt-4o-mini"] * 2


def test_a_run_past_its_token_budget_fails(ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer) -> None:
    llm.script(openai_text("draft", prompt_tokens=15, completion_tokens=10))
    report = run_graph(ai_engine, publisher, two_writers({"max_tokens": 20}), {"topic": "cats"})
    assert report["status"] == "FAILED"
    assert report["error"].startswith("budget exceeded: the run used 25 LLM tokens; its budget is 20")
    assert llm.calls() == 1  # the second writer never ran
    assert not _nodes(report, "polish") or _nodes(report, "polish")[0]["status"] == "TERMINATED"


def test_a_used_up_budget_refuses_the_next_call_even_with_its_error_handled(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer
) -> None:
    llm.script(openai_text("draft", prompt_tokens=15, completion_tokens=10))
    report = run_graph(ai_engine, publisher, two_writers({"max_tokens": 25}, handled=True), {"topic": "cats"})
    assert report["status"] == "FAILED"
    assert "budget exceeded: the run has used 25 of its 25 LLM tokens" in report["error"]
    assert llm.calls() == 1
    (polish,) = _nodes(report, "polish")
    assert polish["status"] == "FAILED"


def test_a_dollar_budget(ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer) -> None:
    # gpt-4o-mini: $0.15 in / $0.60 out per million; 1M + 1M tokens cost $0.75 > $0.5
    llm.script(openai_text("draft", prompt_tokens=1_000_000, completion_tokens=1_000_000))
    report = run_graph(ai_engine, publisher, two_writers({"max_cost_usd": 0.5}), {"topic": "cats"})
    assert report["status"] == "FAILED"
    assert "budget exceeded: the run's LLM calls cost an estimated $0.750000" in report["error"]


@pytest.mark.parametrize(
    ("budget", "message"),
    [
        ({"max_token": 5}, "budget: unknown key 'max_token'"),
        ({"max_tokens": 0}, "budget.max_tokens must be a whole number"),
        ({"max_cost_usd": -1}, "budget.max_cost_usd must be a positive number"),
        ({}, "budget needs max_tokens, max_cost_usd or both"),
        ([], "budget must be an object"),
    ],
)
def test_a_malformed_budget_is_refused_naming_it(budget: Any, message: str) -> None:
    with pytest.raises(GraphValidationError) as refused:
        validate_graph(two_writers(budget))
    assert message in str(refused.value)
