"""Concurrency-limit slots under real races (DynamoDB Local): 20 takers of a cap-5 graph leave exactly 5 holders;
concurrent duplicate starts take one slot; concurrent admitters admit exactly the free slots, oldest first; runs
started at once and driven by 8 workers never have more than the cap RUNNING (from their status histories, on a
clock that ticks on every read, so timestamps follow causality) nor more holders (a monitor reads the slot item
throughout); stop and resume racing on one run leave it holding a slot exactly when it runs; racing sweepers give
back a leaked slot once and admit the oldest waiting run once."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from agentflow.config import Settings
from agentflow.errors import Conflict
from agentflow.events import NODE_EXECUTION_QUEUED, OutboundEvent
from agentflow.executor import Engine
from agentflow.executor.admission import Admission
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Store
from agentflow.store.dynamo import deserialize_item
from tests import graphs
from tests.support.overlap import most_at_once, running_intervals

E = ExecutionStatus
USER = "racer"
WORKERS = 8


class TickingClock:
    """Epoch seconds one millisecond further on every call (thread-safe): a write that happens after another
    carries a later timestamp, and no two are equal."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            self._now += 0.001
            return self._now


class QueuePublisher:
    """Node events go to a queue that worker threads drain (EventBridge, in effect)."""

    def __init__(self) -> None:
        self.events: queue.Queue[OutboundEvent] = queue.Queue()
        self.published: list[OutboundEvent] = []
        self._lock = threading.Lock()

    def publish(self, events: Sequence[OutboundEvent]) -> None:
        with self._lock:
            self.published.extend(events)
        for event in events:
            if event.detail_type == NODE_EXECUTION_QUEUED:
                self.events.put(event)


@pytest.fixture
def engine(ddb_table: tuple[Any, str]) -> Engine:
    client, table = ddb_table
    settings = Settings(table_name=table, event_bus_name="bus", default_lease_seconds=60)
    return Engine(Store(client, table, clock=TickingClock()), QueuePublisher(), settings)


def publisher_of(engine: Engine) -> QueuePublisher:
    assert isinstance(engine.publisher, QueuePublisher)
    return engine.publisher


def register(engine: Engine, cap: int) -> tuple[str, int]:
    return engine.register_graph(USER, validate_graph({**graphs.linear(), "max_concurrent_runs": cap}))


def slot_item(engine: Engine, graph_id: str) -> dict[str, Any] | None:
    key = {"PK": {"S": f"USER#{USER}"}, "SK": {"S": f"SLOTS#{graph_id}"}}
    raw = engine.store.client.get_item(TableName=engine.store.table, Key=key, ConsistentRead=True).get("Item")
    return deserialize_item(raw)


def slot_unused(engine: Engine, graph_id: str) -> bool:
    """Nobody holds or waits for a slot of the graph: its item is gone, or left empty by the last give-back for the
    graph's next run (the sweeper drops it once idle: store/slots.py)."""
    item = slot_item(engine, graph_id)
    return item is None or (not item.get("holders") and not item.get("waiting"))


def holders(engine: Engine, graph_id: str) -> set[str]:
    return {str(h) for h in (slot_item(engine, graph_id) or {}).get("holders") or ()}


