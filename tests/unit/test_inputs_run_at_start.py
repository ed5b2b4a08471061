"""Input nodes that alone feed the nodes they link to are run by the run's start, which writes them ended and those
nodes' slot 0 queued with every value (docs/architecture.md, "Inputs run at the start")."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor import start as start_module
from agentflow.graph import validate_graph
from tests import graphs
from tests.graphs import GraphBuilder
from tests.unit.driver import report_nodes, run_graph


def two_inputs_join() -> dict[str, Any]:
    """Two inputs into one two-pin node, one of them also into a node of its own."""
    return (
        GraphBuilder("two inputs")
        .input("a", "a")
        .input("b", "b")
        .node("sum", "CalculatorBlock", operation="Add")
        .node("double", "CalculatorBlock", operation="Multiply", b=2)
        .output("out", "sum")
        .output("out2", "double")
        .link("a", "result", "sum", "a")
        .link("b", "result", "sum", "b")
        .link("b", "result", "double", "a")
        .link("sum", "result", "out", "value")
        .link("double", "result", "out2", "value")
        .build()
    )


def test_which_inputs_the_start_runs() -> None:
    assert validate_graph(graphs.diamond()).inputs_run_at_start == {"in"}
    assert validate_graph(two_inputs_join()).inputs_run_at_start == {"a", "b"}
    # `b` feeds a node that another node feeds too: it runs on its own, and so does `a`, whose sink `b` shares
    shared = (
        GraphBuilder("shared")
        .input("a", "a")
        .input("b", "b")
        .node("sum", "CalculatorBlock", operation="Add")
        .node("other", "CalculatorBlock", operation="Add", a=1, b=1)
        .node("mix", "CalculatorBlock", operation="Add")
        .link("a", "result", "sum", "a")
        .link("b", "result", "sum", "b")
        .link("b", "result", "mix", "a")
        .link("other", "result", "mix", "b")
        .build()
    )
    assert validate_graph(shared).inputs_run_at_start == set()
    # an input with no link, and an input into another input (started by the run too), are not run at the start
    lone = GraphBuilder("lone").input("a", "a").input("b", "b").link("a", "result", "b", "value").build()
    assert validate_graph(lone).inputs_run_at_start == set()


def test_the_start_writes_them_ended_and_their_sinks_queued(
    engine: Engine, publisher: RecordingPublisher, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = run_graph(engine, publisher, two_inputs_join(), {"a": 2, "b": 5})
    assert "a" not in published and "b" not in published  # never queued: the start ran them
    with monkeypatch.context() as patch:
        patch.setattr(start_module, "run_inputs_at_start", lambda graph, eid, nodes, clock: nodes)
        published.clear()
        alone = run_graph(engine, publisher, two_inputs_join(), {"a": 2, "b": 5})
        assert {"a", "b"} <= set(published)  # the reference: queued, claimed, run and finished on their own
    assert ran["outputs"] == alone["outputs"] == {"sum": [7.0], "double": [10.0]}
    assert ran["status"] == alone["status"] == "COMPLETED"
    assert ran["stats"]["node_executions"] == alone["stats"]["node_executions"] == 6
    assert report_nodes(ran) == report_nodes(alone)
    assert ran["stats"]["dynamodb_write_units"] < alone["stats"]["dynamodb_write_units"]
    # no delivery record: the values went straight into the slots the start created
    items = engine.store._query(keys.execution_pk(ran["execution_id"]), "PINS#")
    assert [i["SK"] for i in items] == []


def test_a_selector_that_finds_nothing_or_the_node_limit_keeps_the_ordinary_way(
    engine: Engine, publisher: RecordingPublisher, published: list[str]
) -> None:
    picky = GraphBuilder("picky").input("a", "a").output("out", "k").link("a", "result_#_k", "out", "value").build()
    missing = run_graph(engine, publisher, picky, {"a": {"other": 1}})
    assert "a" in published and not missing["outputs"].get("k")
    published.clear()
    found = run_graph(engine, publisher, picky, {"a": {"k": 4}})
    assert "a" not in published and found["outputs"] == {"k": [4]}
    published.clear()
    tight = GraphBuilder("tight", node_execution_limit=1).input("a", "a").output("out", "v")
    limited = run_graph(engine, publisher, tight.link("a", "result", "out", "value").build(), {"a": 1})
    assert "a" in published  # two node executions would pass the limit of one: the run meets it as ever
    assert limited["status"] == "FAILED"
