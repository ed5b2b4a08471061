"""A run's life after its start: finalize (whoever sees `pending` reach 0), the retention of a finished run,
stop and resume."""

from __future__ import annotations

import logging

from agentflow.clock import epoch_of
from agentflow.events import OutboundEvent
from agentflow.executor.base import EngineBase, SweepReport
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, RunStatePort, Transition

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus


class Lifecycle(EngineBase):
    def _maybe_finalize(self, store: RunStatePort, execution_id: str) -> bool:
        """Finalize a RUNNING run whose pending count is 0 (True when this call did it); pause one whose pending
        node executions all wait for a review (RUNNING -> REVIEW)."""
        execution = store.get_execution(execution_id)
        if execution is None or execution.status is not E.RUNNING:
            return False
        if execution.pending and execution.pending == execution.reviewing:  # nothing left but reviews: pause
            paused = store.transition_execution(execution_id, E.REVIEW, [E.RUNNING], require_only_reviews=True)
            if paused.won:
                self._publish(store, [self._status_event(paused)])
            return False
        if execution.pending != 0:
            return False
        target = E.FAILED if execution.failed_nodes > 0 else E.COMPLETED
        done = store.transition_execution(
            execution_id, target, [E.RUNNING], require_pending_zero=True, keep_listed=self._retains
        )
        self._ended(store, done)
        return done.won

    def _fail_run(self, store: RunStatePort, execution_id: str, error: str, failure: str | None = None) -> None:
        """RUNNING -> FAILED for a reason that is not a node's (a missing graph, the node-execution limit, the
        budget); `failure` names it for a redrive, which refuses those (executor/redrive.py)."""
        failed = store.transition_execution(
            execution_id, E.FAILED, [E.RUNNING], error=error, failure=failure, keep_listed=self._retains
        )
        self._ended(store, failed)

    def _time_out(self, store: RunStatePort, execution: ExecutionRecord) -> bool:
        """QUEUED/RUNNING/REVIEW -> FAILED for a run past its deadline; True when this call did it."""
        assert execution.deadline is not None
        limit = execution.deadline - epoch_of(execution.created_at) if execution.created_at else None
        error = "the run timed out: it was still going after its graph's timeout_seconds"
        if limit is not None:
            error += f" ({limit:g} s)"
        failed = store.transition_execution(
            execution.execution_id,
            E.FAILED,
            [E.QUEUED, E.RUNNING, E.REVIEW],
            error=error,
            failure="timeout",
            keep_listed=self._retains,
        )
        self._ended(store, failed)
        return failed.won

    def _ended(self, store: RunStatePort, ended: Transition[ExecutionRecord]) -> None:
        """After a run reached COMPLETED or FAILED: the winner announces it and stamps its retention."""
        if not ended.won or ended.item is None:
            return
        self._publish(store, [self._status_event(ended)])
        self._release_slot(store, ended.item)
        self._wake_parent(store, ended.item)
        if ended.item.status is E.FAILED:
            self._stop_children(store, ended.item.execution_id, stopped=False)
        if self._retains:
            try:
                self._retire(store, ended.item)
            except Exception:  # the sweeper finishes it: the run stays on its index until retired
                logger.exception("retention of %s failed; the sweeper will retry", ended.item.execution_id)

    def _retire(self, store: RunStatePort, execution: ExecutionRecord) -> None:
        ended_at = execution.ended_at or execution.updated_at
        ended = epoch_of(ended_at) if ended_at else store.clock()
        expires_at = int(ended + self.settings.retention_seconds)
        store.retire(execution.execution_id, expires_at, execution.idempotency_pk)

    def stop(self, execution_id: str) -> Transition[ExecutionRecord]:
        """Stop a run: nodes claimed from now on become TERMINATED and nothing new is queued."""
        with self._unit(execution_id) as unit:
            stopped = unit.store.transition_execution(execution_id, E.TERMINATED)
            if stopped.won:
                assert stopped.item is not None
                self._publish(unit.store, [self._status_event(stopped)])
                self._release_slot(unit.store, stopped.item)
                self._stop_children(unit.store, execution_id, stopped=True)
            return stopped

    # concurrency limits (agentflow.executor.admission)
    def _release_slot(self, store: RunStatePort, execution: ExecutionRecord) -> None:
        """A run stopped or ended: it gives back its slot, and the oldest run waiting for one starts."""

    def _sweep_slots(self, report: SweepReport) -> None:
        """Give back the slots of runs that stopped or ended without giving them back; start waiting runs."""

    # sub-agents (agentflow.executor.subagents)
    def _wake_parent(self, store: RunStatePort, child: ExecutionRecord) -> None:
        """A run ended: if a sub-agent node waits for it, that node carries on."""

    def _stop_children(self, store: RunStatePort, execution_id: str, stopped: bool) -> None:
        """A run stopped or failed: the child runs its nodes wait for stop too."""

    def resume(self, execution_id: str) -> Transition[ExecutionRecord]:
        """TERMINATED -> RUNNING, then re-queue every TERMINATED node and re-publish every QUEUED one. A run under a
        concurrency limit takes a slot in the same write, or is refused: SlotsFull, a Conflict (README,
        "Concurrency limits"); sub-agent runs have none (they go under their parent's slot)."""
        with self._unit(execution_id) as unit:
            store = unit.store
            run = store.get_execution(execution_id)
            if run is not None and run.max_concurrent_runs is not None:
                resumed = store.resume_with_slot(run)
            else:
                resumed = store.transition_execution(execution_id, E.RUNNING, [E.TERMINATED])
            if not resumed.won:
                return resumed
            events = [self._status_event(resumed)]
            for node in store.list_nodes(execution_id):
                node_id, seq = node.node_id, node.seq
                if node.status is N.TERMINATED:
                    if store.transition_node(execution_id, node_id, seq, N.QUEUED, [N.TERMINATED]).won:
                        events.append(OutboundEvent.node_queued(execution_id, node_id, seq))
                elif node.status is N.QUEUED:
                    events.append(OutboundEvent.node_queued(execution_id, node_id, seq))
            self._publish(store, events)
            self._maybe_finalize(store, execution_id)
            return resumed

    def _requeue_if_resumed(self, store: RunStatePort, execution_id: str, node_id: str, seq: int) -> None:
        """A resume may have listed the nodes before this one became TERMINATED (it then saw it QUEUED or
        RUNNING and left it): if the run is RUNNING again, re-queue the node ourselves. Only one of us and the
        resume wins the TERMINATED -> QUEUED write."""
        now = store.get_execution(execution_id)
        if now is not None and now.status is E.RUNNING:
            requeued = store.transition_node(execution_id, node_id, seq, N.QUEUED, [N.TERMINATED])
            if requeued.won:
                self._publish(store, [OutboundEvent.node_queued(execution_id, node_id, seq)])
