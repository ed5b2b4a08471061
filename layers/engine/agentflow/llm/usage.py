"""Token and cost accounting (README, "Costs and budgets"): what one node execution's LLM calls used, and the
run's budget. Every call adds the provider's usage figures; a node's figures are saved with its outputs and added
to its run's totals when it finishes (docs/architecture.md, "LLM calls")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentflow.errors import AgentflowError, InvalidInput


class BudgetExceeded(AgentflowError):
    """The run has used its budget: the node fails and so does the run, whatever its error pin says."""


@dataclass
class LlmUsage:
    """One node execution's LLM use. `model` is the last model called (None: no call)."""

    llm_calls: int = 0
    llm_retries: int = 0  # calls repeated within the node execution: an unusable answer, a prompt too long
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    model: str | None = None

    def add_call(self, model: str, input_tokens: int, output_tokens: int, cost_usd: float) -> None:
        self.llm_calls += 1
        self.input_tokens += max(input_tokens, 0)
        self.output_tokens += max(output_tokens, 0)
        self.cost_usd = round(self.cost_usd + cost_usd, 8)
        self.model = model

    def add(self, other: Mapping[str, Any]) -> None:
        """Add a saved usage (an earlier attempt's, or a sub-run's)."""
        self.llm_calls += int(other.get("llm_calls") or 0)
        self.llm_retries += int(other.get("llm_retries") or 0)
        self.input_tokens += int(other.get("input_tokens") or 0)
        self.output_tokens += int(other.get("output_tokens") or 0)
        self.cost_usd = round(self.cost_usd + float(other.get("cost_usd") or 0.0), 8)
        self.model = other.get("model") or self.model

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def is_empty(self) -> bool:
        return self.llm_calls == 0 and self.tokens == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "llm_calls": self.llm_calls,
            "llm_retries": self.llm_retries,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "model": self.model,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any] | None) -> LlmUsage:
        usage = LlmUsage()
        if data:
            usage.add(data)
        return usage


@dataclass(frozen=True)
class Budget:
    """A graph's `budget`: at most `max_tokens` (input + output) and/or `max_cost_usd` per run."""

    max_tokens: int | None = None
    max_cost_usd: float | None = None

    @staticmethod
    def parse(data: Any) -> Budget | None:
        """The graph field, checked; InvalidInput naming the bad key."""
        if data is None:
            return None
        if not isinstance(data, Mapping):
            raise InvalidInput('budget must be an object, e.g. {"max_tokens": 100000, "max_cost_usd": 1.5}')
        unknown = sorted(set(data) - {"max_tokens", "max_cost_usd"})
        if unknown:
            raise InvalidInput(f"budget: unknown key {unknown[0]!r} (keys: max_tokens, max_cost_usd)")
        tokens, cost = data.get("max_tokens"), data.get("max_cost_usd")
        if tokens is not None and (not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1):
            raise InvalidInput("budget.max_tokens must be a whole number of tokens, at least 1")
        if cost is not None and (not isinstance(cost, int | float) or isinstance(cost, bool) or cost <= 0):
            raise InvalidInput("budget.max_cost_usd must be a positive number of US dollars")
        if tokens is None and cost is None:
            raise InvalidInput("budget needs max_tokens, max_cost_usd or both")
        return Budget(tokens, None if cost is None else float(cost))

    def overrun(self, tokens: int, cost_usd: float) -> str | None:
        """Why a run that has used this much is over its budget, or None while it is within it."""
        if self.max_tokens is not None and tokens > self.max_tokens:
            return f"budget exceeded: the run used {tokens} LLM tokens; its budget is {self.max_tokens} (max_tokens)"
        if self.max_cost_usd is not None and cost_usd > self.max_cost_usd:
            return (
                f"budget exceeded: the run's LLM calls cost an estimated ${cost_usd:.6f}; its budget is "
                f"${self.max_cost_usd:g} (max_cost_usd)"
            )
        return None

    def exhausted(self, tokens: int, cost_usd: float) -> str | None:
        """Why no further call may start (the budget is used up), or None."""
        if self.max_tokens is not None and tokens >= self.max_tokens:
            return f"budget exceeded: the run has used {tokens} of its {self.max_tokens} LLM tokens (max_tokens)"
        if self.max_cost_usd is not None and cost_usd >= self.max_cost_usd:
            return (
                f"budget exceeded: the run has spent an estimated ${cost_usd:.6f} of its ${self.max_cost_usd:g} "
                "(max_cost_usd)"
            )
        return None
