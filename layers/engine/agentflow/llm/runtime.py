"""What the engine hands an AI block for its LLM calls (`BlockContext.llm`). Light on purpose: the engine imports
it for every node, the provider SDKs only when a call is made."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agentflow.llm.settings import LlmSettings
from agentflow.llm.types import ChatProvider
from agentflow.llm.usage import Budget, BudgetExceeded, LlmUsage


@dataclass
class LlmRuntime:
    """What the engine hands an AI block for its LLM calls (`BlockContext.llm`): settings, the node's usage so far,
    the run's budget and what the run had used before this node, and the per-call timeout."""

    settings: LlmSettings = field(default_factory=LlmSettings)
    usage: LlmUsage = field(default_factory=LlmUsage)
    budget: Budget | None = None
    spent_tokens: int = 0  # the run's, before this node execution
    spent_cost_usd: float = 0.0
    timeout: float = 600.0
    providers: Mapping[str, ChatProvider] | None = None  # "openai" / "anthropic" -> adapter (tests may swap one)

    def check_budget(self) -> None:
        if self.budget is None:
            return
        reason = self.budget.exhausted(self.spent_tokens + self.usage.tokens, self.spent_cost_usd + self.usage.cost_usd)
        if reason is not None:
            raise BudgetExceeded(reason)
