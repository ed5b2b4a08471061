"""Chains run inline (docs/architecture.md, "Chains"): a worker that finishes a node whose propagation queued
exactly one child keeps that child's event instead of publishing it, and runs the child itself once the node has
finished, when it has time left to give the child the whole time limit a fresh invocation would give it.

A child the worker queued by an ordinary write, the worker claims by the same conditional write a fresh delivery
would, so a duplicate delivery still loses; a worker that dies with it held leaves a QUEUED node that was never
published, which the sweeper publishes once it looks lost. A child whose slot the node's finish creates (a direct
delivery) is created claimed by the worker instead, in that same conditional transaction (`claimed`): nobody else
can have it, and a worker that dies with it leaves a RUNNING node whose lease, a fresh invocation's, expires and
is taken over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentflow.events import OutboundEvent
from agentflow.store import NodeRecord


@dataclass
class InlineChain:
    """One worker's chain: the time it may still hold a lease for (seconds, from the handler) and the child it
    holds. Each child reads the run again, as a fresh delivery would: a run stopped since the child was queued
    terminates it before its block runs."""

    time_left: Callable[[], float]
    held: OutboundEvent | None = None
    steps: int = 0  # children run inline so far (an output node run by its sender's worker too: executor/outputs.py)
    claimed: NodeRecord | None = None  # the held child, when it was created claimed for this worker
    lease_seconds: float | None = None  # that claim's lease

    def has_room(self, time_limit: float) -> bool:
        """Whether a child with this time limit can run here as it would in a fresh invocation."""
        return self.time_left() >= time_limit

    def take(self) -> tuple[OutboundEvent, NodeRecord | None, float | None] | None:
        """The held child, with its claim when it was created claimed (else the worker claims it now)."""
        event, claimed, lease = self.held, self.claimed, self.lease_seconds
        self.held, self.claimed, self.lease_seconds = None, None, None
        if event is None:
            return None
        self.steps += 1
        return event, claimed, lease
