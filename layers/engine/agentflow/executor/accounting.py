"""LLM accounting around a node execution (README, "Costs and budgets"; docs/architecture.md, "LLM calls"):
what an AI block is handed for its calls, the node's usage over its attempts, and the run's budget."""

from __future__ import annotations

from typing import Any

from agentflow.blocks.execution import BlockRun
from agentflow.executor.propagation import Propagation
from agentflow.graph import ValidGraph
from agentflow.llm.runtime import LlmRuntime
from agentflow.llm.usage import LlmUsage
from agentflow.store import ExecutionRecord, NodeRecord, RunStatePort


class Accounting(Propagation):
    def _llm_runtime(self, execution: ExecutionRecord, graph: ValidGraph, timeout: float) -> LlmRuntime:
        """What an AI block's calls need: the settings, the run's budget and what the run used so far."""
        return LlmRuntime(
            settings=self.settings.llm,
            budget=graph.budget,
            spent_tokens=execution.llm_tokens,
            spent_cost_usd=execution.llm_cost_usd,
            timeout=timeout,
        )

    @staticmethod
    def _over_budget(
        execution: ExecutionRecord, graph: ValidGraph, usage: dict[str, Any] | None, refused: str | None
    ) -> str | None:
        """Why the run is past its budget (README, "Costs and budgets") with this node's usage: a call it refused,
        or the run's totals as this node found them plus its own. None within the budget."""
        if refused is not None or graph.budget is None or not usage:
            return refused
        tokens = execution.llm_tokens + int(usage.get("input_tokens", 0)) + int(usage.get("output_tokens", 0))
        return graph.budget.overrun(tokens, execution.llm_cost_usd + float(usage.get("cost_usd", 0.0)))

    def _check_budget(self, store: RunStatePort, execution_id: str, graph: ValidGraph) -> None:
        """After nodes that ran at the same time finished: their usage together may take the run past its budget."""
        execution = store.get_execution(execution_id)  # the totals as of this node's finish
        assert graph.budget is not None
        if execution is not None and (reason := graph.budget.overrun(execution.llm_tokens, execution.llm_cost_usd)):
            self._fail_run(store, execution_id, reason, "budget")


def node_usage(node: NodeRecord, run: BlockRun) -> dict[str, Any] | None:
    """The node execution's LLM usage: its failed attempts' (logged with them) and this run's; None if none."""
    total = LlmUsage()
    for entry in node.attempt_log[node.log_base :]:  # a redriven node's earlier attempts were counted
        total.add(entry.get("llm") or {})
    total.add(run.usage or {})
    return None if total.is_empty() else total.to_dict()
