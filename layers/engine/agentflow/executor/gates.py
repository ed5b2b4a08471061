"""What a node execution checks before its block runs: that the run lets it run (not stopped, not past its
deadline), why a claim was lost, and the lease a fresh invocation would give its block (executor/node.py runs
it; executor/inline.py uses the lease to decide whether a worker may run a child itself)."""

from __future__ import annotations

from agentflow.executor.accounting import Accounting
from agentflow.executor.base import NodeRunOutcome
from agentflow.graph import ValidGraph
from agentflow.retries import RetryMessage
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, NodeRecord, RunStatePort

E = ExecutionStatus
N = NodeStatus
SAVE_MARGIN_SECONDS = 10.0  # of a worker's lease, kept to save and propagate a block's result after it runs


class NodeGates(Accounting):
    def _block_limit(self, graph: ValidGraph, node_id: str) -> float:
        """A node's time limit per attempt: the node's own, else its block kind's setting."""
        uses_llm = graph.block(node_id).uses_llm
        default_limit = self.settings.llm.timeout_seconds if uses_llm else self.settings.node_timeout_seconds
        return graph.node_timeout(node_id) or default_limit

    def _time_limit(self, graph: ValidGraph, node_id: str) -> float:
        """The lease a fresh invocation would give a node's block: its time limit plus the time to save and
        propagate its result, at most the default lease."""
        return min(self._block_limit(graph, node_id) + SAVE_MARGIN_SECONDS, self.settings.default_lease_seconds)

    def _not_claimed(
        self, store: RunStatePort, execution_id: str, node: NodeRecord | None, expected_attempt: int | None
    ) -> NodeRunOutcome:
        """Why a claim lost: no such node, a duplicate, or a retry whose backoff has not passed (a delayed message
        that came early is sent again for the time that is left)."""
        if node is None:
            return NodeRunOutcome.MISSING
        now = store.clock()
        if node.status is N.QUEUED and node.due_at() > now:
            if expected_attempt is not None and node.attempts == expected_attempt - 1 and self.retry_queue:
                message = RetryMessage(execution_id, node.node_id, node.seq, expected_attempt)
                self.retry_queue.send(message, node.due_at() - now)
            return NodeRunOutcome.NOT_DUE
        return NodeRunOutcome.DUPLICATE

    def _past_deadline(
        self, store: RunStatePort, execution: ExecutionRecord, node_id: str, seq: int, waiting: NodeStatus = N.QUEUED
    ) -> bool:
        """A running run past its graph's timeout_seconds fails here (and in the sweep, should no worker come by);
        the node it woke is terminated. A stopped run waits for its resume."""
        if execution.deadline is None or store.clock() <= execution.deadline:
            return False
        if execution.status not in (E.QUEUED, E.RUNNING, E.REVIEW):
            return False
        self._time_out(store, execution)
        store.transition_node(execution.execution_id, node_id, seq, N.TERMINATED, [waiting])
        return True

    def _execution_runs(
        self, store: RunStatePort, execution: ExecutionRecord, node_id: str, seq: int, waiting: NodeStatus = N.QUEUED
    ) -> bool:
        """Whether the run lets this node run: a stopped or ended run terminates it (from `waiting`: QUEUED, or
        RUNNING for a node created claimed); the first node moves the run to RUNNING."""
        execution_id = execution.execution_id
        status = execution.status
        if status in (E.TERMINATED, E.COMPLETED, E.FAILED):
            if store.transition_node(execution_id, node_id, seq, N.TERMINATED, [waiting]).won:
                self._requeue_if_resumed(store, execution_id, node_id, seq)
            return False
        if status in (E.INCOMPLETE, E.QUEUED):
            moved = store.transition_execution(execution_id, E.RUNNING, [E.INCOMPLETE, E.QUEUED])
            if moved.won:
                self._publish(store, [self._status_event(moved)])
        if status is E.REVIEW:  # a decided review's node, whose waker died before moving the run on
            moved = store.transition_execution(execution_id, E.RUNNING, [E.REVIEW], require_unreviewed_work=True)
            if moved.won:
                self._publish(store, [self._status_event(moved)])
        return True
