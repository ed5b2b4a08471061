"""Run slots of the concurrency limits (README, "Concurrency limits")."""

from __future__ import annotations

from typing import Protocol

from agentflow.store.transitions import StatusWrites


class SlotsPort(Protocol):
    """What the engine needs of the slot items."""


class Slots(StatusWrites):
    pass
