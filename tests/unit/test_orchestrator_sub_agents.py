"""An Orchestrator (traditional mode) whose one tool is a sub-agent: an AgentExecutorBlock node linked from the
Orchestrator's `tools` pin to the child graph's input, its output back into `last_tool_output`. The model is told
of a tool named after the agent (`agent_name`, cleaned up) with the parameters of its input_schema; its call starts
a child run with the argument; the child's output goes back to the model as the tool's result. The provider is the
loopback server of tests/support/llm_server.py, called through the real `openai` SDK; the engine runs on moto."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from tests.graphs import GraphBuilder, adder
from tests.support.llm_server import LlmServer, openai_text, openai_tool_calls
from tests.unit.driver import run_graph

AGENT_NAME = "Add One (v2)!"  # cleaned up: add_one__v2__
TOOL_NAME = "add_one__v2__"
X_ABOUT = "The number to add one to"


def agent_with_a_sub_agent_tool(child: tuple[str, int]) -> dict[str, Any]:
    """question -> Orchestrator whose one tool is the sub-agent `child` -> answer"""
    graph_id, version = child
    return (
        GraphBuilder("orchestrator with a sub-agent")
        .input("question", "question")
        .node("brain", "OrchestratorBlock", model="gpt-4o")
        .node(
            "call",
            "AgentExecutorBlock",
            user_id="u1",
            graph_id=graph_id,
            graph_version=version,
            agent_name=AGENT_NAME,
            inputs={},
            input_schema={"properties": {"x": {"type": "number", "description": X_ABOUT}}, "required": ["x"]},
            output_schema={"properties": {"y": {"type": "number"}}},
        )
        .output("answer", "answer")
        .link("question", "result", "brain", "prompt", static=True)
        .link("brain", "tools", "call", "x")
        .link("call", "y", "brain", "last_tool_output")
        .link("brain", "conversations", "brain", "conversation_history")
        .link("brain", "finished", "answer", "value")
        .build()
    )


@pytest.mark.parametrize(("seed", "copies"), [(None, 1), (5, 3)], ids=["in-order", "shuffled-3x"])
def test_a_sub_agent_as_the_orchestrators_tool(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer, seed: int | None, copies: int
) -> None:
    child = ai_engine.register_graph("u1", validate_graph(adder()))
    llm.script(
        openai_tool_calls([(TOOL_NAME, {"x": "41"})], prompt_tokens=30, completion_tokens=5),
        openai_text("41 plus one is 42", prompt_tokens=50, completion_tokens=8),
    )
    report = run_graph(
        ai_engine, publisher, agent_with_a_sub_agent_tool(child), {"question": "What is 41 + 1?"}, seed, copies
    )
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": ["41 plus one is 42"]}
    assert llm.calls() == 2, [r.body for r in llm.requests]  # one call per turn, however often events arrived

    first, second = llm.requests
    (tool,) = first.body["tools"]
    assert tool["type"] == "function"
    function = tool["function"]
    assert function["name"] == TOOL_NAME  # from agent_name, cleaned up
    assert function["description"] == AGENT_NAME
    assert function["parameters"] == {
        "type": "object",
        "properties": {"x": {"type": "string", "description": X_ABOUT}},
        "additionalProperties": False,
        "required": ["x"],
    }
    assert first.body["messages"][-1] == {"role": "user", "content": "[Main Objective Prompt]: What is 41 + 1?"}

    # the call started one child run, with the model's argument, and took its output
    (call,) = [n for n in report["nodes"] if n["node_id"] == "call"]
    assert call["status"] == "COMPLETED", call
    assert call["inputs"]["x"] == "41"
    assert call["outputs"] == {"y": [42.0]}
    kid = execution_report(ai_engine.store, call["child_execution_id"], ["y"])
    assert kid is not None and kid["status"] == "COMPLETED", kid
    assert kid["graph_id"] == child[0] and kid["inputs"] == {"x": "41"}
    assert kid["outputs"] == {"y": [42.0]}
    assert (kid["parent_execution_id"], kid["parent_node_id"], kid["depth"]) == (report["execution_id"], "call", 1)
    kids = ai_engine.store.list_executions("u1", child[0], 100, None).executions
    assert [e.execution_id for e in kids] == [kid["execution_id"]]  # started once

    # the second request answers the model's call with the child's output
    assert {"role": "tool", "tool_call_id": "call_1", "content": "42.0"} in second.body["messages"]
    assert report["stats"]["llm_calls"] == 2
    assert (report["stats"]["llm_input_tokens"], report["stats"]["llm_output_tokens"]) == (80, 13)
