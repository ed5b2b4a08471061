"""The sweeper: every minute, move on whatever a crash left behind (README, "How a run executes", step 7), and
the local stack's recovery of the runs a dead process left."""

from __future__ import annotations

import logging

from agentflow.events import OutboundEvent
from agentflow.executor.base import SweepReport, age_seconds
from agentflow.executor.redrive import Redriving
from agentflow.retries import RetryMessage
from agentflow.statuses import ExecutionStatus, NodeStatus
from agentflow.store import ExecutionRecord, NodeRecord, RunStatePort

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus
UNFINISHED = (N.QUEUED, N.RUNNING, N.WAITING, N.TERMINATED)  # what `pending` counts


class Sweeping(Redriving):
    def sweep(self, stale_after_seconds: float = 120.0, now: float | None = None) -> SweepReport:
        """Move on every run that something left behind: a start that died before publishing, node events (or
        delayed retries) that were lost, runs past their graph's timeout_seconds, leases that expired (the claim
        takes them over, or fails the node after the attempt limit), runs drained to pending = 0 that nobody
        finalized, pending counts that disagree with the node items, and finished runs whose retention was cut
        short. Safe to run any number of times, beside the executors."""
        report = SweepReport()
        now = self.store.clock() if now is None else now
        for execution in self.store.list_active_executions():
            report.executions += 1
            try:
                with self._unit(execution.execution_id) as unit:
                    self._sweep_execution(unit.store, execution, stale_after_seconds, now, report)
            except Exception:  # one broken run must not stop the sweep of the others
                logger.exception("sweeping execution %s failed", execution.execution_id)
        try:
            self._sweep_slots(report)
        except Exception:
            logger.exception("sweeping the concurrency slots failed")
        return report

    def recover_abandoned(self) -> SweepReport:
        """Move on at once every run that a dead process left: take over the leases it held, send again the
        delayed retries it held in memory (the local queue), then sweep with no stale threshold. Only for a
        store no other live process works on (the local stack that owns its data folder), since it voids every
        lease."""
        now = self.store.clock()
        for execution in self.store.list_active_executions():
            execution_id = execution.execution_id
            for node in self.store.list_nodes(execution_id, status=N.RUNNING):
                self.store.release_lease(execution_id, node.node_id, node.seq, node.attempts)
            for node in self.store.list_nodes(execution_id, status=N.QUEUED):
                if node.due_at() > now and self.retry_queue is not None:  # its delayed message died with the process
                    message = RetryMessage(execution_id, node.node_id, node.seq, node.attempts + 1)
                    self.retry_queue.send(message, node.due_at() - now)
        return self.sweep(stale_after_seconds=0)

    def _sweep_execution(
        self, store: RunStatePort, execution: ExecutionRecord, stale_after: float, now: float, report: SweepReport
    ) -> None:
        execution_id = execution.execution_id
        status = execution.status
        if status is E.INCOMPLETE:
            if age_seconds(execution.created_at, now) > stale_after:
                self._publish_start(store, execution_id)
                report.started += 1
            return
        if status in (E.COMPLETED, E.FAILED):  # ended, but its retention was not stamped
            if self._retains:
                self._retire(store, execution)
                report.retired += 1
            else:  # retention was switched off since it ended: keep it forever, off the index
                store.retire(execution_id, None, None)
            return
        if status not in (E.QUEUED, E.RUNNING, E.REVIEW):
            return
        if execution.deadline is not None and now > execution.deadline:
            if self._time_out(store, execution):
                report.timed_out += 1
            return
        if status is E.QUEUED and (execution.awaiting_slot or age_seconds(execution.updated_at, now) <= stale_after):
            return  # waits for a slot (admission publishes its nodes), or they went out too recently to be lost
        nodes = store.list_nodes(execution_id)
        lost = [n for n in nodes if self._looks_lost(n, stale_after, now)]
        report.woken += self._sweep_waiting(store, nodes)
        report.reviews_timed_out += self._sweep_reviews(store, execution, nodes, now)
        if status is E.RUNNING:
            lost += self._requeue_left_behind(store, execution_id, nodes, stale_after, now)
        events = [OutboundEvent.node_queued(execution_id, n.node_id, n.seq) for n in lost]
        self._publish(store, events)
        report.republished += len(events)
        pending = self._checked_pending(store, execution, nodes, stale_after, now, report)
        if status is E.RUNNING and pending == 0 and self._maybe_finalize(store, execution_id):
            report.finalized += 1

    @staticmethod
    def _requeue_left_behind(
        store: RunStatePort, execution_id: str, nodes: list[NodeRecord], stale_after: float, now: float
    ) -> list[NodeRecord]:
        """A TERMINATED node in a RUNNING run was left behind by a stop/resume race: queue it again."""
        moved = []
        for node in nodes:
            if node.status is not N.TERMINATED or age_seconds(node.updated_at, now) <= stale_after:
                continue
            if store.transition_node(execution_id, node.node_id, node.seq, N.QUEUED, [N.TERMINATED]).won:
                moved.append(node)
        return moved

    @staticmethod
    def _checked_pending(
        store: RunStatePort,
        execution: ExecutionRecord,
        nodes: list[NodeRecord],
        stale_after: float,
        now: float,
        report: SweepReport,
    ) -> int:
        """`pending`, repaired to what the node items say when they disagree and the run has been quiet."""
        counted = sum(1 for n in nodes if n.status in UNFINISHED)
        pending = execution.pending
        quiet = (
            all(age_seconds(n.updated_at or n.queued_at, now) > stale_after for n in nodes)
            and age_seconds(execution.updated_at, now) > stale_after
        )
        if pending != counted and quiet:
            logger.error(
                "execution %s: pending is %d but %d node executions are unfinished; repairing",
                execution.execution_id,
                pending,
                counted,
            )
            if store.repair_pending(execution.execution_id, pending, counted):
                report.repaired += 1
                return counted
        return pending

    @staticmethod
    def _looks_lost(node: NodeRecord, stale_after: float, now: float) -> bool:
        """A QUEUED node nobody claimed for a while (a retry: for a while after it was due), or a RUNNING node whose
        worker's lease ran out."""
        if node.status is N.QUEUED:
            waited = min(age_seconds(node.updated_at or node.queued_at, now), now - node.due_at())
            return waited > stale_after
        return node.status is N.RUNNING and node.lease_until < now * 1000
