"""Redrive (README, "Redrive"): re-run a FAILED run from where it failed, as Step Functions' redrive does. The
failed node executions whose error nothing handled go back in the queue with their inputs, the node executions
the failure stopped are queued again, and every completed node keeps its outputs (its block does not run again);
what the failed nodes gate runs once they complete. A run that failed on its node-execution limit, its budget or
its timeout would fail the same way again: it is refused, saying why."""

from __future__ import annotations

from agentflow.errors import Conflict, NotFound
from agentflow.events import OutboundEvent
from agentflow.executor.reviews import Reviews
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, Transition
from agentflow.store.redrives import MAX_REDRIVEN_NODES
from agentflow.store.slots import SlotsFull

E = ExecutionStatus
N = NodeStatus
NOT_REDRIVABLE = {
    "node_limit": "it hit its node-execution limit (node_execution_limit): a redrive would hit it again",
    "budget": "it used up its budget: a redrive would spend past it",
    "timeout": "it ran past its graph's timeout_seconds: its deadline has passed",
    "graph_missing": "its graph version is gone",
}


class RedriveRefused(Conflict):
    """A run that cannot be redriven; `status` is its current status."""

    def __init__(self, message: str, status: str) -> None:
        super().__init__(message)
        self.status = status


class Redriving(Reviews):
    def redrive(self, execution_id: str) -> Transition[ExecutionRecord]:
        """FAILED -> RUNNING with its failed node executions queued again. Raises NotFound, or RedriveRefused
        (a run that is not FAILED, failed for a reason a redrive cannot remove, or has nothing to re-run)."""
        with self._unit(execution_id) as unit:
            store = unit.store
            execution = store.get_execution(execution_id)
            if execution is None:
                raise NotFound(f"no execution {execution_id}")
            status = execution.status.value
            if execution.status is not E.FAILED:
                raise RedriveRefused(f"only a FAILED run can be redriven; this one is {status}", status)
            if execution.failure in NOT_REDRIVABLE:
                raise RedriveRefused(f"this run cannot be redriven: {NOT_REDRIVABLE[execution.failure]}", status)
            graph = self.load_graph(execution.user_id, execution.graph_id, execution.graph_version, store)
            nodes = store.list_nodes(execution_id)
            failed = [n for n in nodes if n.status is N.FAILED and not graph.error_is_handled(n.node_id)]
            stopped = [n for n in nodes if n.status is N.TERMINATED]
            if not failed and not stopped:
                raise RedriveRefused("this run cannot be redriven: no node execution failed or was stopped", status)
            if len(failed) > MAX_REDRIVEN_NODES:
                raise RedriveRefused(
                    f"{len(failed)} node executions failed; a redrive re-runs at most {MAX_REDRIVEN_NODES}", status
                )
            cap = execution.max_concurrent_runs  # a slot first (README, "Concurrency limits")
            if cap is not None and not store.take_slot(execution.user_id, execution.graph_id, execution_id, cap):
                full = SlotsFull(execution.graph_id, cap, status)
                raise RedriveRefused(f"this run cannot be redriven now: {full}", status)
            store.unretire(execution_id)
            moved = store.redrive_execution(execution, failed)
            if not moved.won:
                if cap is not None:
                    self._release_slot(store, moved.item or execution)  # unless it runs: another redrive won
                current = moved.status or status
                raise RedriveRefused(f"only a FAILED run can be redriven; this one is {current}", current)
            if cap is not None:  # its failure's give-back may have crossed our take: it holds a slot now, for sure
                store.take_slot(execution.user_id, execution.graph_id, execution_id, None)
            events = [self._status_event(moved)]
            events += [OutboundEvent.node_queued(execution_id, n.node_id, n.seq) for n in failed]
            for node in stopped:  # stopped by the failure: they run again, as on resume
                if store.transition_node(execution_id, node.node_id, node.seq, N.QUEUED, [N.TERMINATED]).won:
                    events.append(OutboundEvent.node_queued(execution_id, node.node_id, node.seq))
            self._publish(store, events)
            return moved
