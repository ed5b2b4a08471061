"""Redrive of a FAILED run through the engine: the failed node executions run again from their saved inputs, what
they gate runs once they complete, and completed nodes are not run again (their blocks are counted); a run that
cannot be redriven is refused saying why, and a redrive of a run already redriven and running is refused."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from agentflow.blocks.execution import BlockRun
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine, attempts
from agentflow.executor.redrive import RedriveRefused
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from tests.graphs import GraphBuilder
from tests.support.llm_server import LlmServer, openai_text, provider_error
from tests.unit.driver import drain


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each node's block ran."""
    runs: Counter[str] = Counter()
    real = attempts.execute_block

    def counting(block: Any, inputs: Any, context: Any) -> BlockRun:
        runs[context.node_id] += 1
        return real(block, inputs, context)

    monkeypatch.setattr(attempts, "execute_block", counting)
    return runs


def writer_chain(**graph: Any) -> dict[str, Any]:
    """topic -> add a prefix -> an LLM writes -> combine with a suffix -> out"""
    built = (
        GraphBuilder("redrive me")
        .input("topic", "topic")
        .node("prefix", "FillTextTemplateBlock", format="Write about {{ t }}", values={})
        .node("write", "AITextGeneratorBlock", model="gpt-4o-mini")
        .node("sign", "FillTextTemplateBlock", format="{{ text }} -- the end", values={})
        .output("out", "out")
        .link("topic", "result", "prefix", "values_#_t")
        .link("prefix", "output", "write", "prompt")
        .link("write", "response", "sign", "values_#_text")
        .link("sign", "output", "out", "value")
        .build()
    )
    return {**built, **graph}


def start(engine: Engine, publisher: RecordingPublisher, graph: dict[str, Any], inputs: dict[str, Any]) -> str:
    graph_id, version = engine.register_graph("u1", validate_graph(graph))
    execution_id = engine.start_execution("u1", graph_id, version, inputs).execution_id
    drain(engine, publisher)
    return execution_id


def test_a_redrive_reruns_the_failed_node_and_what_it_gates_only(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer, counted: Counter[str]
) -> None:
    llm.script(provider_error(401, "invalid api key"))  # the cause: the provider refuses the key
    execution_id = start(ai_engine, publisher, writer_chain(), {"topic": "owls"})
    failed = execution_report(ai_engine.store, execution_id, ["out"])
    assert failed is not None and failed["status"] == "FAILED"
    assert "openai answered 401: invalid api key" in failed["error"]
    assert counted == Counter({"topic": 1, "prefix": 1, "write": 1})
    llm.script(openai_text("Owls hoot."))  # the cause removed: the provider answers now
    moved = ai_engine.redrive(execution_id)
    assert moved.won and moved.status == "RUNNING"
    with pytest.raises(RedriveRefused, match="only a FAILED run can be redriven; this one is RUNNING"):
        ai_engine.redrive(execution_id)  # already redriven and running
    drain(ai_engine, publisher)
    done = execution_report(ai_engine.store, execution_id, ["out"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert done["outputs"] == {"out": ["Owls hoot. -- the end"]}
    assert done["error"] is None
    # the completed nodes kept their outputs: only the failed node and what it gates ran
    assert counted == Counter({"topic": 1, "prefix": 1, "write": 2, "sign": 1, "out": 1})
    assert llm.calls() == 2 and llm.requests[1].body["messages"][-1]["content"] == "Write about owls"
    assert [h["status"] for h in done["history"]][-3:] == ["FAILED", "RUNNING", "COMPLETED"]
    (write,) = [n for n in done["nodes"] if n["node_id"] == "write"]
    assert write["status"] == "COMPLETED" and write["stats"]["llm_calls"] == 1
    assert done["stats"]["llm_calls"] == 1  # the refused call was not counted, the second once


def test_only_a_failed_run_is_redriven(ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer) -> None:
    llm.script(openai_text("fine"))
    execution_id = start(ai_engine, publisher, writer_chain(), {"topic": "owls"})
    with pytest.raises(RedriveRefused, match="only a FAILED run can be redriven; this one is COMPLETED") as refused:
        ai_engine.redrive(execution_id)
    assert refused.value.status == "COMPLETED"


@pytest.mark.parametrize(
    ("graph", "reply", "reason"),
    [
        ({"budget": {"max_tokens": 5}}, openai_text("too long", prompt_tokens=10), "it used up its budget"),
        ({"node_execution_limit": 3}, openai_text("x"), "it hit its node-execution limit"),
    ],
    ids=["budget", "node-limit"],
)
def test_a_run_that_would_fail_the_same_way_again_is_refused(
    ai_engine: Engine, publisher: RecordingPublisher, llm: LlmServer, graph: dict[str, Any], reply: Any, reason: str
) -> None:
    llm.script(reply)
    execution_id = start(ai_engine, publisher, writer_chain(**graph), {"topic": "owls"})
    failed = execution_report(ai_engine.store, execution_id)
    assert failed is not None and failed["status"] == "FAILED"
    with pytest.raises(RedriveRefused, match=f"this run cannot be redriven: {reason}"):
        ai_engine.redrive(execution_id)
    still = execution_report(ai_engine.store, execution_id)
    assert still is not None and still["status"] == "FAILED" and still["history"] == failed["history"]
