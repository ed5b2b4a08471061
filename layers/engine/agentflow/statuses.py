"""The status state machines of graph executions and node executions (docs/architecture.md, "The state machines").

These tables are the single source of truth: the store builds every status ConditionExpression from them,
and no other code writes a status attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class ExecutionStatus(StrEnum):
    INCOMPLETE = "INCOMPLETE"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"
    REVIEW = "REVIEW"  # paused: all that is left waits for a person's review (README, "Human review")


class NodeStatus(StrEnum):
    INCOMPLETE = "INCOMPLETE"  # waiting for inputs
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"
    WAITING = "WAITING"  # a sub-agent node (its child run goes on) or a review node (a person decides); no worker waits


class ReviewStatus(StrEnum):
    WAITING = "WAITING"
    APPROVED = "APPROVED"
    REJECTED = "REJECTED"


E = ExecutionStatus
N = NodeStatus
R = ReviewStatus

# RUNNING -> REVIEW when nothing is left but nodes waiting for a review; REVIEW -> RUNNING when one is decided.
# REVIEW -> FAILED is its timeout_seconds passing; REVIEW -> TERMINATED a stop (which rejects its reviews).
EXECUTION_TRANSITIONS: Mapping[ExecutionStatus, frozenset[ExecutionStatus]] = {
    E.INCOMPLETE: frozenset({E.QUEUED, E.RUNNING, E.FAILED, E.TERMINATED}),
    E.QUEUED: frozenset({E.RUNNING, E.FAILED, E.TERMINATED}),
    E.RUNNING: frozenset({E.COMPLETED, E.TERMINATED, E.FAILED, E.REVIEW}),
    E.REVIEW: frozenset({E.RUNNING, E.FAILED, E.TERMINATED}),
    E.TERMINATED: frozenset({E.RUNNING}),  # resume
    E.COMPLETED: frozenset(),
    E.FAILED: frozenset({E.RUNNING}),  # redrive only (executor/redrive.py): the failed nodes run again
}

# RUNNING -> RUNNING is the takeover of an expired lease; the store adds the lease guard to that source.
# RUNNING -> QUEUED is a retry: the attempt failed transiently and waits for its backoff (`schedule_retry`).
# RUNNING -> WAITING: a sub-agent node started its child run (`wait_for_child`), or a review node recorded its
# review (`wait_for_review`); the child's end, or the review's decision, wakes it.
NODE_TRANSITIONS: Mapping[NodeStatus, frozenset[NodeStatus]] = {
    N.INCOMPLETE: frozenset({N.QUEUED, N.TERMINATED}),
    N.QUEUED: frozenset({N.RUNNING, N.TERMINATED}),
    N.RUNNING: frozenset({N.RUNNING, N.QUEUED, N.WAITING, N.COMPLETED, N.FAILED, N.TERMINATED}),
    N.WAITING: frozenset({N.QUEUED, N.TERMINATED}),  # its child ended or its review was decided; or a stop
    N.TERMINATED: frozenset({N.QUEUED}),  # resume
    N.COMPLETED: frozenset(),
    N.FAILED: frozenset({N.QUEUED}),  # redrive only: its run was redriven
}

# A review is decided once: by a person, by its timeout, or by a stop of its run (a rejection).
REVIEW_TRANSITIONS: Mapping[ReviewStatus, frozenset[ReviewStatus]] = {
    R.WAITING: frozenset({R.APPROVED, R.REJECTED}),
    R.APPROVED: frozenset(),
    R.REJECTED: frozenset(),
}

# Ended: nothing but a redrive (of a FAILED run, and of its failed nodes) moves them on.
TERMINAL_EXECUTION_STATUSES = frozenset({E.COMPLETED, E.FAILED})
TERMINAL_NODE_STATUSES = frozenset({N.COMPLETED, N.FAILED})


def allowed_sources[S: StrEnum](table: Mapping[S, frozenset[S]], target: S) -> frozenset[S]:
    """Every status from which `target` may be reached in `table`."""
    return frozenset(source for source, targets in table.items() if target in targets)


def check_transition[S: StrEnum](table: Mapping[S, frozenset[S]], source: S, target: S) -> None:
    """Raise ValueError naming both statuses when `table` forbids source -> target."""
    if target not in table[source]:
        raise ValueError(f"status transition {source.value} -> {target.value} is not allowed")


def require_reachable[S: StrEnum](table: Mapping[S, frozenset[S]], target: S) -> frozenset[S]:
    """The allowed sources of `target`; a target no status may reach is a programming error."""
    sources = allowed_sources(table, target)
    if not sources:
        raise ValueError(f"status transition to {target.value} is not allowed from any status")
    return sources
