"""Chains run inline (docs/architecture.md, "Chains"): a worker that finishes a node whose propagation queued
exactly one child keeps that child's event instead of publishing it, and runs the child itself once the node has
finished, when it has time left to give the child the whole time limit a fresh invocation would give it.

Nothing about the child changes: it was queued by the same conditional write as ever, and the worker claims it by
the same conditional write a fresh delivery would, so a duplicate delivery still loses. A worker that dies with a
child held leaves a QUEUED node that was never published, which the sweeper publishes once it looks lost."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentflow.events import OutboundEvent


@dataclass
class InlineChain:
    """One worker's chain: the time it may still hold a lease for (seconds, from the handler) and the child it
    holds. Each child reads the run again, as a fresh delivery would: a run stopped since the child was queued
    terminates it before its block runs."""

    time_left: Callable[[], float]
    held: OutboundEvent | None = None
    steps: int = 0  # children run inline so far

    def has_room(self, time_limit: float) -> bool:
        """Whether a child with this time limit can run here as it would in a fresh invocation."""
        return self.time_left() >= time_limit

    def take(self) -> OutboundEvent | None:
        event, self.held = self.held, None
        if event is not None:
            self.steps += 1
        return event
