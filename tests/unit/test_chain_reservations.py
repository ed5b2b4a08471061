"""A chain that is all its run is doing reserves node executions for its next steps: their finishes are paid from
the reservation and leave the execution's META alone; whatever is not used is given back, before the chain makes
other children ready and by its last finish, so the node limit still holds exactly and every report counts the
node executions queued (docs/architecture.md, "Chains")."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor import propagation as propagation_module
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.store import Store
from tests.graphs import GraphBuilder
from tests.support.clock import FakeClock
from tests.support.crash import install_crash
from tests.unit.driver import drain, run_graph
from tests.unit.test_fault_injection import WRITES, outputs_of, recover_run


def _plenty() -> float:  # a worker with all the time a chain needs: it runs every single child itself
    return 250.0


def chain(length: int, split: bool = False) -> dict[str, Any]:
    """x -> c1 -> ... -> c<length> (each adds 1) -> y; with `split`, the last one feeds two more (each adds 10),
    each to its own output."""
    builder = GraphBuilder(f"chain of {length}").input("x", "x")
    previous = "x"
    for i in range(1, length + 1):
        builder.node(f"c{i}", "CalculatorBlock", operation="Add", b=1).link(previous, "result", f"c{i}", "a")
        previous = f"c{i}"
    if not split:
        return builder.output("y", "y").link(previous, "result", "y", "value").build()
    for side in ("d1", "d2"):
        builder.node(side, "CalculatorBlock", operation="Add", b=10).link(previous, "result", side, "a")
        builder.output(f"o{side}", f"y{side}").link(side, "result", f"o{side}", "value")
    return builder.build()


def meta_writes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The kind of each transaction that wrote the execution's META item."""
    seen: list[str] = []
    real = Store._transact

    def counted(self: Store, actions: list[dict[str, Any]]) -> Any:
        for action in actions:
            body = next(iter(action.values()))
            if (body.get("Key") or body["Item"])["SK"]["S"] == keys.META:
                seen.append(body.get("UpdateExpression", ""))
        return real(self, actions)

    monkeypatch.setattr(Store, "_transact", counted)
    return seen


def test_a_long_chain_leaves_meta_alone_but_once_per_reservation(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    metas = meta_writes(monkeypatch)
    report = run_graph(engine, publisher, chain(70), {"x": 0}, time_left=_plenty)
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"y": [70.0]}
    assert report["stats"]["node_executions"] == 72 == len(report["nodes"])
    # 72 node executions: their finishes, less those a reservation of 32 paid for (two reservations: 66 of them)
    assert 3 <= len(metas) <= 72 - 60, metas
    items = engine.store._query(keys.execution_pk(report["execution_id"]), keys.node_prefix())
    assert sum(int(i.get("reserved", 0)) for i in items) == 0  # every reservation used or given back


def test_a_reservation_is_given_back_before_a_split_so_the_limit_holds_exactly(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(propagation_module, "CHAIN_RESERVATION", 4)
    given_back: list[bool] = []
    real = Store.return_reserved

    def counted(self: Store, *args: Any) -> bool:
        given_back.append(real(self, *args))
        return given_back[-1]

    monkeypatch.setattr(Store, "return_reserved", counted)
    graph = chain(10, split=True)
    total = 1 + 10 + 2 + 2
    report = run_graph(engine, publisher, {**graph, "node_execution_limit": total}, {"x": 0}, time_left=_plenty)
    assert report["status"] == "COMPLETED", report["error"]  # with the reservation kept, the limit would be hit
    assert report["outputs"] == {"yd1": [20.0], "yd2": [20.0]}
    assert report["stats"]["node_executions"] == total
    assert given_back == [True]


def test_a_loop_stops_exactly_at_the_node_limit(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(propagation_module, "CHAIN_RESERVATION", 4)
    loop = (
        GraphBuilder("loop", node_execution_limit=40)
        .input("start", "start", 0)
        .node("a", "CalculatorBlock", operation="Add", b=1)
        .node("b", "CalculatorBlock", operation="Add", b=1)
        .link("start", "result", "a", "a")
        .link("a", "result", "b", "a")  # b needs nothing else: a's finish makes it, paid from a's reservation
        .link("b", "result", "a", "a")
        .build()
    )
    report = run_graph(engine, publisher, loop, {}, time_left=_plenty)
    assert report["status"] == "FAILED"
    assert "node_execution_limit=40" in report["error"]
    assert report["stats"]["node_executions"] == 40


def test_a_stop_while_a_chain_holds_its_reservation_then_resume(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Store.finish_node
    stopped: list[str] = []

    def stop_at_c5(self: Store, execution_id: str, node_id: str, *args: Any, **kwargs: Any) -> bool:
        if node_id == "c5" and not stopped:
            stopped.append(execution_id)
            engine.stop(execution_id)  # the user stops the run while c5 runs
        return real(self, execution_id, node_id, *args, **kwargs)

    monkeypatch.setattr(Store, "finish_node", stop_at_c5)
    report = run_graph(engine, publisher, chain(10), {"x": 0}, time_left=_plenty)
    assert report["status"] == "TERMINATED"
    queued = [n for n in report["nodes"] if n["status"] != "INCOMPLETE"]
    assert report["stats"]["node_executions"] == len(queued)  # x, c1..c5, and c6, created as c5 finished
    assert {n["node_id"]: n["status"] for n in queued}["c6"] == "TERMINATED"
    engine.resume(stopped[0])
    drain(engine, publisher, time_left=_plenty)
    done = execution_report(engine.store, stopped[0], ["y"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert done["outputs"] == {"y": [10.0]}
    assert done["stats"]["node_executions"] == 12


def test_a_crash_at_every_write_of_a_chain_that_splits(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(propagation_module, "CHAIN_RESERVATION", 2)
    graph, inputs = chain(3, split=True), {"x": 0}
    reference = run_graph(engine, publisher, graph, inputs)
    assert reference["status"] == "COMPLETED"
    validate_graph(graph)
    with monkeypatch.context() as counting:
        state = install_crash(counting, 0, WRITES)
        run_graph(engine, publisher, graph, inputs)
        total = state["writes"]
    crashed_in = set()
    for crash_at in range(1, total + 1):
        with monkeypatch.context() as patch:
            state = install_crash(patch, crash_at, WRITES)
            report = recover_run(engine, publisher, clock, graph, inputs)
        assert report is not None, f"crash at write {crash_at} ({state['crashed']}) left the run unfinished"
        assert report["status"] == "COMPLETED", (crash_at, state["crashed"], report["error"])
        assert outputs_of(report) == outputs_of(reference), (crash_at, state["crashed"])
        assert report["stats"]["node_executions"] == reference["stats"]["node_executions"], (crash_at, state)
        crashed_in.add(state["crashed"])
    assert {"next_slot", "return_reserved", "finish_node"} <= crashed_in
