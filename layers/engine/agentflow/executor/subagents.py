"""Sub-agents (README, "Sub-agents"; docs/architecture.md, "Sub-agents"): an AgentExecutorBlock node starts a
child run of another graph of the same user, then waits for it with no function waiting. Its node execution goes
RUNNING -> WAITING with the child's id; the child's end (COMPLETED or FAILED) puts it back in the queue
(WAITING -> QUEUED), and its next claim yields the child's outputs, or fails with the child's error. Every step is
safe to repeat: the child is started under an idempotency key made of the parent's node execution, so a
duplicate event or a worker that died after the start finds the same child; the wake is a conditional write; the
sweeper wakes a node whose child ended without waking it. Stopping a parent stops its children (`stop`), and its
resume resumes them (the node's next claim finds its child TERMINATED)."""

from __future__ import annotations

import json
import logging

from agentflow.blocks.agent import schema_names
from agentflow.blocks.execution import ERROR_PIN, BlockRun
from agentflow.errors import AgentflowError
from agentflow.events import OutboundEvent
from agentflow.executor.admission import Admission
from agentflow.executor.start import ParentRef
from agentflow.graph import ValidGraph
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, NodeRecord, RunStatePort

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus
MAX_DEPTH = 10  # AutoGPT has none; a graph that calls a graph that calls ... ends here, with a clear error
ENDED = (E.COMPLETED, E.FAILED)


def _failed(message: str) -> BlockRun:
    return BlockRun([(ERROR_PIN, message)], message)


class SubAgents(Admission):
    def _agent_run(
        self, store: RunStatePort, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord
    ) -> BlockRun | None:
        """The node's result once its child run ended; None when it now waits for the child (WAITING)."""
        child_id = node.child_execution_id
        if child_id is None:
            try:
                child_id = self._start_child(execution, graph, node)
            except AgentflowError as exc:  # refused: depth, a self-call, a graph or inputs the child cannot take
                return _failed(f"the sub-agent could not start: {exc}")
        child = store.get_execution(child_id)
        if child is None:
            return _failed(f"the sub-agent run {child_id} is gone")
        if child.status is E.TERMINATED:  # stopped with its parent: the parent was resumed, so resume it too
            self.resume(child_id)
            child = store.get_execution(child_id) or child
        if child.status in ENDED and node.child_execution_id is not None:
            return self._child_result(store, child)
        # a child just started is recorded by the wait even if it already ended: the node's report names its run
        if not store.wait_for_child(execution.execution_id, node.node_id, node.seq, node.attempts, child_id):
            return None  # our lease was taken over: the other worker carries on
        again = store.get_execution(child_id)  # it may have ended before we waited: its wake found us RUNNING
        if again is not None and again.status in ENDED:
            self._wake(store, execution.execution_id, node.node_id, node.seq)
        return None

    def _start_child(self, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord) -> str:
        data = json.loads(node.inputs or "{}")
        graph_id, version = str(data.get("graph_id") or ""), int(data.get("graph_version") or 0)
        if graph_id == execution.graph_id:
            raise AgentflowError(
                f"graph {graph_id} calls itself (node {node.node_id}); a graph cannot be its own sub-agent"
            )
        if execution.depth + 1 > MAX_DEPTH:
            raise AgentflowError(
                f"sub-agent depth limit reached: this run is {execution.depth} levels below its top run, and "
                f"sub-agents nest at most {MAX_DEPTH} deep"
            )
        child_graph = self.load_graph(execution.user_id, graph_id, version)  # the same user's only
        known = set(child_graph.input_names)
        given = dict(data.get("inputs") or {})
        given.update({name: data[name] for name in schema_names(data.get("input_schema")) if name in data})
        inputs = {name: value for name, value in given.items() if name in known}
        parent = ParentRef(execution.execution_id, node.node_id, node.seq, execution.depth + 1)
        # the same child however often we get here; a redriven run's node starts a new one
        key = f"subagent#{execution.execution_id}#{node.node_id}#{node.seq}#{execution.redrives}"
        return self.start_execution(
            execution.user_id, graph_id, version, inputs, idempotency_key=key, parent=parent
        ).execution_id

    def _child_result(self, store: RunStatePort, child: ExecutionRecord) -> BlockRun:
        """The child's outputs, in the order it recorded them, per output name; its error if it FAILED. Its LLM
        usage becomes the node's, so the parent run's totals and budget include its sub-agents'."""
        if child.status is E.FAILED:
            run = _failed(f"the sub-agent run {child.execution_id} failed: {child.error or 'no error recorded'}")
        else:
            graph = self.load_graph(child.user_id, child.graph_id, child.graph_version, store)
            outputs = [node.id for node in graph.output_nodes]
            recorded = store.list_outputs(child.execution_id, outputs, graph.output_carriers)
            run = BlockRun([(output.name, json.loads(output.value)) for output in recorded], None)
        usage = {
            "llm_calls": int(child.llm.get("llm_calls", 0)),
            "input_tokens": int(child.llm.get("llm_input_tokens", 0)),
            "output_tokens": int(child.llm.get("llm_output_tokens", 0)),
            "cost_usd": child.llm_cost_usd,
        }
        if any(usage.values()):
            run = BlockRun(run.outputs, run.error, usage={**usage, "llm_retries": 0, "model": None})
        return run

    def _wake(self, store: RunStatePort, execution_id: str, node_id: str, seq: int) -> bool:
        """WAITING -> QUEUED and its event; only one waker wins."""
        woken = store.transition_node(execution_id, node_id, seq, N.QUEUED, [N.WAITING])
        if woken.won:
            self._publish(store, [OutboundEvent.node_queued(execution_id, node_id, seq)])
        return woken.won

    def _wake_parent(self, store: RunStatePort, child: ExecutionRecord) -> None:
        """A child run ended: its parent's node carries on."""
        if child.parent_execution_id is not None and child.parent_node_id is not None:
            self._wake(store, child.parent_execution_id, child.parent_node_id, child.parent_seq)

    def _stop_children(self, store: RunStatePort, execution_id: str, stopped: bool) -> None:
        """A stopped (`stopped`) or failed run: each of its waiting nodes is TERMINATED, and what it waits for ends
        (`_stop_waiting`)."""
        for node in store.list_nodes(execution_id, status=N.WAITING):
            self._stop_waiting(store, execution_id, node, stopped)

    def _stop_waiting(self, store: RunStatePort, execution_id: str, node: NodeRecord, stopped: bool) -> None:
        """A sub-agent node: TERMINATED, and its child run stopped (agentflow.executor.reviews handles reviews)."""
        store.transition_node(execution_id, node.node_id, node.seq, N.TERMINATED, [N.WAITING])
        if node.child_execution_id is not None:
            self.stop(node.child_execution_id)

    def _sweep_waiting(self, store: RunStatePort, nodes: list[NodeRecord]) -> int:
        """Wake the waiting nodes whose child ended without waking them (its worker died in between)."""
        woken = 0
        for node in nodes:
            if node.status is N.WAITING and node.child_execution_id is not None:
                child = store.get_execution(node.child_execution_id)
                if child is not None and child.status in ENDED and child.parent_execution_id is not None:
                    woken += self._wake(store, child.parent_execution_id, node.node_id, node.seq)
        return woken
