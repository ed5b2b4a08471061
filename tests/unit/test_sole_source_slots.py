"""A node fed by exactly one link has its slot 0 created by its source's first execution without taking a number:
its counters start at 1, so no other delivery can land there (docs/architecture.md, "Direct deliveries")."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.store import Store
from tests import graphs
from tests.graphs import GraphBuilder
from tests.support.clock import FakeClock
from tests.unit.driver import drain, run_graph

ITEMS = [1, 2, 3, 4, 5, 6]


def item_kinds(engine: Engine, execution_id: str) -> list[str]:
    return [str(item["SK"]) for item in engine.store._query(keys.execution_pk(execution_id), None)]


def test_which_nodes_have_one_source() -> None:
    diamond = validate_graph(graphs.diamond())
    # in: a starting node; left and right: one link each, but static (an input's); join: two; out: one, from join
    assert diamond.sole_source_sinks == {"out"}
    assert [diamond.first_counted_slot(n) for n in ("in", "left", "join", "out")] == [0, 0, 0, 1]
    linear = validate_graph(graphs.linear())
    assert linear.sole_source_sinks == {"mul", "out"}


def test_a_chain_takes_no_slot_numbers(engine: Engine, publisher: RecordingPublisher) -> None:
    report = run_graph(engine, publisher, graphs.linear(), {"x": 1})
    assert report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    assert {n["seq"] for n in report["nodes"]} == {0}
    kinds = item_kinds(engine, report["execution_id"])
    # the start ran the input and created add's slot with its value (executor/start_inputs.py); mul and out need no
    # number
    assert [sk for sk in kinds if sk.startswith("PINS#")] == []


def test_a_retry_delivers_to_slot_1_never_to_the_kept_slot_0(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_finish = Store.finish_node
    crashes = {"add": 1}

    def crashing_finish(self: Store, execution_id: str, node_id: str, *args: Any, **kwargs: Any) -> bool:
        if crashes.get(node_id):
            crashes[node_id] -= 1
            raise ConnectionError("the worker died in its finish")
        return real_finish(self, execution_id, node_id, *args, **kwargs)

    monkeypatch.setattr(Store, "finish_node", crashing_finish)
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    with pytest.raises(ConnectionError):
        drain(engine, publisher)
    clock.now += 3600  # the lease expires: the sweeper's republish lets attempt 2 take over
    engine.sweep(stale_after_seconds=0)
    drain(engine, publisher)
    report = engine_report(engine, execution_id)
    assert report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    seqs = {n["node_id"]: n["seq"] for n in report["nodes"]}
    assert seqs["mul"] == 1  # attempt 2 delivered the recorded way, from the counter, which starts at 1
    assert seqs["out"] == 1  # and mul#1 is not its source's slot 0: it took a number too
    assert engine.store.get_pins(execution_id, "mul").counters == {"a": 2}


def join_of_fan_outs() -> dict[str, Any]:
    """step fans out to `a` and `b`, whose values meet in `join` (two links, counted from 0) many times; `out` has
    join as its one source, so join's slot 0 creates out's slot 0 and every other join execution takes a number."""
    return (
        GraphBuilder("join of fan-outs")
        .input("in", "items")
        .node("step", "StepThroughItemsBlock")
        .node("a", "CalculatorBlock", operation="Add", b=0)
        .node("b", "CalculatorBlock", operation="Multiply", b=-1)
        .node("join", "FillTextTemplateBlock", format="{{ l }}|{{ r }}", values={})
        .output("out", "pairs")
        .link("in", "result", "step", "items")
        .link("step", "item", "a", "a")
        .link("step", "item", "b", "a")
        .link("a", "result", "join", "values_#_l")
        .link("b", "result", "join", "values_#_r")
        .link("join", "output", "out", "value")
        .build()
    )


@pytest.mark.parametrize(("seed", "copies"), [(None, 1), (3, 1), (11, 3)], ids=["in-order", "shuffled", "shuffled-3x"])
def test_slot_0_and_the_counted_slots_never_meet(
    engine: Engine, publisher: RecordingPublisher, seed: int | None, copies: int
) -> None:
    report = run_graph(engine, publisher, join_of_fan_outs(), {"items": ITEMS}, seed=seed, copies=copies)
    assert report["status"] == "COMPLETED", report["error"]
    pairs = report["outputs"]["pairs"]
    assert len(pairs) == len(ITEMS)  # no value lost in a slot someone else had
    assert sorted(float(p.split("|")[0]) for p in pairs) == [float(i) for i in ITEMS]
    assert sorted(float(p.split("|")[1]) for p in pairs) == sorted(float(-i) for i in ITEMS)
    joins = sorted(n["seq"] for n in report["nodes"] if n["node_id"] == "join")
    outs = sorted(n["seq"] for n in report["nodes"] if n["node_id"] == "out")
    assert joins == list(range(len(ITEMS)))  # two links: counted from 0
    assert outs == list(range(len(ITEMS)))  # slot 0 from join#0, the rest from the counter, from 1


def engine_report(engine: Engine, execution_id: str) -> dict[str, Any]:
    report = execution_report(engine.store, execution_id)
    assert report is not None
    return report
