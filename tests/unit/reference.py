"""A small sequential reference interpreter for agent graphs: no DynamoDB, no events, no leases, no retries.

It runs a graph the way README "Concepts" and "How a run executes" describe it, with plain Python state:
  - the starting nodes are the input blocks and the nodes no link feeds (notes never run); an input block's
    `value` is replaced by the run's input of the same name;
  - each input pin of a node is a FIFO: the k-th value delivered to a pin fills the node's k-th execution
    (slot k), creating it if needed; a value for a slot that already ran is dropped from that slot;
  - a pin fed by a static link also keeps the latest value delivered through a static link; a slot that lacks
    such a pin takes that latest value, including slots already waiting when it arrives;
  - a slot runs once every linked pin has a value; its data is `{**input_default, **pin values}`;
  - a block runs through `agentflow.blocks.execution.execute_block`, the same function the engine calls, and
    every yielded `(pin, value)` goes down every link whose `source_name` is exactly that pin (the generated
    graphs use exact pin names only: no selectors);
  - values travel as JSON, as in the engine's store;
  - an AgentOutputBlock execution that succeeds records its input `value` under its `name`;
  - the run is FAILED when a node failed and nothing is linked to that node's `error` pin, else COMPLETED.

The only freedom is the order in which ready slots run: `order="fifo"` or `"lifo"`. For graphs whose result
does not depend on that order, both give the same run; the property test checks that for every generated graph.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from agentflow.blocks.execution import execute_block
from agentflow.blocks.registry import get_block
from agentflow.blocks.sdk import Block, BlockContext, BlockType

__all__ = ["ReferenceRun", "Slot", "run_reference"]

INCOMPLETE, QUEUED, COMPLETED, FAILED = "INCOMPLETE", "QUEUED", "COMPLETED", "FAILED"


def _json(value: Any) -> Any:
    """The value as it comes back from the engine's store (JSON text, no NaN)."""
    return json.loads(json.dumps(value, separators=(",", ":"), allow_nan=False))


@dataclass
class Slot:
    """One execution of one node: the values its pins received, and once it ran, what it did."""

    pins: dict[str, Any] = field(default_factory=dict)
    status: str = INCOMPLETE
    inputs: dict[str, Any] | None = None  # the data the block ran with, once queued
    outputs: list[tuple[str, Any]] = field(default_factory=list)
    error: str | None = None
    backfilled: frozenset[str] = frozenset()  # pins filled from a static link's latest value


@dataclass(frozen=True)
class _Link:
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    static: bool


@dataclass
class _NodeState:
    slots: list[Slot] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)  # values delivered so far, per pin
    latest: dict[str, Any] = field(default_factory=dict)  # latest value of each static pin


@dataclass
class ReferenceRun:
    status: str
    outputs: dict[str, list[Any]]  # per graph output name, values in the order they were recorded
    nodes: dict[str, list[Slot]]  # per node id, its executions by slot

    def executions(self, node_id: str) -> int:
        return sum(1 for slot in self.nodes[node_id] if slot.status != INCOMPLETE)


