"""What a run looks like from outside: status, outputs, node executions and costs, as plain JSON-ready dicts.
The CLI prints it; the HTTP API returns it."""

from __future__ import annotations

import json
from typing import Any

from agentflow.blocks.registry import get_block
from agentflow.clock import epoch_of, iso_at
from agentflow.statuses import NodeStatus
from agentflow.store import NodeRecord, Store


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _seconds_between(start: str | None, end: str | None, now: float) -> float | None:
    """Seconds from `start` to `end`, or to `now` (the store's clock) while the run goes on."""
    if not start:
        return None
    return round((epoch_of(end) if end else now) - epoch_of(start), 3)


def node_stats(node: NodeRecord) -> dict[str, Any]:
    """Its LLM use (README, "Costs and budgets"): zeros and a null model for blocks that call no LLM."""
    stats = node.stats
    return {
        "llm_calls": int(stats.get("llm_calls", 0)),
        "llm_retries": int(stats.get("llm_retries", 0)),
        "input_tokens": int(stats.get("input_tokens", 0)),
        "output_tokens": int(stats.get("output_tokens", 0)),
        "cost_usd": float(stats.get("cost_usd", 0.0)),
        "model": stats.get("model"),
    }


def node_report(node: NodeRecord) -> dict[str, Any]:
    block = get_block(node.block_id)
    # still waiting for its inputs: show what has arrived so far
    inputs = _loads(node.inputs) if node.inputs is not None else node.delivered_values()
    outputs: dict[str, list[Any]] = {}
    for pin, value in _loads(node.outputs) or []:
        outputs.setdefault(pin, []).append(value)
    return {
        "node_id": node.node_id,
        "seq": node.seq,
        "block_id": node.block_id,
        "block_name": block.name() if block else None,
        "status": node.status.value,
        "attempts": node.attempts,
        "attempt_log": [dict(entry) for entry in node.attempt_log],
        "retry_at": iso_at(node.due_at()) if node.retry_at and node.status is NodeStatus.QUEUED else None,
        "inputs": inputs,
        "outputs": outputs,
        "error": node.error,
        "stats": node_stats(node),
        "child_execution_id": node.child_execution_id,
        "review_id": node.review_id,
        "queued_at": node.queued_at,
        "started_at": node.started_at,
        "ended_at": node.ended_at,
    }


def execution_report(store: Store, execution_id: str, output_names: list[str] | None = None) -> dict[str, Any] | None:
    """One consistent picture of a run; None when it does not exist. Reads are not counted in its stats."""
    run = store.load_run(execution_id)  # one query instead of one request per item kind
    if run is None:
        return None
    execution, stats = run.execution, run.stats
    nodes = sorted(run.nodes, key=lambda n: (n.queued_at or n.created_at or "", n.node_id, n.seq))
    outputs: dict[str, list[Any]] = {name: [] for name in output_names or []}
    for recorded in run.outputs:
        outputs.setdefault(recorded.name, []).append(_loads(recorded.value))
    return {
        "execution_id": execution_id,
        "graph_id": execution.graph_id,
        "graph_version": execution.graph_version,
        "status": execution.status.value,
        "inputs": _loads(run.inputs),
        "outputs": outputs,
        "error": execution.error,
        "parent_execution_id": execution.parent_execution_id,
        "parent_node_id": execution.parent_node_id,
        "depth": execution.depth,
        "created_at": execution.created_at,
        "started_at": execution.started_at,
        "ended_at": execution.ended_at,
        "nodes": [node_report(n) for n in nodes],
        "stats": {
            # node_count counts the reservations chains hold for their next steps (docs/architecture.md, "Chains")
            "node_executions": execution.node_count - sum(n.reserved for n in run.nodes),
            "duration_s": _seconds_between(execution.created_at, execution.ended_at, store.clock()),
            "dynamodb_requests": int(stats.get("dynamodb_requests", 0)),
            "dynamodb_write_units": float(stats.get("dynamodb_write_units", 0.0)),
            "dynamodb_read_units": float(stats.get("dynamodb_read_units", 0.0)),
            "events_published": int(stats.get("events_published", 0)),
            "lambda_invocations": int(stats.get("lambda_invocations", 0)),  # node executor invocations
            "llm_calls": int(execution.llm.get("llm_calls", 0)),
            "llm_input_tokens": int(execution.llm.get("llm_input_tokens", 0)),
            "llm_output_tokens": int(execution.llm.get("llm_output_tokens", 0)),
            "llm_cost_usd": round(execution.llm_cost_usd, 8),
        },
        "history": list(execution.history),
    }
