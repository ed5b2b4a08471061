"""Inputs run at the start (docs/architecture.md, "Inputs run at the start"): the input nodes of
`ValidGraph.inputs_run_at_start` are run by the start itself, which writes them ended and the slot 0 of each node
they feed queued with all its values, instead of queueing them to be claimed, run and finished, each delivering
the recorded way. Their blocks are pure and read nothing but their inputs (the run's input of their name), so
running them early is running them; the nodes they feed have no other source, so each runs once either way."""

from __future__ import annotations

import json
from typing import Any

from agentflow.clock import Clock
from agentflow.executor import attempts
from agentflow.executor.base import dumps
from agentflow.graph import ValidGraph
from agentflow.pins import select_output
from agentflow.statuses import NodeStatus


def run_inputs_at_start(
    graph: ValidGraph, execution_id: str, start_nodes: list[dict[str, Any]], clock: Clock
) -> list[dict[str, Any]]:
    """The items a run starts with: `start_nodes` (queued), but for the input nodes run now (ended, with their
    outputs) and the slot 0 of each node they feed (queued, with its values). Unchanged when anything would run
    otherwise than it does on its own: a block that fails, a link that receives no value or several, a pin fed
    twice, or more node executions than the graph's limit."""
    chosen = graph.inputs_run_at_start
    if not chosen:
        return start_nodes
    sink_values: dict[str, dict[str, Any]] = {}
    outputs: dict[str, str] = {}
    for node in start_nodes:
        node_id = str(node["node_id"])
        if node_id not in chosen:
            continue
        run = attempts.run_at_once(graph, execution_id, node_id, 0, json.loads(node["inputs"]), clock)
        if run is None:
            return start_nodes  # its own run reports it
        for _, link in graph.links_from[node_id]:
            fired = [
                selected
                for pin, value in run.outputs
                for fires, selected in [select_output(pin, value, link.source_name)]
                if fires
            ]
            pins = sink_values.setdefault(link.sink_id, {})
            if len(fired) != 1 or link.sink_name in pins:
                return start_nodes  # a node that never runs, or runs more than once: as on its own
            pins[link.sink_name] = fired[0]
        outputs[node_id] = dumps(run.outputs)
    items = [
        {**node, "status": NodeStatus.COMPLETED.value, "outputs": outputs[node["node_id"]]}
        if node["node_id"] in outputs
        else node
        for node in start_nodes
    ]
    for sink, values in sink_values.items():
        fed = graph.nodes[sink]
        items.append({"node_id": sink, "seq": 0, "block_id": fed.block_id, "inputs": dumps(fed.input_default | values)})
    if len(items) > graph.node_execution_limit:
        return start_nodes
    return items
