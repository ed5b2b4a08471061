"""One node execution: claim it (a conditional write with a lease), run its block once (or take the outputs an
earlier attempt saved), save the outputs before they propagate, propagate, then finish (`pending` - 1) and, if
nothing is left, finalize the run."""

from __future__ import annotations

import json
import logging
from typing import Any

from agentflow.blocks.execution import execute_block
from agentflow.blocks.sdk import BlockContext, BlockType
from agentflow.executor.base import GraphNotFound, NodeRunOutcome, dumps
from agentflow.executor.propagation import Propagation
from agentflow.graph import ValidGraph
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, ItemTooLarge, NodeRecord, RunStatePort

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus


class NodeRunning(Propagation):
    def run_node(self, execution_id: str, node_id: str, seq: int, lease_seconds: float | None = None) -> NodeRunOutcome:
        """Handle one NodeExecutionQueued event. Safe under duplicate and concurrent delivery."""
        with self._unit(execution_id) as unit:
            return self._run_node(unit.store, execution_id, node_id, seq, lease_seconds)

    def _run_node(
        self, store: RunStatePort, execution_id: str, node_id: str, seq: int, lease_seconds: float | None
    ) -> NodeRunOutcome:
        execution = store.get_execution(execution_id)
        if execution is None:
            logger.warning("event for unknown execution %s", execution_id)
            return NodeRunOutcome.MISSING
        if not self._execution_runs(store, execution, node_id, seq):
            return NodeRunOutcome.TERMINATED
        claim = store.claim_node(execution_id, node_id, seq, lease_seconds or self.settings.default_lease_seconds)
        if not claim.won:
            return NodeRunOutcome.MISSING if claim.item is None else NodeRunOutcome.DUPLICATE
        node = claim.item
        assert node is not None
        attempt = node.attempts
        try:
            graph = self.load_graph(execution.user_id, execution.graph_id, execution.graph_version, store)
        except GraphNotFound as exc:  # cannot happen through the API (versions outlive their graph); never hang
            logger.error("execution %s: %s", execution_id, exc)
            self._fail_run(store, execution_id, str(exc))
            return NodeRunOutcome.FAILED
        if node.outputs is not None:  # an earlier attempt ran the block and died before finishing: don't rerun
            outputs: list[Any] = [tuple(pair) for pair in json.loads(node.outputs)]
            error: str | None = node.error
        else:
            outputs, error = self._run_block(execution, graph, node, node_id, seq, attempt)
            if not store.save_node_result(execution_id, node_id, seq, attempt, dumps(outputs), error):
                return NodeRunOutcome.LOST_LEASE
        try:
            propagated = self._propagate(store, execution_id, graph, node_id, seq, outputs)
        except ItemTooLarge as exc:
            # e.g. a sink that received more values than one item can record: fail loudly, never silently
            error = f"a value could not be delivered: a DynamoDB item would exceed 400 KB ({exc})"
            propagated = True
        if not propagated:
            return self._finish_terminated(store, execution_id, node_id, seq, attempt)
        return self._finish(store, execution_id, graph, node, attempt, error)

    def _execution_runs(self, store: RunStatePort, execution: ExecutionRecord, node_id: str, seq: int) -> bool:
        """Whether the run lets this node run: a stopped or ended run terminates it; the first node moves the
        run to RUNNING."""
        execution_id = execution.execution_id
        status = execution.status
        if status in (E.TERMINATED, E.COMPLETED, E.FAILED):
            if store.transition_node(execution_id, node_id, seq, N.TERMINATED, [N.QUEUED]).won:
                self._requeue_if_resumed(store, execution_id, node_id, seq)
            return False
        if status in (E.INCOMPLETE, E.QUEUED):
            moved = store.transition_execution(execution_id, E.RUNNING, [E.INCOMPLETE, E.QUEUED])
            if moved.won:
                self._publish(store, [self._status_event(moved)])
        return True

    def _run_block(
        self, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord, node_id: str, seq: int, attempt: int
    ) -> tuple[list[Any], str | None]:
        """The block's outputs and error; an error output instead when it may not run or its outputs are too big."""
        if attempt > self.settings.max_attempts:
            error = (
                f"gave up after {attempt - 1} attempts: the worker stopped before finishing "
                "(timeout or crash; the lease expired)"
            )
            return [("error", error)], error
        context = BlockContext(
            user_id=execution.user_id,
            graph_id=execution.graph_id,
            graph_version=execution.graph_version,
            execution_id=execution.execution_id,
            node_id=node_id,
            node_exec_id=f"{node_id}#{seq}",
        )
        run = execute_block(graph.block(node_id), json.loads(node.inputs or "{}"), context)
        outputs: list[Any] = list(run.outputs)
        size = len(dumps(outputs).encode()) + len((node.inputs or "").encode())  # both share the item
        if size > self.settings.max_value_bytes:
            error = (
                f"inputs and outputs are {size} bytes; a node's inputs and outputs together are limited to "
                f"{self.settings.max_value_bytes} bytes (one DynamoDB item)"
            )
            return [("error", error)], error
        return outputs, run.error

    def _finish(
        self,
        store: RunStatePort,
        execution_id: str,
        graph: ValidGraph,
        node: NodeRecord,
        attempt: int,
        error: str | None,
    ) -> NodeRunOutcome:
        node_id, seq = node.node_id, node.seq
        block = graph.block(node_id)
        target = N.FAILED if error is not None else N.COMPLETED
        unhandled = None
        if error is not None and not graph.error_is_handled(node_id):
            unhandled = f"node {node_id} ({block.name()}) failed: {error}"
        recorded = None
        if block.block_type is BlockType.OUTPUT and error is None:
            data = json.loads(node.inputs or "{}")
            recorded = (str(data.get("name")), dumps(data.get("value")))
        if not store.finish_node(
            execution_id, node_id, seq, attempt, target, unhandled_error=unhandled, recorded_output=recorded
        ):
            return NodeRunOutcome.LOST_LEASE
        self._maybe_finalize(store, execution_id)
        return NodeRunOutcome.FAILED if error is not None else NodeRunOutcome.COMPLETED

    def _finish_terminated(
        self, store: RunStatePort, execution_id: str, node_id: str, seq: int, attempt: int
    ) -> NodeRunOutcome:
        """The run was stopped while this node ran: keep its saved outputs, and propagate them on resume."""
        if not store.finish_node(execution_id, node_id, seq, attempt, N.TERMINATED):
            return NodeRunOutcome.LOST_LEASE
        self._requeue_if_resumed(store, execution_id, node_id, seq)
        return NodeRunOutcome.TERMINATED
