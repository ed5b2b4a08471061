"""Pending human reviews (README, "Human review")."""

from __future__ import annotations

from typing import Protocol

from agentflow.store.transitions import StatusWrites


class ReviewsPort(Protocol):
    """What the engine needs of the review items."""


class ReviewItems(StatusWrites):
    pass
