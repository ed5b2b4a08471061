"""Drives the executor by hand: takes published NodeExecutionQueued events and runs them, in a chosen order,
optionally delivering each more than once. Sequential, so moto's lack of atomicity does not matter."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.inline import InlineChain
from agentflow.graph import validate_graph
from agentflow.reports import execution_report


def drain(
    engine: Engine,
    publisher: RecordingPublisher,
    seed: int | None = None,
    copies: int = 1,
    limit: int = 10_000,
    time_left: Callable[[], float] | None = None,
) -> int:
    """Run queued node events until none are left; returns how many deliveries were made. With `time_left`, the
    worker may run chains inline, as the node executor does (executor/inline.py)."""
    rng = random.Random(seed)
    pending: list[tuple[str, str, int]] = []
    delivered = 0
    while True:
        for event in publisher.take():
            if event.detail_type == NODE_EXECUTION_QUEUED:
                d = event.detail
                pending.extend([(d["execution_id"], d["node_id"], int(d["seq"]))] * copies)
        if not pending:
            return delivered
        index = rng.randrange(len(pending)) if seed is not None else 0
        execution_id, node_id, seq = pending.pop(index)
        engine.run_node(execution_id, node_id, seq, chain=InlineChain(time_left) if time_left else None)
        delivered += 1
        assert delivered < limit, "runaway"


def run_graph(
    engine: Engine,
    publisher: RecordingPublisher,
    graph: dict[str, Any],
    inputs: dict[str, Any],
    seed: int | None = None,
    copies: int = 1,
    time_left: Callable[[], float] | None = None,
) -> dict[str, Any]:
    valid = validate_graph(graph)
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, inputs).execution_id
    drain(engine, publisher, seed=seed, copies=copies, time_left=time_left)
    report = execution_report(engine.store, execution_id, valid.output_names)
    assert report is not None
    return report


REPORT_TIMES = {"queued_at", "started_at", "ended_at"}


def report_nodes(report: dict[str, Any], node_id: str | None = None) -> list[dict[str, Any]]:
    """The node executions as the report shows them (the API's and the CLI's view), all or `node_id`'s, less their
    timestamps, by node and slot: for comparing a run with the same graph run another way."""
    nodes = [
        {k: v for k, v in n.items() if k not in REPORT_TIMES}
        for n in report["nodes"]
        if node_id is None or n["node_id"] == node_id
    ]
    for node in nodes:
        node["attempt_log"] = [{k: v for k, v in e.items() if k != "ended_at"} for e in node["attempt_log"]]
    return sorted(nodes, key=lambda n: (n["node_id"], n["seq"]))
