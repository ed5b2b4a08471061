"""The executor: start, claim, run, propagate, finish, finalize, stop, resume, sweep (docs/architecture.md,
"One execution, from trigger to finalize").

Every step is safe to repeat: events are delivered at least once, and a worker may die between any two writes.
  - a start with the same idempotency key finds the same execution; only the winner of INCOMPLETE -> QUEUED
    publishes the starting nodes;
  - a claim is a conditional write, so a duplicate event finds the node taken and returns quietly;
  - outputs are saved before they propagate, so a retry propagates the saved outputs instead of re-running (a pure
    block's are not: re-running it yields the same outputs);
  - a chain's single child may run in the same invocation (`inline`), claimed by the same conditional write;
  - each delivery records its id in the same write that assigns its slot, so a replay lands in the same slot;
  - a node finishes and `pending` drops in one transaction, after its children were counted in, so `pending`
    reaches 0 exactly when nothing is left, and whoever sees 0 finalizes (a conditional write again).
Nothing here knows whether it runs in Lambda or on the local stack.

The engine's parts are modules of this package, each a layer over the one before it: `base` (shared state and
the unit of work), `lifecycle` (finalize, retention, stop, resume), `propagation`, `accounting`, `gates`, `node`,
`start`, `admission`, `subagents`, `reviews`, `redrive`, `sweep`; `inline` holds a worker's chain.
"""

from __future__ import annotations

from agentflow.executor.base import GraphNotFound, NodeRunOutcome, StartResult, SweepReport, dumps
from agentflow.executor.sweep import Sweeping

__all__ = ["Engine", "GraphNotFound", "NodeRunOutcome", "StartResult", "SweepReport", "dumps"]


class Engine(Sweeping):
    """The whole engine over one store and one publisher (the `Engine` every handler runs)."""
