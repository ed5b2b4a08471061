"""At-least-once delivery: every event delivered 2-3 times in random order changes neither the outputs nor
the number of block runs."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from tests import graphs
from tests.e2e.conftest import CliResult

CASES = [
    ("linear", graphs.linear(), {"x": 8}),
    ("diamond", graphs.diamond(), {"x": 3}),
    ("fan_out", graphs.fan_out(), {"items": list(range(12))}),
    ("static_feed", graphs.static_feed(), {"items": [1, 2, 3, 4], "factor": 3}),
    ("branch", graphs.branch(), {"n": 7}),
    ("failing_handled", graphs.failing(handle_error=True), {"x": 1}),
]


def summary(report: dict[str, Any]) -> tuple[Any, ...]:
    outputs = {name: sorted(json.dumps(v) for v in values) for name, values in report["outputs"].items()}
    nodes = Counter((n["node_id"], n["status"]) for n in report["nodes"])
    return report["status"], outputs, nodes, report["stats"]["node_executions"]


@pytest.mark.parametrize(("name", "graph", "inputs"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("redeliver", [1, 2])
def test_redelivery_changes_nothing(
    agentflow_run: Callable[..., CliResult], name: str, graph: dict[str, Any], inputs: dict[str, Any], redeliver: int
) -> None:
    once = agentflow_run(graph, "--inputs", json.dumps(inputs))
    many = agentflow_run(graph, "--inputs", json.dumps(inputs), "--redeliver", str(redeliver))
    assert once.code == many.code == 0, many.stderr
    assert summary(many.report) == summary(once.report)
    # the duplicates really arrived: their lost claims cost requests of their own
    assert many.report["stats"]["dynamodb_requests"] > once.report["stats"]["dynamodb_requests"]
    # each block ran once per node execution: every node execution was claimed exactly once
    assert all(n["attempts"] == 1 for n in many.report["nodes"]), many.report["nodes"]