def run_reference(
    graph: dict[str, Any],
    inputs: dict[str, Any],
    order: Literal["fifo", "lifo"] = "fifo",
    max_executions: int = 1_000,
) -> ReferenceRun:
    """Run `graph` (AutoGPT export format, block ids or names) with `inputs`, one node execution at a time."""
    nodes: dict[str, dict[str, Any]] = {n["id"]: n for n in graph["nodes"]}
    blocks: dict[str, type[Block]] = {}
    for node_id, node in nodes.items():
        block = get_block(node["block_id"])
        assert block is not None, f"unknown block {node['block_id']!r}"
        blocks[node_id] = block
    links = [
        _Link(
            source_id=raw["source_id"],
            source_name=raw["source_name"],
            sink_id=raw["sink_id"],
            sink_name=raw["sink_name"],
            # Links from static-output blocks (Input, Output, StoreValue) are static whatever they say.
            static=bool(raw.get("is_static")) or blocks[raw["source_id"]].static_output,
        )
        for raw in graph["links"]
    ]
    links_from: dict[str, list[_Link]] = {n: [lk for lk in links if lk.source_id == n] for n in nodes}
    linked_pins = {n: {lk.sink_name for lk in links if lk.sink_id == n} for n in nodes}
    static_pins = {n: {lk.sink_name for lk in links if lk.sink_id == n and lk.static} for n in nodes}
    error_handled = {n: any(lk.source_name == "error" for lk in links_from[n]) for n in nodes}

    state = {n: _NodeState() for n in nodes}
    ready: deque[tuple[str, int]] = deque()
    outputs: dict[str, list[Any]] = {
        str(n["input_default"].get("name")): []
        for n in nodes.values()
        if blocks[n["id"]].block_type is BlockType.OUTPUT
    }
    failed = False
    queued = 0

    def enqueue(node_id: str, seq: int, data: dict[str, Any]) -> None:
        nonlocal queued
        slot = state[node_id].slots[seq]
        slot.inputs, slot.status = _json(data), QUEUED
        ready.append((node_id, seq))
        queued += 1
        assert queued <= max_executions, "the reference does not model the node-execution limit"

    def try_queue(node_id: str, seq: int) -> None:
        node_state = state[node_id]
        slot = node_state.slots[seq]
        if slot.status != INCOMPLETE:
            return
        own = dict(slot.pins)
        backfilled = set()
        for pin in linked_pins[node_id] - own.keys():
            if pin not in static_pins[node_id] or pin not in node_state.latest:
                return  # waits for a value a later delivery brings
            own[pin] = node_state.latest[pin]
            backfilled.add(pin)
        slot.backfilled = frozenset(backfilled)
        enqueue(node_id, seq, {**nodes[node_id]["input_default"], **own})

    def deliver(link: _Link, value: Any) -> None:
        sink = state[link.sink_id]
        seq = sink.counters.get(link.sink_name, 0)
        sink.counters[link.sink_name] = seq + 1
        if link.static:
            sink.latest[link.sink_name] = value
        while len(sink.slots) <= seq:
            sink.slots.append(Slot())
        slot = sink.slots[seq]
        if slot.status == INCOMPLETE and link.sink_name not in slot.pins:
            slot.pins[link.sink_name] = value
        try_queue(link.sink_id, seq)
        if link.static:  # slots waiting only for this static value can run now
            for waiting in range(len(sink.slots)):
                try_queue(link.sink_id, waiting)

    # Start: input blocks and nodes no link feeds.
    for node_id, node in nodes.items():
        block_type = blocks[node_id].block_type
        if block_type is BlockType.NOTE or (block_type is not BlockType.INPUT and linked_pins[node_id]):
            continue
        data = dict(node["input_default"])
        if block_type is BlockType.INPUT and node["input_default"].get("name") in inputs:
            data["value"] = inputs[node["input_default"]["name"]]
        state[node_id].slots.append(Slot())
        enqueue(node_id, 0, data)

    while ready:
        node_id, seq = ready.popleft() if order == "fifo" else ready.pop()
        slot = state[node_id].slots[seq]
        assert slot.inputs is not None
        context = BlockContext(
            user_id="reference", execution_id="reference", node_id=node_id, node_exec_id=f"{node_id}#{seq}"
        )
        run = execute_block(blocks[node_id], slot.inputs, context)
        slot.outputs = [(pin, value) for pin, value in _json(run.outputs)]
        slot.error = run.error
        slot.status = FAILED if run.error is not None else COMPLETED
        if run.error is not None and not error_handled[node_id]:
            failed = True
        if blocks[node_id].block_type is BlockType.OUTPUT and run.error is None:
            outputs.setdefault(str(slot.inputs.get("name")), []).append(slot.inputs.get("value"))
        for pin, value in slot.outputs:
            for link in links_from[node_id]:
                if link.source_name == pin:
                    deliver(link, value)

    return ReferenceRun(
        status=FAILED if failed else COMPLETED,
        outputs=outputs,
        nodes={node_id: node_state.slots for node_id, node_state in state.items()},
    )
