"""Typed records: what the store hands upward instead of raw items, so the item layout (attribute names, pin-value
prefixes, sort keys) is known only inside the store. Each is built from an item by `from_item`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agentflow import keys
from agentflow.statuses import ExecutionStatus, NodeStatus

Item = dict[str, Any]
LLM_TOTALS = ("llm_calls", "llm_input_tokens", "llm_output_tokens", "llm_cost_usd")  # META counters of a run


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ExecutionRecord:
    """An execution's META item: its status, counters and history."""

    execution_id: str
    user_id: str
    graph_id: str
    graph_version: int
    status: ExecutionStatus
    pending: int = 0
    node_count: int = 0
    node_limit: int = 0
    failed_nodes: int = 0
    error: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    idempotency_pk: str | None = None  # the item of its Idempotency-Key, which expires with it
    deadline: float | None = None  # epoch seconds: the run fails if still going then (its graph's timeout_seconds)
    llm: Mapping[str, Any] = field(default_factory=dict)  # the run's LLM totals: llm_calls, llm_input_tokens, ...
    parent_execution_id: str | None = None  # a sub-agent run: the run, node and slot that started it
    parent_node_id: str | None = None
    parent_seq: int = 0
    depth: int = 0  # sub-agent levels below its top run
    failure: str | None = None  # why a FAILED run failed when no node did: node_limit, budget, timeout, ...
    redrives: int = 0  # how often it was redriven
    reviewing: int = 0  # node executions waiting for a review (counted in `pending` too)
    max_concurrent_runs: int | None = None  # its graph's cap (README, "Concurrency limits"); None: not capped
    awaiting_slot: bool = False  # QUEUED over its cap: its nodes go out once it is admitted

    @staticmethod
    def from_item(item: Mapping[str, Any]) -> ExecutionRecord:
        return ExecutionRecord(
            execution_id=str(item.get("execution_id") or str(item["PK"]).removeprefix("EXEC#")),
            user_id=str(item.get("user_id", "")),
            graph_id=str(item.get("graph_id", "")),
            graph_version=int(item.get("graph_version", 0)),
            status=ExecutionStatus(item["status"]),
            pending=int(item.get("pending", 0)),
            node_count=int(item.get("node_count", 0)),
            node_limit=int(item.get("node_limit", 0)),
            failed_nodes=int(item.get("failed_nodes", 0)),
            error=_opt_str(item.get("error")),
            created_at=_opt_str(item.get("created_at")),
            updated_at=_opt_str(item.get("updated_at")),
            started_at=_opt_str(item.get("started_at")),
            ended_at=_opt_str(item.get("ended_at")),
            history=tuple(item.get("history") or ()),
            idempotency_pk=_opt_str(item.get("idempotency_pk")),
            deadline=None if item.get("deadline") is None else float(item["deadline"]),
            llm={name: item[name] for name in LLM_TOTALS if name in item},
            parent_execution_id=_opt_str(item.get("parent_execution_id")),
            parent_node_id=_opt_str(item.get("parent_node_id")),
            parent_seq=int(item.get("parent_seq", 0)),
            depth=int(item.get("depth", 0)),
            failure=_opt_str(item.get("failure")),
            redrives=int(item.get("redrives", 0)),
            reviewing=int(item.get("reviewing", 0)),
            max_concurrent_runs=None if item.get("max_concurrent_runs") is None else int(item["max_concurrent_runs"]),
            awaiting_slot=bool(item.get("awaiting_slot", False)),
        )

    @property
    def llm_tokens(self) -> int:
        return int(self.llm.get("llm_input_tokens", 0)) + int(self.llm.get("llm_output_tokens", 0))

    @property
    def llm_cost_usd(self) -> float:
        return float(self.llm.get("llm_cost_usd", 0.0))


@dataclass(frozen=True)
class NodeRecord:
    """One node execution (a slot of a node): its status, its inputs once queued, its saved outputs."""

    node_id: str
    seq: int
    block_id: str
    status: NodeStatus
    attempts: int = 0
    inputs: str | None = None  # JSON, set when the slot is queued
    outputs: str | None = None  # JSON list of [pin, value], saved before they propagate
    error: str | None = None
    lease_until: int = 0  # epoch milliseconds
    created_at: str | None = None
    queued_at: str | None = None
    started_at: str | None = None
    ended_at: str | None = None
    updated_at: str | None = None
    delivered: Mapping[str, str] = field(default_factory=dict)  # pin -> JSON value, while the slot waits
    retry_at: int = 0  # epoch milliseconds: a retry waiting for its backoff may not be claimed before
    deferrals: int = 0  # runs that ended in a DeferredRun: claims that were not attempts
    attempt_log: tuple[Mapping[str, Any], ...] = ()  # one entry per finished attempt: number, error, when
    stats: Mapping[str, Any] = field(default_factory=dict)  # its LLM usage (agentflow.llm.usage), saved with outputs
    usage_counted: bool = False  # its usage is in the run's totals already (it was stopped after its block ran)
    child_execution_id: str | None = None  # a sub-agent node: the child run it started
    log_base: int = 0  # attempt_log entries before a redrive (their usage was counted): not this run's
    review_id: str | None = None  # a review node: the review it waits for (or waited for)
    reserved: int = 0  # node executions counted in for its chain's next steps (docs/architecture.md, "Chains")

    def due_at(self) -> float:
        """Epoch seconds from which this node may be claimed (0: at once)."""
        return self.retry_at / 1000

    def delivered_values(self) -> dict[str, Any]:
        return {pin: json.loads(value) for pin, value in self.delivered.items()}

    @staticmethod
    def from_item(item: Mapping[str, Any]) -> NodeRecord:
        node_id, seq = item.get("node_id"), item.get("seq")
        if node_id is None or seq is None:  # written without them: the sort key NODE#<node id>#<seq> has both
            node_id, _, seq = str(item["SK"]).removeprefix(keys.node_prefix()).rpartition("#")
        return NodeRecord(
            node_id=str(node_id),
            seq=int(seq),
            block_id=str(item.get("block_id", "")),
            status=NodeStatus(item["status"]),
            attempts=int(item.get("attempts", 0)),
            inputs=_opt_str(item.get("inputs")),
            outputs=_opt_str(item.get("outputs")),
            error=_opt_str(item.get("error")),
            lease_until=int(item.get("lease_until", 0)),
            created_at=_opt_str(item.get("created_at")),
            queued_at=_opt_str(item.get("queued_at")),
            started_at=_opt_str(item.get("started_at")),
            ended_at=_opt_str(item.get("ended_at")),
            updated_at=_opt_str(item.get("updated_at")),
            delivered={k[len(keys.PIN_VALUE) :]: str(v) for k, v in item.items() if k.startswith(keys.PIN_VALUE)},
            retry_at=int(item.get("retry_at", 0)),
            deferrals=int(item.get("deferrals", 0)),
            attempt_log=tuple(item.get("attempt_log") or ()),
            stats=dict(item.get("stats") or {}),
            usage_counted=bool(item.get("usage_counted", False)),
            child_execution_id=_opt_str(item.get("child_execution_id")),
            log_base=int(item.get("log_base", 0)),
            review_id=_opt_str(item.get("review_id")),
            reserved=int(item.get("reserved", 0)),
        )