def at_once[T](count: int, action: Callable[[int], T]) -> list[T]:
    """`action(0..count-1)` from `count` threads released together."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        barrier.wait(timeout=30)
        return action(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def drive(engine: Engine, runs: list[str], graph_id: str, cap: int) -> int:
    """Run node events with WORKERS threads until every run ended, while a monitor checks that the slot item
    never holds more than `cap` ids. Returns the most holders it saw."""
    events = publisher_of(engine).events
    done = threading.Event()
    peak = [0]
    errors: list[BaseException] = []

    def worker() -> None:
        while not done.is_set():
            try:
                event = events.get(timeout=0.05)
            except queue.Empty:
                continue
            try:
                d = event.detail
                engine.run_node(d["execution_id"], d["node_id"], int(d["seq"]))
            except BaseException as exc:  # reported below: the test fails
                errors.append(exc)

    def monitor() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], len(holders(engine, graph_id)))

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)] + [threading.Thread(target=monitor)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(2400):  # 120 s at most
            statuses = [engine.store.get_execution(r) for r in runs]
            if all(s is not None and s.status in (E.COMPLETED, E.FAILED) for s in statuses) and events.empty():
                break
            done.wait(0.05)
        else:
            pytest.fail(f"runs did not end: {[s.status if s else None for s in statuses]}")
    finally:
        done.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not errors, errors
    assert peak[0] <= cap
    return peak[0]


def histories(engine: Engine, runs: list[str]) -> list[tuple[Any, ...]]:
    found = [engine.store.get_execution(r) for r in runs]
    return [run.history for run in found if run is not None]


def test_the_overlap_checker_counts_overlaps() -> None:
    def at(*steps: tuple[str, str]) -> list[dict[str, str]]:
        return [{"status": status, "at": t} for status, t in steps]

    overlapping = [at(("QUEUED", "a"), ("RUNNING", "b"), ("COMPLETED", "d")), at(("RUNNING", "c"), ("FAILED", "e"))]
    assert most_at_once(running_intervals(overlapping)) == 2
    in_turn = [at(("RUNNING", "a"), ("COMPLETED", "b")), at(("RUNNING", "b"), ("TERMINATED", "c"), ("RUNNING", "d"))]
    assert running_intervals(in_turn) == [("a", "b"), ("b", "c"), ("d", "~")]
    assert most_at_once(running_intervals(in_turn)) == 1
    assert most_at_once([("a", "z")] * 6) == 6


def test_20_takers_of_a_cap_5_graph_leave_exactly_5_holders(engine: Engine) -> None:
    for _round in range(5):
        graph_id = str(uuid.uuid4())
        takers = [str(uuid.uuid4()) for _ in range(20)]

        def take(i: int, graph_id: str = graph_id, takers: list[str] = takers) -> bool:
            return engine.store.take_slot(USER, graph_id, takers[i], 5)

        winners = {t for t, w in zip(takers, at_once(20, take), strict=True) if w}
        assert len(winners) == 5
        assert holders(engine, graph_id) == winners
        again = at_once(20, take)  # the holders' repeats win (they hold one already), the others' lose again
        assert {t for t, w in zip(takers, again, strict=True) if w} == winners
        assert holders(engine, graph_id) == winners


def test_concurrent_duplicate_starts_take_one_slot(engine: Engine) -> None:
    graph_id, version = register(engine, 2)
    key = f"burst-{uuid.uuid4()}"
    started = at_once(16, lambda _: engine.start_execution(USER, graph_id, version, {"x": 1}, idempotency_key=key))
    execution_ids = {s.execution_id for s in started}
    assert len(execution_ids) == 1 and sum(s.created for s in started) == 1
    assert holders(engine, graph_id) == execution_ids
    published = publisher_of(engine).published
    queued = [e for e in published if e.detail_type == NODE_EXECUTION_QUEUED]
    assert len(queued) == 1  # the starting node went out once, by the one winner
    drive(engine, list(execution_ids), graph_id, cap=2)
    assert slot_unused(engine, graph_id)


def test_concurrent_admitters_admit_exactly_the_free_slots_oldest_first(engine: Engine) -> None:
    graph_id, version = register(engine, 3)
    blockers = [engine.start_execution(USER, graph_id, version, {"x": i}).execution_id for i in range(3)]
    waiting = [engine.start_execution(USER, graph_id, version, {"x": i}).execution_id for i in range(10)]
    assert all(r and r.awaiting_slot for r in (engine.store.get_execution(w) for w in waiting))
    for blocker in blockers:  # give the slots back behind the engine's back: nobody is admitted yet
        assert engine.store.release_slot(USER, graph_id, blocker).released
    store = engine.store
    admitted = at_once(10, lambda _: engine._admit_waiting(store, USER, graph_id))
    assert sum(admitted) == 3
    assert holders(engine, graph_id) == set(waiting[:3])
    item = slot_item(engine, graph_id)
    assert item is not None and item["waiting"] == 7
    assert [r.awaiting_slot for r in (engine.store.get_execution(w) for w in waiting) if r] == [False] * 3 + [True] * 7


@pytest.mark.parametrize("cap", [1, 3])
def test_runs_started_at_once_never_run_past_the_cap(engine: Engine, cap: int) -> None:
    graph_id, version = register(engine, cap)
    runs = [s.execution_id for s in at_once(15, lambda i: engine.start_execution(USER, graph_id, version, {"x": i}))]
    assert len(holders(engine, graph_id)) == cap
    peak = drive(engine, runs, graph_id, cap)
    assert peak == cap  # the monitor saw the cap reached
    reports = {r: execution_report(engine.store, r, ["result"]) for r in runs}
    assert all(rep and rep["status"] == "COMPLETED" for rep in reports.values())
    expected = sorted((x + 34) * 2.0 for x in range(15))
    assert sorted(rep["outputs"]["result"][0] for rep in reports.values() if rep) == expected
    assert most_at_once(running_intervals(histories(engine, runs))) <= cap
    assert slot_unused(engine, graph_id)  # every slot given back, nobody waits


def test_stop_and_resume_racing_leave_a_run_holding_a_slot_exactly_while_it_runs(engine: Engine) -> None:
    graph_id, version = register(engine, 1)
    execution_id = engine.start_execution(USER, graph_id, version, {"x": 1}).execution_id
    holding = ("QUEUED", "RUNNING")
    for round_no in range(12):

        def act(i: int, round_no: int = round_no) -> str:
            try:
                result = engine.stop(execution_id) if (i + round_no) % 2 else engine.resume(execution_id)
            except Conflict:
                return "full"
            return str(result.status)

        at_once(16, act)
        run = engine.store.get_execution(execution_id)
        assert run is not None
        held = holders(engine, graph_id)
        assert (execution_id in held) == (run.status.value in holding), (round_no, run.status, held)
        assert held <= {execution_id}
    if engine.store.get_execution(execution_id).status is E.TERMINATED:  # type: ignore[union-attr]
        assert engine.resume(execution_id).won
    drive(engine, [execution_id], graph_id, cap=1)
    assert slot_unused(engine, graph_id)


def test_racing_sweepers_give_back_a_leaked_slot_once_and_admit_the_oldest_waiter_once(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph_id, version = register(engine, 1)
    runs = [engine.start_execution(USER, graph_id, version, {"x": i}).execution_id for i in range(3)]
    with monkeypatch.context() as dead:
        dead.setattr(Admission, "_release_slot", lambda self, store, execution: None)  # its worker died first
        events = publisher_of(engine).events
        while not events.empty():
            d = events.get().detail
            engine.run_node(d["execution_id"], d["node_id"], int(d["seq"]))
    assert engine.store.get_execution(runs[0]).status is E.COMPLETED  # type: ignore[union-attr]
    assert holders(engine, graph_id) == {runs[0]}
    reports = at_once(8, lambda _: engine.sweep())
    assert sum(r.slots_released for r in reports) == 1
    assert sum(r.admitted for r in reports) == 1
    assert holders(engine, graph_id) == {runs[1]}  # the oldest waiter
    assert engine.store.get_execution(runs[2]).awaiting_slot  # type: ignore[union-attr]
    drive(engine, runs, graph_id, cap=1)
    assert slot_unused(engine, graph_id)
