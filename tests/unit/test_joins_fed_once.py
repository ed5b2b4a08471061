"""A value that the one execution of a node that runs once sends down a link into a pin nothing else feeds fills
slot 0 of its sink itself, with no delivery record (docs/architecture.md, "Joins fed once")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.graph import ValidGraph, validate_graph
from tests import graphs
from tests.graphs import GraphBuilder
from tests.unit.driver import report_nodes, run_graph


def pins_items(engine: Engine, execution_id: str) -> list[str]:
    return [str(i["SK"]) for i in engine.store._query(keys.execution_pk(execution_id), "PINS#")]


def ordinary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every value delivered the recorded way, as before this rule."""
    monkeypatch.setattr(ValidGraph, "first_value_links", property(lambda self: frozenset()))


def twice_into_a_sum() -> dict[str, Any]:
    """A node that runs once but sends two values down one link: they go the recorded way, slot 0 and slot 1."""
    return (
        GraphBuilder("twice")
        .node("step", "StepThroughItemsBlock", items=[1, 2])
        .node("one", "CalculatorBlock", operation="Add", a=1, b=0)
        .node("sum", "CalculatorBlock", operation="Add")
        .output("out", "sum")
        .link("step", "item", "sum", "a")
        .link("one", "result", "sum", "b")
        .link("sum", "result", "out", "value")
        .build()
    )


def test_which_links_fill_their_first_slot() -> None:
    diamond = validate_graph(graphs.diamond())
    links = diamond.graph.links
    assert {(links[i].source_id, links[i].sink_id) for i in diamond.first_value_links} == {
        ("left", "join"),
        ("right", "join"),
    }
    # add runs once (fed by an input run at the start), but mul keeps its slot 0 for its one source already; mul
    # may run again, so mul -> out is not such a link either
    assert validate_graph(graphs.linear()).first_value_links == set()
    both = (
        GraphBuilder("a pin fed twice")
        .node("a", "CalculatorBlock", operation="Add", a=1, b=1)
        .node("b", "CalculatorBlock", operation="Add", a=2, b=2)
        .node("sum", "CalculatorBlock", operation="Add", b=0)
        .node("c", "CalculatorBlock", operation="Add", a=0, b=0)
        .node("mix", "CalculatorBlock", operation="Add")
        .link("a", "result", "sum", "a")
        .link("b", "result", "sum", "a")
        .link("c", "result", "mix", "a", static=True)
        .link("sum", "result", "mix", "b")
        .build()
    )
    assert validate_graph(both).first_value_links == set()


def test_a_diamond_writes_no_delivery_record_and_runs_as_before(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = run_graph(engine, publisher, graphs.diamond(), {"x": 2})
    with monkeypatch.context() as patch:
        ordinary(patch)
        before = run_graph(engine, publisher, graphs.diamond(), {"x": 2})
    assert ran["outputs"] == before["outputs"] == {"joined": ["3.0|20.0"]}
    assert report_nodes(ran) == report_nodes(before)
    assert pins_items(engine, ran["execution_id"]) == [] and pins_items(engine, before["execution_id"]) == ["PINS#join"]
    assert ran["stats"]["dynamodb_write_units"] < before["stats"]["dynamodb_write_units"]


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_shuffled_triple_delivery_fills_each_pin_once(engine: Engine, publisher: RecordingPublisher, seed: int) -> None:
    report = run_graph(engine, publisher, graphs.diamond(), {"x": 5}, seed=seed, copies=3)
    assert report["outputs"] == {"joined": ["6.0|50.0"]}
    assert all(n["attempts"] == 1 for n in report["nodes"])
    assert [n["seq"] for n in report["nodes"] if n["node_id"] == "join"] == [0]


def test_two_values_down_the_link_go_the_recorded_way(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = run_graph(engine, publisher, twice_into_a_sum(), {})
    with monkeypatch.context() as patch:
        ordinary(patch)
        before = run_graph(engine, publisher, twice_into_a_sum(), {})
    assert ran["outputs"] == before["outputs"] == {"sum": [2.0]}  # slot 0: 1 + 1; slot 1 waits for a second b
    assert report_nodes(ran) == report_nodes(before)
    sums = sorted(
        (n["seq"], n["status"], json.dumps(n["inputs"], sort_keys=True)) for n in ran["nodes"] if n["node_id"] == "sum"
    )
    assert [(seq, status) for seq, status, _ in sums] == [(0, "COMPLETED"), (1, "INCOMPLETE")]
