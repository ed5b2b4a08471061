"""Concurrency limits (README, "Concurrency limits"; docs/architecture.md, "Concurrency limits"): a cap on the runs
of one graph of one user that go at once, the graph's `max_concurrent_runs` else the setting
`AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH` (AutoGPT's 25), stored on the run's META at its start. A run over the cap
waits QUEUED and starts, oldest first, when a slot frees. Sub-agent runs are exempt: they go under their parent's
slot (a cap on the child's graph could deadlock a parent waiting for its child).

Slots are taken and given back by conditional writes on one item per (user, graph) (`agentflow.store.slots`):

  - start: the slot is taken before INCOMPLETE -> QUEUED, so a run is never QUEUED with its nodes out and no slot.
    A crash between the two leaves an INCOMPLETE holder, which the sweeper starts again (the take repeats as a
    no-op). Over the cap, or while others wait (they go first), the run goes QUEUED waiting instead (one
    transaction), then the oldest waiters are tried once (a slot may have freed meanwhile, and its give-back may
    not have seen this run yet);
  - give-back: when a run ends or stops, then the oldest waiters are admitted while slots are free. The give-back of
    a stopped or failed run is conditional on that status, so a resume or redrive that won meanwhile keeps it;
  - the sweeper reconciles: a holder that no longer holds (stopped, ended, gone) is given back, and waiters are
    admitted wherever a slot is free (a give-back that died, or a wake-up the eventually consistent GSI1 hid).
"""

from __future__ import annotations

import logging

from agentflow.clock import iso_at
from agentflow.executor.base import SweepReport
from agentflow.executor.start import Starting
from agentflow.statuses import ExecutionStatus
from agentflow.store import ExecutionRecord, RunStatePort
from agentflow.store.slots import AdmitOutcome, SlotRecord

logger = logging.getLogger(__name__)

E = ExecutionStatus
SLOT_IDLE_SECONDS = 3600  # a slot item nobody used for this long is dropped by the sweeper (store/slots.py)
# The statuses in which a run keeps its slot: starting (the take comes first), waiting for its nodes, running, or
# paused for a person's review (REVIEW, compared as text). Anything else has given it back.
HOLDING = frozenset({"INCOMPLETE", "QUEUED", "RUNNING", "REVIEW"})


def holds_slot(status: ExecutionStatus | str) -> bool:
    return str(status) in HOLDING


class Admission(Starting):
    def _publish_start(self, store: RunStatePort, execution_id: str, execution: ExecutionRecord | None = None) -> None:
        """INCOMPLETE -> QUEUED once a slot is taken, and its nodes out; over the cap, QUEUED waiting for a slot."""
        run = execution if execution is not None else store.get_execution(execution_id)
        cap = None if run is None else run.max_concurrent_runs
        if run is None or cap is None:  # a sub-agent run, or one started before concurrency limits existed
            super()._publish_start(store, execution_id, run)
            return
        if run.status is not E.INCOMPLETE:
            return  # started already: this is a repeat (an idempotency key, the sweeper)
        if store.take_slot(run.user_id, run.graph_id, execution_id, cap, behind_waiters=True):
            moved = store.transition_execution(execution_id, E.QUEUED, [E.INCOMPLETE])
            if moved.won:
                self._publish_nodes(store, execution_id, [self._status_event(moved)])
            elif moved.item is not None and not holds_slot(moved.item.status):
                self._release_slot(store, moved.item)  # stopped before it started
            return
        waiting = store.wait_for_slot(run)
        if waiting.won:
            self._publish(store, [self._status_event(waiting)])
            self._admit_waiting(store, run.user_id, run.graph_id, also=execution_id)

    def _admit_waiting(self, store: RunStatePort, user_id: str, graph_id: str, also: str | None = None) -> int:
        """Admit the waiting runs of (user, graph), oldest first, while slots are free; each admitted run's nodes go
        out. `also`: a run that just began to wait, tried even when GSI1 does not list it yet. Returns how many."""
        admitted, listed = 0, False
        for execution_id in store.iter_waiting(user_id, graph_id):
            listed = listed or execution_id == also
            outcome = store.admit_waiting(execution_id)
            if outcome is AdmitOutcome.FULL:
                return admitted
            if outcome is AdmitOutcome.ADMITTED:
                admitted += 1
                self._start_admitted(execution_id)
        if also is not None and not listed and store.admit_waiting(also) is AdmitOutcome.ADMITTED:
            admitted += 1
            self._start_admitted(also)
        return admitted

    def _start_admitted(self, execution_id: str) -> None:
        """An admitted run's starting nodes go out (its own unit of work: its STATS count them). A crash before
        leaves them QUEUED, and the sweeper publishes them."""
        with self._unit(execution_id) as unit:
            self._publish_nodes(unit.store, execution_id)

    def _release_slot(self, store: RunStatePort, execution: ExecutionRecord) -> None:
        """A run stopped or ended: it gives back its slot (or stops waiting for one), and waiting runs start."""
        if execution.max_concurrent_runs is None or holds_slot(execution.status):
            return  # exempt, or going again (a resume or redrive won meanwhile)
        if execution.awaiting_slot:
            store.cancel_wait(execution)
        # COMPLETED is final; a stopped or failed run may be resumed or redriven meanwhile, and then keeps its slot
        while_status = None if execution.status is E.COMPLETED else execution.status.value
        released = store.release_slot(execution.user_id, execution.graph_id, execution.execution_id, while_status)
        if released.released and released.waiting > 0:
            self._admit_waiting(store, execution.user_id, execution.graph_id)

    def _sweep_slots(self, report: SweepReport) -> None:
        """Give back the slots of runs that stopped or ended without giving them back (their worker died), drop
        slot items nobody uses, and admit waiting runs wherever a slot is free."""
        store = self.store
        idle_since = iso_at(store.clock() - SLOT_IDLE_SECONDS)
        for slot in store.list_slots():
            report.slots_released += self._reconcile(store, slot)
            if slot.waiting > 0:
                report.admitted += self._admit_waiting(store, slot.user_id, slot.graph_id)
            elif not slot.holders and (slot.released_at or "") <= idle_since:
                # idle as read (a refused delete would bill a write each sweep); the delete checks it again
                store.drop_empty_slot(slot.user_id, slot.graph_id, idle_since)

    @staticmethod
    def _reconcile(store: RunStatePort, slot: SlotRecord) -> int:
        """Give back each slot whose holder no longer holds it; returns how many."""
        released = 0
        for execution_id in sorted(slot.holders):
            run = store.get_execution(execution_id)
            if run is not None and holds_slot(run.status):
                continue
            # gone, or COMPLETED: for good; stopped or failed: only while it stays so (a resume or redrive keeps it)
            while_status = None if run is None or run.status is E.COMPLETED else run.status.value
            if store.release_slot(slot.user_id, slot.graph_id, execution_id, while_status).released:
                logger.warning(
                    "execution %s held a slot of graph %s while %s; given back",
                    execution_id,
                    slot.graph_id,
                    "gone" if run is None else run.status.value,
                )
                released += 1
        return released
