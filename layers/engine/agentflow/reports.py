"""What a run looks like from outside: status, outputs, node executions and costs, as plain JSON-ready dicts.
The CLI prints it; the HTTP API returns it."""

from __future__ import annotations

import json
from typing import Any

from agentflow import keys
from agentflow.blocks.registry import get_block
from agentflow.clock import epoch_of
from agentflow.store import Item, Store


def _loads(text: Any) -> Any:
    return json.loads(text) if isinstance(text, str) else text


def _seconds_between(start: str | None, end: str | None, now: float) -> float | None:
    """Seconds from `start` to `end`, or to `now` (the store's clock) while the run goes on."""
    if not start:
        return None
    return round((epoch_of(end) if end else now) - epoch_of(start), 3)


def node_report(item: Item) -> dict[str, Any]:
    block = get_block(str(item.get("block_id", "")))
    if "inputs" in item:
        inputs = _loads(item["inputs"])
    else:  # still waiting: show what has arrived so far
        inputs = {k[len(keys.PIN_VALUE) :]: _loads(v) for k, v in item.items() if k.startswith(keys.PIN_VALUE)}
    outputs: dict[str, list[Any]] = {}
    for pin, value in _loads(item.get("outputs")) or []:
        outputs.setdefault(pin, []).append(value)
    return {
        "node_id": item["node_id"],
        "seq": int(item["seq"]),
        "block_id": item.get("block_id"),
        "block_name": block.name() if block else None,
        "status": item["status"],
        "attempts": int(item.get("attempts", 0)),
        "inputs": inputs,
        "outputs": outputs,
        "error": item.get("error"),
        "queued_at": item.get("queued_at"),
        "started_at": item.get("started_at"),
        "ended_at": item.get("ended_at"),
    }


def execution_report(store: Store, execution_id: str, output_names: list[str] | None = None) -> dict[str, Any] | None:
    """One consistent picture of a run; None when it does not exist. Reads are not counted in its stats."""
    by_kind: dict[str, list[Item]] = {}
    for item in store.list_execution_items(execution_id):  # one query instead of one request per item kind
        by_kind.setdefault(str(item["SK"]).split("#", 1)[0], []).append(item)
    execution = next(iter(by_kind.get(keys.META, [])), None)
    if execution is None:
        return None
    nodes = sorted(
        by_kind.get(keys.node_prefix().rstrip("#"), []),
        key=lambda n: (n.get("queued_at") or n.get("created_at") or "", n["node_id"], int(n["seq"])),
    )
    stats = next(iter(by_kind.get(keys.STATS, [])), {})
    inputs = next(iter(by_kind.get(keys.INPUTS, [])), {}).get("inputs")
    outputs: dict[str, list[Any]] = {name: [] for name in output_names or []}
    recorded_outputs = sorted(
        by_kind.get(keys.OUTPUT_PREFIX.rstrip("#"), []), key=lambda i: (i["recorded_at"], i["SK"])
    )
    for recorded in recorded_outputs:
        outputs.setdefault(recorded["name"], []).append(_loads(recorded["value"]))
    return {
        "execution_id": execution_id,
        "graph_id": execution.get("graph_id"),
        "graph_version": execution.get("graph_version"),
        "status": execution["status"],
        "inputs": _loads(inputs),
        "outputs": outputs,
        "error": execution.get("error"),
        "created_at": execution.get("created_at"),
        "started_at": execution.get("started_at"),
        "ended_at": execution.get("ended_at"),
        "nodes": [node_report(n) for n in nodes],
        "stats": {
            "node_executions": int(execution.get("node_count", 0)),
            "duration_s": _seconds_between(execution.get("created_at"), execution.get("ended_at"), store.clock()),
            "dynamodb_requests": int(stats.get("dynamodb_requests", 0)),
            "dynamodb_write_units": float(stats.get("dynamodb_write_units", 0.0)),
            "dynamodb_read_units": float(stats.get("dynamodb_read_units", 0.0)),
            "events_published": int(stats.get("events_published", 0)),
        },
        "history": execution.get("history", []),
    }
