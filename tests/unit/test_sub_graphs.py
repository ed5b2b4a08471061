"""Exports with sub-graphs (README, "Sub-graphs"): every sub-graph is stored as a graph of the importing user, and
each AgentExecutorBlock node is pointed at the stored copy of the graph it calls, matched as AutoGPT exports carry
it (the sub-graph's id, or the node's old id with the same version and input/output names); a call to a graph that
is neither in the export nor the user's is refused naming the node."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.exports import plan_import
from agentflow.graph import GraphValidationError
from agentflow.reports import execution_report
from tests.graphs import agent_node, doubler
from tests.graphs import sub_graph_export as export
from tests.unit.driver import drain


def no_graphs(graph_id: str, version: int) -> bool:
    return False


def called(plan_main: Any, node_id: str = "call") -> dict[str, Any]:
    return dict(plan_main.nodes[node_id].input_default)


def test_a_node_naming_the_sub_graph_id_calls_its_stored_copy() -> None:
    plan = plan_import(export("sub-1", 4, [doubler("sub-1", 4)]), "u1", no_graphs)
    [(stored_id, _)] = plan.sub_graphs
    data = called(plan.main)
    assert (data["graph_id"], data["graph_version"], data["user_id"]) == (stored_id, 1, "u1")
    assert stored_id != "sub-1"


def test_a_node_with_its_pre_export_id_is_matched_by_version_and_pins() -> None:
    subs = [doubler("new-a", 3), doubler("new-b", 7)]
    plan = plan_import(export("old-id", 7, subs), "u1", no_graphs)
    ids = {valid.graph.name: graph_id for graph_id, valid in plan.sub_graphs}
    assert called(plan.main)["graph_id"] == ids["doubler new-b"]


def test_a_call_to_a_graph_of_the_user_is_kept() -> None:
    plan = plan_import(export("mine", 2, []), "u1", lambda graph_id, version: (graph_id, version) == ("mine", 2))
    assert (called(plan.main)["graph_id"], called(plan.main)["graph_version"]) == ("mine", 2)


def test_sub_graphs_calling_each_other_are_all_repointed() -> None:
    inner = doubler("inner", 1)
    outer = doubler("outer", 5, calls=agent_node("nested", "inner", 1))
    plan = plan_import(export("outer", 5, [inner, outer]), "u1", no_graphs)
    ids = {valid.graph.name: (graph_id, valid) for graph_id, valid in plan.sub_graphs}
    assert called(ids["doubler outer"][1], "nested")["graph_id"] == ids["doubler inner"][0]


def test_a_call_to_an_unknown_graph_is_refused_naming_the_node() -> None:
    with pytest.raises(GraphValidationError) as caught:
        plan_import(export("nowhere", 9, [doubler("sub-1", 4)]), "u1", no_graphs)
    [problem] = caught.value.problems
    assert (problem.node_id, problem.pin) == ("call", "graph_id")
    assert "neither in the export's sub_graphs nor yours" in problem.message


def test_an_invalid_sub_graph_is_refused_naming_it() -> None:
    broken = doubler("sub-1", 4)
    broken["nodes"][1]["block_id"] = "NoSuchBlock"
    with pytest.raises(GraphValidationError) as caught:
        plan_import(export("sub-1", 4, [broken]), "u1", no_graphs)
    [problem] = caught.value.problems
    assert problem.message.startswith("sub-graph 'doubler sub-1': unknown block") and problem.node_id == "mul"


def test_importing_stores_every_graph_and_a_run_calls_the_sub_agent(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    graph_id, version = engine.import_export("u1", export("old-id", 4, [doubler("sub-1", 4)]))
    stored = engine.load_graph("u1", graph_id, version)
    sub_id = stored.nodes["call"].input_default["graph_id"]
    assert engine.load_graph("u1", sub_id, 1).graph.name == "doubler sub-1"
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 3}).execution_id
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED", report and report["error"]
    assert report["outputs"] == {"result": [6.0]}  # 3 doubled by the imported sub-graph
