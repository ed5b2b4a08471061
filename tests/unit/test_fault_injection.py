"""A worker may die between any two writes (tests/README.md). For every write of a run, crash exactly there, then
recover only the way production does (the event is retried, leases expire, the sweeper runs): the run must end
with the same outputs as an undisturbed one."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from agentflow.blocks.sdk import PureBlock
from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.inline import InlineChain
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from tests import graphs
from tests.support.clock import FakeClock
from tests.support.crash import Crash, install_crash
from tests.unit.driver import run_graph

WRITES = [
    "create_execution",
    "transition_execution",
    "transition_node",
    "claim_node",
    "save_node_result",
    "deliver",
    "next_slot",
    "reserve_slots",
    "fill_reserved",
    "create_slots",
    "return_reserved",
    "queue_slot",
    "finish_node",
    "repair_pending",
]


def recover_run(
    engine: Engine,
    publisher: RecordingPublisher,
    clock: FakeClock,
    graph: dict[str, Any],
    inputs: dict[str, Any],
    time_left: Callable[[], float] | None = None,
) -> dict[str, Any] | None:
    valid = validate_graph(graph)
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = None
    key = str(uuid.uuid4())
    for _ in range(3):  # the client retries a failed start with the same idempotency key
        try:
            execution_id = engine.start_execution("u1", graph_id, version, inputs, idempotency_key=key).execution_id
            break
        except Crash:
            continue
    assert execution_id is not None
    for _round in range(20):
        queue = [e for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
        while queue:
            event = queue.pop(0)
            d = event.detail
            try:
                engine.run_node(
                    d["execution_id"], d["node_id"], d["seq"], chain=InlineChain(time_left) if time_left else None
                )
            except Crash:
                queue.append(event)  # Lambda retries a failed asynchronous invocation
            queue.extend(e for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED)
        execution = engine.store.get_execution(execution_id)
        assert execution is not None
        if execution.status in ("COMPLETED", "FAILED"):
            return execution_report(engine.store, execution_id, valid.output_names)
        clock.now += 3600  # leases expire; then the sweeper's schedule fires
        engine.sweep(stale_after_seconds=60, now=clock.now)
    return None


def outputs_of(report: dict[str, Any]) -> dict[str, list[str]]:
    return {k: sorted(json.dumps(v) for v in vs) for k, vs in report["outputs"].items()}


def _plenty() -> float:  # a worker with all the time a chain needs: it runs every single child itself
    return 250.0


LINEAR = (graphs.linear(), {"x": 3})
STATIC_FEED = (graphs.static_feed(), {"items": [1, 2], "factor": 3})
FAN_OUT = (graphs.fan_out(), {"items": [1, 2, 3]})
DIAMOND = (graphs.diamond(), {"x": 2})


@pytest.mark.parametrize(
    ("graph", "inputs", "time_left", "effects"),
    [
        # the graphs' blocks played as blocks with effects: each one's outputs are saved before they propagate
        (*LINEAR, None, True),
        (*STATIC_FEED, None, True),
        (*LINEAR, _plenty, True),
        # as they are, pure blocks (not saved apart), with chains run inline
        (*LINEAR, _plenty, False),
        (*STATIC_FEED, _plenty, False),
        # a fan-out to a sink that needs nothing else: its slots are created queued, in one transaction
        (*FAN_OUT, None, True),
        (*FAN_OUT, None, False),
        # a join whose two values come from nodes that run once: each fills slot 0 itself, with no delivery record
        (*DIAMOND, None, True),
        (*DIAMOND, None, False),
    ],
    ids=[
        "linear",
        "static_feed",
        "linear-chains-inline",
        "linear-pure-inline",
        "static_feed-pure-inline",
        "fan_out",
        "fan_out-pure",
        "diamond",
        "diamond-pure",
    ],
)
def test_crash_at_every_write_still_completes(
    engine: Engine,
    publisher: RecordingPublisher,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    graph: Any,
    inputs: dict[str, Any],
    time_left: Callable[[], float] | None,
    effects: bool,
) -> None:
    if effects:
        monkeypatch.setattr(PureBlock, "pure", False)  # every block of the graph played as one with effects
    reference = run_graph(engine, publisher, graph, inputs)
    assert reference["status"] == "COMPLETED"
    total = 0
    with monkeypatch.context() as counting:
        state = install_crash(counting, 0, WRITES)
        run_graph(engine, publisher, graph, inputs, time_left=time_left)
        total = state["writes"]
    # the run made writes enough for the crashes below to mean something (the linear graph's pure inline run: 7)
    assert total >= 7
    crashed_in = set()
    for crash_at in range(1, total + 1):
        with monkeypatch.context() as patch:
            state = install_crash(patch, crash_at, WRITES)
            report = recover_run(engine, publisher, clock, graph, inputs, time_left)
        assert report is not None, f"crash at write {crash_at} ({state['crashed']}) left the run unfinished"
        assert report["status"] == "COMPLETED", (crash_at, state["crashed"], report["error"])
        assert outputs_of(report) == outputs_of(reference), (crash_at, state["crashed"])
        crashed_in.add(state["crashed"])
    saved_apart = {"save_node_result"} if effects else set()
    # a node with one child queues it in its finish (docs/architecture.md, "Chains"); only a node with more calls
    # queue_slot, as the static feed's StepThroughItems does,
    # and only a fan-out (several values down one link: the static feed's) reserves its slots at once
    fan_out = {"queue_slot", "reserve_slots", "fill_reserved"} if graph is STATIC_FEED[0] else set()
    if graph is FAN_OUT[0]:  # created queued in one transaction (a replay finds them made, and delivers the old way)
        fan_out = {"reserve_slots", "create_slots"}
    # a first attempt's single value to a single-input child takes its slot number and lets the finish create the
    # slot (a child with one source, from that source's slot 0, needs no number: the linear graph's); the static
    # feed's static values are delivered (and recorded) as ever
    delivering = (
        {"next_slot", "deliver"} if graph is STATIC_FEED[0] else {"next_slot"} if graph is FAN_OUT[0] else set()
    )
    assert {"claim_node", *saved_apart, *delivering, *fan_out, "finish_node"} <= crashed_in


def test_sweeper_repairs_a_wrong_pending_count_and_finalizes(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    report = run_graph(engine, publisher, graphs.linear(), {"x": 1})
    execution_id = report["execution_id"]
    assert report["status"] == "COMPLETED"
    # a run whose pending count was corrupted (say by a bug) would never finish; the sweeper fixes it
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.store.client.update_item(
        TableName=engine.store.table,
        Key={"PK": {"S": f"EXEC#{execution_id}"}, "SK": {"S": "META"}},
        UpdateExpression="SET pending = :p",
        ExpressionAttributeValues={":p": {"N": "7"}},
    )
    swept = engine.sweep(stale_after_seconds=60, now=clock.now + 3600)
    assert swept.repaired == 1
    assert engine.store.get_execution(execution_id).pending == 1  # type: ignore[union-attr]
