"""Starting a run: validate the graph and inputs (every problem reported at once), write the execution and its
starting nodes, then INCOMPLETE -> QUEUED; only the winner of that transition publishes the starting nodes. An
idempotency key makes a repeated start find the same execution."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentflow.blocks.sdk import BlockType
from agentflow.credentials.models import credential_fields
from agentflow.events import OutboundEvent
from agentflow.executor.base import StartResult, dumps
from agentflow.executor.node import NodeRunning
from agentflow.executor.start_inputs import run_inputs_at_start
from agentflow.graph import GraphValidationError, Problem, ValidGraph, validate_inputs
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, RunStatePort

MAX_START_BYTES = 100_000  # a run's inputs travel in node items (400 KB each) beside their outputs

E = ExecutionStatus
N = NodeStatus


def _check_start(graph: ValidGraph, inputs: Mapping[str, Any], trigger_payload: Mapping[str, Any] | None) -> str:
    """The inputs as JSON, once the graph can start with them and this payload; GraphValidationError if not."""
    trigger = graph.trigger_node
    if trigger is not None and trigger_payload is None:
        problem = Problem(
            "this graph starts only from its webhook (create one with POST /graphs/{id}/webhooks)", trigger.id
        )
        raise GraphValidationError([problem], what="start")
    if trigger is None and trigger_payload is not None:
        raise GraphValidationError([Problem("this graph has no trigger block to receive a webhook")], what="start")
    validate_inputs(graph, inputs)
    try:
        inputs_json = dumps(dict(inputs))
        payload_json = dumps(dict(trigger_payload or {}))
    except (TypeError, ValueError) as exc:
        raise GraphValidationError([Problem(f"inputs are not JSON: {exc}")], what="inputs") from exc
    for what, text in (("inputs", inputs_json), ("webhook payload", payload_json)):
        if len(text.encode()) > MAX_START_BYTES:
            problem = Problem(f"the {what} are {len(text.encode())} bytes as JSON; the limit is {MAX_START_BYTES}")
            raise GraphValidationError([problem], what="inputs")
    return inputs_json


def _start_nodes(
    graph: ValidGraph, inputs: Mapping[str, Any], trigger_payload: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    trigger = graph.trigger_node
    nodes = []
    for node in graph.starting_nodes:
        data = dict(node.input_default)
        if graph.block(node.id).block_type is BlockType.INPUT and node.input_default.get("name") in inputs:
            data["value"] = inputs[node.input_default["name"]]
        if trigger is not None and node.id == trigger.id:
            data["payload"] = dict(trigger_payload or {})
        nodes.append({"node_id": node.id, "seq": 0, "block_id": node.block_id, "inputs": dumps(data)})
    return nodes


@dataclass(frozen=True)
class ParentRef:
    """Where a sub-agent run comes from: the run, node and slot that started it, and its depth below the top."""

    execution_id: str
    node_id: str
    seq: int
    depth: int


class Starting(NodeRunning):
    def start_execution(
        self,
        user_id: str,
        graph_id: str,
        graph_version: int,
        inputs: Mapping[str, Any],
        idempotency_key: str | None = None,
        trigger_payload: Mapping[str, Any] | None = None,
        parent: ParentRef | None = None,
    ) -> StartResult:
        """Start a run. A graph with a trigger block starts only with `trigger_payload` (from its webhook)."""
        with self._unit() as unit:
            store = unit.store
            graph = self.load_graph(user_id, graph_id, graph_version, store)
            inputs_json = _check_start(graph, inputs, trigger_payload)
            self._check_credentials(user_id, graph)
            if idempotency_key is not None:
                existing = store.find_idempotent_execution(user_id, idempotency_key)
                if existing is not None:
                    unit.execution_id = existing
                    self._publish_start(store, existing)  # finishes a start that died before publishing
                    return StartResult(existing, created=False)
            execution: dict[str, Any] = {
                "execution_id": str(uuid.uuid4()),
                "user_id": user_id,
                "graph_id": graph_id,
                "graph_version": graph_version,
                "node_limit": graph.node_execution_limit,
            }
            if parent is None:  # a sub-agent run goes under its parent's slot (README, "Concurrency limits")
                execution["max_concurrent_runs"] = (
                    graph.max_concurrent_runs or self.settings.max_concurrent_runs_per_graph
                )
            else:
                execution.update(
                    parent_execution_id=parent.execution_id,
                    parent_node_id=parent.node_id,
                    parent_seq=parent.seq,
                    depth=parent.depth,
                )
            if graph.graph.timeout_seconds is not None:
                execution["deadline"] = store.clock() + graph.graph.timeout_seconds
            start_nodes = _start_nodes(graph, inputs, trigger_payload)
            start_nodes = run_inputs_at_start(graph, execution["execution_id"], start_nodes, store.clock)
            execution_id, created = store.create_execution(execution, inputs_json, start_nodes, idempotency_key)
            unit.execution_id = execution_id
            # as just written (saves a read); a start that lost its idempotency key to another reads the winner's
            written = ExecutionRecord.from_item({**execution, "status": E.INCOMPLETE.value}) if created else None
            self._publish_start(store, execution_id, written)
            return StartResult(execution_id, created)

    def _check_credentials(self, user_id: str, graph: ValidGraph) -> None:
        """Every node's credentials exist, are the user's and are of a kind its block takes (400 naming the node
        and pin otherwise); nothing starts when one is wrong."""
        needs = [n.id for n in graph.graph.nodes if credential_fields(graph.block(n.id))]
        if not needs:
            return
        if self.credentials is None:
            problems = [Problem("this deployment has no credentials store", node_id) for node_id in needs]
        else:
            problems = self.credentials.check_graph(user_id, graph)
        if problems:
            raise GraphValidationError(problems, what="credentials")

    def _publish_start(self, store: RunStatePort, execution_id: str, execution: ExecutionRecord | None = None) -> None:
        """INCOMPLETE -> QUEUED; only the winner publishes the starting nodes. `execution`: its META as known, if
        it is (the concurrency limits read it otherwise: executor/admission.py)."""
        moved = store.transition_execution(execution_id, E.QUEUED, [E.INCOMPLETE])
        if moved.won:  # else another starter won and publishes
            self._publish_nodes(store, execution_id, [self._status_event(moved)])

    def _publish_nodes(self, store: RunStatePort, execution_id: str, then: Sequence[OutboundEvent] = ()) -> None:
        """One event per QUEUED node execution of the run, then `then`."""
        events = [
            OutboundEvent.node_queued(execution_id, n.node_id, n.seq)
            for n in store.list_nodes(execution_id, status=N.QUEUED)
        ]
        self._publish(store, [*events, *then])
