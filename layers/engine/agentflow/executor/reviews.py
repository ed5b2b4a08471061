"""Human review (README, "Human review"; docs/architecture.md, "Human review"). A HumanInTheLoopBlock node records
a review of its `data` (once, whatever the deliveries) and waits: RUNNING -> WAITING, with its run's `reviewing`
count + 1. When nothing else of the run is left, the run goes RUNNING -> REVIEW. A decision (a person's, the review's
timeout, or a stop of the run) is one conditional write on the review, so exactly one of them lands; the winner
wakes the node (WAITING -> QUEUED, `reviewing` - 1, REVIEW -> RUNNING) and the node's next run yields the decision.
The sweeper decides reviews past their timeout and wakes nodes whose decider died before waking them."""

from __future__ import annotations

import json
import logging
from typing import Any

from agentflow import keys
from agentflow.blocks.execution import ERROR_PIN, BlockInputError, BlockRun, build_input
from agentflow.blocks.human_in_the_loop import LEGACY_OUTPUTS, HumanInTheLoopBlock, review_outputs
from agentflow.errors import Conflict, NotFound
from agentflow.events import OutboundEvent
from agentflow.executor.base import dumps
from agentflow.executor.subagents import SubAgents
from agentflow.graph import ValidGraph
from agentflow.pins import base_name
from agentflow.statuses import ExecutionStatus, NodeStatus, ReviewStatus
from agentflow.store import ExecutionRecord, NodeRecord, RunStatePort
from agentflow.store.reviews import DecidedBy, Decision, ReviewRecord

logger = logging.getLogger(__name__)

E = ExecutionStatus
N = NodeStatus
R = ReviewStatus
MAX_MESSAGE_CHARS = 2000  # AutoGPT's limit on a reviewer's message
MAX_REVIEWED_BYTES = 100_000  # an edit travels in the review item and in the node's outputs (400 KB items)
STOPPED = "Execution was stopped by user"  # AutoGPT's words for the reviews a stop rejects
RUN_ENDED = "the run ended before the review was decided"
UNCHANGED: Any = object()  # no reviewed_data given (null is a value a reviewer may set)


class ReviewConflict(Conflict):
    """A decision that cannot land: the review was decided already, timed out, or its run is not going on.
    `review` is its current state, `execution_status` its run's."""

    def __init__(self, message: str, review: ReviewRecord, execution_status: str | None) -> None:
        super().__init__(message)
        self.review = review
        self.execution_status = execution_status


class InvalidDecision(ValueError):
    """A decision the review cannot take (an edit of a review that is not editable, a message too long)."""


def _timeout_message(review: ReviewRecord) -> str:
    how = "approved" if review.on_timeout == "approve" else "rejected"
    return f"the review timed out after its timeout_seconds: {how} by its block"


