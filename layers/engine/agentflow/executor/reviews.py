"""Human review (README, "Human review")."""

from __future__ import annotations

from agentflow.executor.subagents import SubAgents


class Reviews(SubAgents):
    pass
