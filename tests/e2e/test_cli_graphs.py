"""Graphs run end to end by `agentflow run` on the local stack (DynamoDB Local + local event bus)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import graphs
from tests.e2e.conftest import CliResult

Run = Callable[..., CliResult]


def ok(result: CliResult) -> dict[str, Any]:
    assert result.code == 0, result.stderr
    report = result.report
    assert report["status"] == "COMPLETED"
    return report


def test_linear(agentflow_run: Run) -> None:
    report = ok(agentflow_run(graphs.linear(), "--input", "x=8"))
    assert report["outputs"] == {"result": [84.0]}
    assert [n["block_name"] for n in report["nodes"]] == [
        "AgentInputBlock",
        "CalculatorBlock",
        "CalculatorBlock",
        "AgentOutputBlock",
    ]
    assert all(n["status"] == "COMPLETED" and n["attempts"] == 1 for n in report["nodes"])
    stats = report["stats"]
    assert stats["node_executions"] == 4
    assert stats["dynamodb_requests"] > 0 and stats["dynamodb_write_units"] > 0 and stats["dynamodb_read_units"] > 0
    assert stats["events_published"] >= 4  # one per node execution, plus status changes


def test_diamond_join(agentflow_run: Run) -> None:
    report = ok(agentflow_run(graphs.diamond(), "--input", "x=4"))
    assert report["outputs"] == {"joined": ["5.0|40.0"]}
    join = [n for n in report["nodes"] if n["node_id"] == "join"]
    assert len(join) == 1  # both branches met in one execution


def test_fan_out(agentflow_run: Run) -> None:
    report = ok(agentflow_run(graphs.fan_out(), "--inputs", json.dumps({"items": [1, 2, 3, 4, 5]})))
    assert sorted(report["outputs"]["squares"]) == [1.0, 4.0, 9.0, 16.0, 25.0]
    assert len([n for n in report["nodes"] if n["node_id"] == "square"]) == 5


@pytest.mark.parametrize(("n", "fired", "silent", "value"), [(9, "yes", "no", "big"), (2, "no", "yes", "small")])
def test_branch(agentflow_run: Run, n: int, fired: str, silent: str, value: str) -> None:
    report = ok(agentflow_run(graphs.branch(), "--input", f"n={n}"))
    assert report["outputs"][fired] == [value]
    assert report["outputs"][silent] == []
    assert silent not in {x["node_id"] for x in report["nodes"]}  # the other branch never ran


def test_static_link_feeds_every_execution(agentflow_run: Run) -> None:
    report = ok(agentflow_run(graphs.static_feed(), "--inputs", '{"items": [1, 2, 3], "factor": 7}'))
    assert sorted(report["outputs"]["products"]) == [7.0, 14.0, 21.0]
    assert len([n for n in report["nodes"] if n["node_id"] == "mul"]) == 3


def test_loop_stopped_by_node_execution_limit(agentflow_run: Run) -> None:
    result = agentflow_run(graphs.endless_loop(limit=25))
    assert result.code == 1
    report = result.report
    assert report["status"] == "FAILED"
    assert "node execution limit" in report["error"]
    assert report["stats"]["node_executions"] == 25


def test_failing_node_without_error_link_fails_the_run(agentflow_run: Run) -> None:
    result = agentflow_run(graphs.failing(handle_error=False), "--input", "x=5")
    assert result.code == 1
    report = result.report
    assert report["status"] == "FAILED"
    assert "div" in report["error"] and "zero" in report["error"]
    div = next(n for n in report["nodes"] if n["node_id"] == "div")
    assert div["status"] == "FAILED" and "zero" in div["error"]


def test_failing_node_with_linked_error_pin_completes(agentflow_run: Run) -> None:
    report = ok(agentflow_run(graphs.failing(handle_error=True), "--input", "x=5"))
    assert report["outputs"]["result"] == []
    [message] = report["outputs"]["error"]
    assert "zero" in message


def test_invalid_graph_lists_every_problem(agentflow_run: Run) -> None:
    graph = graphs.linear()
    graph["nodes"][1]["block_id"] = "NoSuchBlock"
    graph["links"][1]["sink_name"] = "nope"
    graph["nodes"].append({"id": "calc2", "block_id": "CalculatorBlock", "input_default": {"operation": "Add"}})
    result = agentflow_run(graph, "--input", "x=1")
    assert result.code == 2
    assert "unknown block 'NoSuchBlock'" in result.stderr
    assert "'nope'" in result.stderr
    assert "node 'calc2', pin 'a'" in result.stderr and "node 'calc2', pin 'b'" in result.stderr


def test_missing_and_unknown_inputs(agentflow_run: Run) -> None:
    result = agentflow_run(graphs.linear(), "--input", "y=1")
    assert result.code == 2
    assert "input 'x': missing required graph input" in result.stderr
    assert "input 'y': unknown graph input" in result.stderr


def test_bad_input_syntax(agentflow_run: Run) -> None:
    result = agentflow_run(graphs.linear(), "--input", "novalue", "--inputs", "[1]")
    assert result.code == 2
    assert "NAME=VALUE" in result.stderr and "JSON object" in result.stderr


def test_input_values_are_json_or_text(agentflow_run: Run) -> None:
    graph = graphs.GraphBuilder("echo").input("in", "v").output("out", "v").link("in", "result", "out", "value").build()
    assert ok(agentflow_run(graph, "--input", 'v={"a": [1, 2]}'))["outputs"] == {"v": [{"a": [1, 2]}]}
    assert ok(agentflow_run(graph, "--input", "v=hello world"))["outputs"] == {"v": ["hello world"]}
    assert ok(agentflow_run(graph, "--input", "v=12"))["outputs"] == {"v": [12]}


def test_live_view_without_json(agentflow_run: Run) -> None:
    result = agentflow_run(graphs.linear(), "--input", "x=1", json_output=False)
    assert result.code == 0, result.stderr
    progress = result.stderr.splitlines()  # not a terminal: plain lines, not one per status change
    assert progress[0].startswith("agentflow: execution ") and progress[0].endswith(" of linear")
    assert "COMPLETED: 4/4 node executions finished" in progress[-1] and len(progress) <= 3
    assert "result: 70.0" in result.stdout


@pytest.mark.parametrize("example", sorted((Path(__file__).parents[2] / "examples").glob("*.json")), ids=str)
def test_examples_run(agentflow_run: Run, example: Path) -> None:
    ok(agentflow_run(example))


def test_trigger_graphs_are_refused_by_run(agentflow_run: Run) -> None:
    result = agentflow_run(Path(__file__).parents[2] / "examples" / "webhooks" / "greet_on_webhook.json")
    assert result.code == 2
    assert "starts only from its webhook" in result.stderr


def test_an_export_with_sub_graphs_runs_its_sub_agent(agentflow_run: Run) -> None:
    export = graphs.sub_graph_export("pre-export-id", 4, [graphs.doubler("sub-1", 4)])
    done = agentflow_run(export, "--input", "x=3")
    assert done.code == 0, done.stderr
    assert done.report["outputs"] == {"result": [6.0]}
    call = next(n for n in done.report["nodes"] if n["node_id"] == "call")
    assert call["status"] == "COMPLETED" and call["child_execution_id"]
    assert call["inputs"]["graph_version"] == 1 and call["inputs"]["graph_id"] != "pre-export-id"
    refused = agentflow_run(graphs.sub_graph_export("nowhere", 9, []), "--input", "x=3")
    assert refused.code == 2 and "neither in the export's sub_graphs nor yours" in refused.stderr