@dataclass(frozen=True)
class PinsRecord:
    """A node's delivery bookkeeping: deliveries per pin so far, and the latest value of each static pin."""

    counters: Mapping[str, int] = field(default_factory=dict)
    statics: Mapping[str, str] = field(default_factory=dict)  # pin -> JSON value

    @staticmethod
    def from_item(item: Mapping[str, Any] | None) -> PinsRecord:
        item = item or {}
        return PinsRecord(
            counters={k[len(keys.COUNTER) :]: int(v) for k, v in item.items() if k.startswith(keys.COUNTER)},
            statics={k[len(keys.STATIC) :]: str(v) for k, v in item.items() if k.startswith(keys.STATIC)},
        )


@dataclass(frozen=True)
class GraphHead:
    """A graph: its name and which of its immutable versions is the latest and the active one."""

    graph_id: str
    name: str
    latest_version: int
    active_version: int
    created_at: str | None = None
    updated_at: str | None = None

    @staticmethod
    def from_item(item: Mapping[str, Any]) -> GraphHead:
        return GraphHead(
            graph_id=str(item["graph_id"]),
            name=str(item.get("name", "")),
            latest_version=int(item["latest_version"]),
            active_version=int(item["active_version"]),
            created_at=_opt_str(item.get("created_at")),
            updated_at=_opt_str(item.get("updated_at")),
        )


@dataclass(frozen=True)
class GraphVersion:
    graph_id: str
    version: int
    created_at: str | None = None


@dataclass(frozen=True)
class RecordedOutput:
    """One value a graph output node recorded."""

    name: str
    value: str  # JSON
    recorded_at: str
    node_id: str
    seq: int

    @classmethod
    def from_node_item(cls, item: Mapping[str, Any]) -> RecordedOutput | None:
        """The output an output node's item records (its finish marks it with `output_name` and `recorded_at`),
        or None. The value is the node's input `value`, kept once, on the item's `inputs`."""
        if "recorded_at" not in item:
            return None
        value = json.loads(str(item.get("inputs") or "{}")).get("value")
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
        return cls(str(item["output_name"]), text, str(item["recorded_at"]), str(item["node_id"]), int(item["seq"]))

    @classmethod
    def from_output_item(cls, item: Mapping[str, Any]) -> RecordedOutput:
        """An `OUT#` item, the layout of runs recorded before outputs were marked on their node items."""
        return cls(
            str(item["name"]), str(item["value"]), str(item["recorded_at"]), str(item["node_id"]), int(item["seq"])
        )


def ended_node_fields(now: str) -> Item:
    """What a node execution that ended after one attempt at `now` has on its item besides its node, slot, block,
    inputs and outputs: COMPLETED, as its own finish would have left it (an output node its sender ran, an input
    run at the start)."""
    item: Item = {"status": NodeStatus.COMPLETED.value, "attempts": 1, "error": None}
    item["attempt_log"] = [{"attempt": 1, "error": None, "ended_at": now}]
    return item | {key: now for key in ("created_at", "queued_at", "started_at", "ended_at", "updated_at")}


def node_executions_in(item: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The node executions a NODE item holds, each in the layout of a NODE item: its own, and that of an output node
    its sender ran, which the sender's item carries (docs/architecture.md, "Output nodes run by their sender")."""
    carried = item.get(keys.CARRIED_OUTPUT)
    return [item] if not carried else [item, carried]


def in_recorded_order(outputs: Iterable[RecordedOutput]) -> list[RecordedOutput]:
    return sorted(outputs, key=lambda o: (o.recorded_at, o.node_id, o.seq))


@dataclass(frozen=True)
class RunSnapshot:
    """Every item of one run, read in one query, sorted by kind."""

    execution: ExecutionRecord
    nodes: list[NodeRecord]
    stats: Mapping[str, Any]
    inputs: str | None  # JSON
    outputs: list[RecordedOutput]  # in the order they were recorded


@dataclass(frozen=True)
class ExecutionPage:
    executions: list[ExecutionRecord]
    cursor: str | None  # opaque: pass it back for the next page; None on the last page
