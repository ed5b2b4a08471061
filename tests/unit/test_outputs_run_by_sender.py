"""An output node with nothing after it, whose one value comes by a direct delivery, is run by its sender's worker
and recorded ended by the sender's finish, carried on the sender's item (docs/architecture.md, "Output nodes run by
their sender")."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor import outputs as outputs_module
from agentflow.executor import propagation as propagation_module
from tests import graphs
from tests.graphs import GraphBuilder
from tests.unit.driver import report_nodes, run_graph


def raw_items(engine: Engine, execution_id: str, node_id: str) -> list[dict[str, Any]]:
    return engine.store._query(keys.execution_pk(execution_id), keys.node_prefix(node_id))


def test_the_output_node_is_stored_as_its_own_run_would_store_it(
    engine: Engine, publisher: RecordingPublisher, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = run_graph(engine, publisher, graphs.linear(), {"x": 3})
    assert "out" not in published  # never queued: mul's finish made it ended
    with monkeypatch.context() as patch:
        patch.setattr(propagation_module, "run_output_now", lambda *args: None)
        published.clear()
        alone = run_graph(engine, publisher, graphs.linear(), {"x": 3})
        assert "out" in published  # the reference: queued, claimed, run and finished on its own
    assert ran["outputs"] == alone["outputs"] == {"result": [74.0]}
    assert ran["stats"]["node_executions"] == alone["stats"]["node_executions"] == 4
    mine, reference = report_nodes(ran, "out"), report_nodes(alone, "out")
    assert (
        mine == reference
        and mine[0]["status"] == "COMPLETED"
        and mine[0]["outputs"] == {"output": [74.0], "name": ["result"]}
    )
    assert ran["stats"]["dynamodb_write_units"] < alone["stats"]["dynamodb_write_units"]
    # carried on its sender's item, in the layout of its own: no item of its own to write and to stamp
    assert raw_items(engine, ran["execution_id"], "out") == []
    (mul,) = raw_items(engine, ran["execution_id"], "mul")
    carried = mul[keys.CARRIED_OUTPUT]
    assert (carried["node_id"], carried["seq"], carried["output_name"]) == ("out", 0, "result")
    assert [(o.node_id, o.seq) for o in engine.store.list_outputs(ran["execution_id"], ["out"], ["mul"])] == [
        ("out", 0)
    ]


def test_an_output_linked_onwards_or_too_big_runs_on_its_own(
    engine: Engine, publisher: RecordingPublisher, published: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    onwards = (
        GraphBuilder("output linked onwards")
        .input("in", "x")
        .node("add", "CalculatorBlock", operation="Add", b=1)
        .output("mid", "middle")
        .output("out", "result")
        .link("in", "result", "add", "a")
        .link("add", "result", "mid", "value")
        .link("mid", "output", "out", "value")
        .build()
    )
    report = run_graph(engine, publisher, onwards, {"x": 1})
    assert report["outputs"] == {"middle": [2.0], "result": [2.0]}
    assert published.count("mid") == 1  # it has a child: it runs as any node
    assert published.count("out") == 1  # fed by a static link (an output block's are): delivered the recorded way
    published.clear()
    monkeypatch.setattr(outputs_module, "RAN_OUTPUT_BYTES", 10)  # the value twice on one item: too big here
    report = run_graph(engine, publisher, graphs.linear(), {"x": 1})
    assert report["outputs"] == {"result": [70.0]} and "out" in published


def test_it_counts_against_the_node_limit_exactly(engine: Engine, publisher: RecordingPublisher) -> None:
    graph = {**graphs.linear(), "node_execution_limit": 3}  # in, add, mul: no room for out
    report = run_graph(engine, publisher, graph, {"x": 1})
    assert report["status"] == "FAILED" and "node execution limit reached" in report["error"]
    assert report["stats"]["node_executions"] == 3
    assert report["outputs"] == {"result": []}
    # refused with the finish, its value went the recorded way, to a slot the limit left unqueued
    assert [o["status"] for o in report_nodes(report, "out")] == ["INCOMPLETE"]


@pytest.mark.parametrize(("seed", "copies"), [(5, 3), (9, 3)])
def test_a_fan_in_to_outputs_records_each_output_once(
    engine: Engine, publisher: RecordingPublisher, seed: int, copies: int
) -> None:
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": [1, 2, 3, 4]}, seed=seed, copies=copies)
    assert report["status"] == "COMPLETED", report["error"]
    assert sorted(report["outputs"]["squares"]) == [1.0, 4.0, 9.0, 16.0]
    outs = report_nodes(report, "out")
    assert len(outs) == 4 and {o["status"] for o in outs} == {"COMPLETED"} and {o["attempts"] for o in outs} == {1}
    assert report["stats"]["node_executions"] == 2 + 2 * 4