class Reviews(SubAgents):
    # -- the node

    def _review_run(
        self, store: RunStatePort, execution: ExecutionRecord, graph: ValidGraph, node: NodeRecord
    ) -> BlockRun | None:
        """The node's result once its review is decided; None when it now waits for the decision (WAITING)."""
        try:
            data = build_input(graph.block(node.node_id), json.loads(node.inputs or "{}"))
        except BlockInputError as exc:
            return BlockRun([(ERROR_PIN, str(exc))], str(exc))
        assert isinstance(data, HumanInTheLoopBlock.Input)
        review_id = keys.review_id(execution.execution_id, node.node_id, node.seq)
        review = store.get_review(review_id)
        if review is None:
            now = store.clock()
            review = store.create_review(
                ReviewRecord(
                    review_id=review_id,
                    user_id=execution.user_id,
                    execution_id=execution.execution_id,
                    graph_id=execution.graph_id,
                    graph_version=execution.graph_version,
                    node_id=node.node_id,
                    seq=node.seq,
                    payload=dumps(data.data),
                    instructions=data.name,
                    editable=data.editable,
                    status=R.WAITING,
                    timeout_at=None if data.timeout_seconds is None else now + data.timeout_seconds,
                    on_timeout=data.on_timeout,
                )
            )
        if review.status is not R.WAITING:
            return self._decided(graph, node, review)
        if not store.wait_for_review(execution.execution_id, node.node_id, node.seq, node.attempts, review_id):
            return None  # our lease was taken over: the other worker carries on
        again = store.get_review(review_id)  # decided before we waited: its waker found us RUNNING
        if again is not None and again.status is not R.WAITING:
            self._wake_review(store, again)
        else:
            self._maybe_finalize(store, execution.execution_id)  # maybe nothing else is left: REVIEW
        return None

    @staticmethod
    def _decided(graph: ValidGraph, node: NodeRecord, review: ReviewRecord) -> BlockRun:
        linked = frozenset(base_name(link.source_name) for _, link in graph.links_from[node.node_id])
        approved = review.status is R.APPROVED
        return BlockRun(review_outputs(approved, review.data, review.review_message, linked & LEGACY_OUTPUTS), None)

    def _wake_review(self, store: RunStatePort, review: ReviewRecord) -> bool:
        """A decided review's node goes back in the queue (WAITING -> QUEUED), its run back to RUNNING if it was
        in REVIEW, before the node's event is published (so its claim finds the run going). One waker wins."""
        eid, node_id, seq = review.execution_id, review.node_id, review.seq
        if not store.end_review_wait(eid, node_id, seq, N.QUEUED):
            return False
        events = []
        moved = store.transition_execution(eid, E.RUNNING, [E.REVIEW], require_unreviewed_work=True)
        if moved.won:
            events.append(self._status_event(moved))
        self._publish(store, [*events, OutboundEvent.node_queued(eid, node_id, seq)])
        return True

    # -- the API

    def list_reviews(self, user_id: str, limit: int = 50) -> list[ReviewRecord]:
        """The user's WAITING reviews, newest first."""
        return self.store.list_waiting_reviews(user_id, limit)

    def get_review(self, user_id: str, review_id: str) -> ReviewRecord:
        review = self.store.get_review(review_id) if "_" in review_id else None
        if review is None or review.user_id != user_id:
            raise NotFound(f"review {review_id!r} not found")
        return review

    def decide_review(
        self, user_id: str, review_id: str, approved: bool, reviewed_data: Any = UNCHANGED, message: str | None = None
    ) -> ReviewRecord:
        """A person's decision, with the data edited when `reviewed_data` is given and differs. Raises NotFound,
        InvalidDecision, or ReviewConflict (decided already, past its timeout, or its run is not going on)."""
        review = self.get_review(user_id, review_id)
        message = (message or "").strip() or None
        if message is not None and len(message) > MAX_MESSAGE_CHARS:
            raise InvalidDecision(f"message is {len(message)} characters; the limit is {MAX_MESSAGE_CHARS}")
        edited = None
        if reviewed_data is not UNCHANGED:
            edited = dumps(reviewed_data)
            if len(edited.encode()) > MAX_REVIEWED_BYTES:
                raise InvalidDecision(
                    f"reviewed_data is {len(edited.encode())} bytes; the limit is {MAX_REVIEWED_BYTES}"
                )
            if json.loads(edited) == json.loads(review.payload):
                edited = None  # unchanged: not an edit
            elif not review.editable:
                raise InvalidDecision("this review is not editable: reviewed_data may not change the data")
        with self._unit(review.execution_id) as unit:
            store = unit.store
            now = store.clock()
            if review.status is R.WAITING and review.timeout_at is not None and now >= review.timeout_at:
                self._time_out_review(store, review, now)  # its timeout decides, as the sweeper would
                raise self._conflict(store, review_id, "the review timed out before this decision")
            decision = Decision(R.APPROVED if approved else R.REJECTED, message, edited)
            if not store.decide_review(review_id, decision, now, "person"):
                raise self._conflict(store, review_id, "the review cannot be decided")
            decided = store.get_review(review_id) or review
            self._wake_review(store, decided)
            return decided

    def _conflict(self, store: RunStatePort, review_id: str, why: str) -> ReviewConflict:
        review = store.get_review(review_id)
        assert review is not None
        execution = store.get_execution(review.execution_id)
        status = None if execution is None else execution.status.value
        if review.status is not R.WAITING:
            how = "by its timeout" if review.timed_out else "already"
            message = f"{why}: it was {review.status.value} {how}"
        else:
            message = f"{why}: its run is {status}"
        return ReviewConflict(message, review, status)

    # -- decisions without a person

    def _time_out_review(self, store: RunStatePort, review: ReviewRecord, now: float) -> bool:
        status = R.APPROVED if review.on_timeout == "approve" else R.REJECTED
        decided = self._decide(store, review, Decision(status, _timeout_message(review), None, True), now, "timeout")
        return decided

    def _decide(self, store: RunStatePort, review: ReviewRecord, decision: Decision, now: float, by: DecidedBy) -> bool:
        if not store.decide_review(review.review_id, decision, now, by):
            return False
        if by != "stop":  # a stop's node is TERMINATED instead (`_stop_waiting`)
            self._wake_review(store, review)
        return True

    def _stop_waiting(self, store: RunStatePort, execution_id: str, node: NodeRecord, stopped: bool) -> None:
        """A stopped (or failed) run's waiting review is rejected (as AutoGPT's stop does) and its node TERMINATED
        (a resume runs it again: it yields the rejection). Other waiting nodes are sub-agents'."""
        if node.review_id is None:
            super()._stop_waiting(store, execution_id, node, stopped)
            return
        review = store.get_review(node.review_id)
        if review is not None and review.status is R.WAITING:
            self._decide(store, review, Decision(R.REJECTED, STOPPED if stopped else RUN_ENDED), store.clock(), "stop")
        store.end_review_wait(execution_id, node.node_id, node.seq, N.TERMINATED)

    def _sweep_reviews(
        self, store: RunStatePort, execution: ExecutionRecord, nodes: list[NodeRecord], now: float
    ) -> int:
        """Decide the reviews past their timeout, wake the nodes whose review was decided without waking them, and
        put the run's status right (REVIEW with work to do, or RUNNING with nothing but reviews). Returns the
        reviews the timeout decided."""
        timed_out = 0
        for node in nodes:
            if node.status is not N.WAITING or node.review_id is None:
                continue
            review = store.get_review(node.review_id)
            if review is None:
                continue
            if review.status is R.WAITING and review.timeout_at is not None and now >= review.timeout_at:
                timed_out += self._time_out_review(store, review, now)
            elif review.status is not R.WAITING:
                self._wake_review(store, review)
        if execution.status is not E.REVIEW and not execution.reviewing:
            return timed_out
        current = store.get_execution(execution.execution_id)  # the decisions above may have moved it
        if current is not None and current.status is E.REVIEW and current.pending > current.reviewing:
            moved = store.transition_execution(
                current.execution_id, E.RUNNING, [E.REVIEW], require_unreviewed_work=True
            )
            if moved.won:
                self._publish(store, [self._status_event(moved)])
        elif current is not None and current.status is E.RUNNING and current.reviewing:
            self._maybe_finalize(store, current.execution_id)  # paused by nobody: its last worker died first
        return timed_out
