"""Concurrency limits through the engine (README, "Concurrency limits"): a graph's `max_concurrent_runs` (else
`AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH`) caps its runs going at once per user; a run over the cap waits QUEUED with
no node event out, and starts, oldest first, when a slot frees. A duplicate start takes one slot; sub-agent runs are
exempt; stop gives the slot back; resume and redrive take one or are refused; the sweeper gives back a slot a dead
worker kept and admits a run whose wake-up was lost; a crash at any write still ends every run within the cap and
leaks no slot. Sequential, on moto: races are in tests/integration/test_concurrency_slots.py."""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

import pytest

from agentflow.config import Settings
from agentflow.errors import ConfigurationError, Conflict
from agentflow.events import NODE_EXECUTION_QUEUED, OutboundEvent, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.admission import Admission
from agentflow.executor.redrive import RedriveRefused
from agentflow.graph import GraphValidationError, validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Store
from agentflow.store.dynamo import deserialize_item
from agentflow.store.slots import SlotsFull
from agentflow_local.dynamodb import ensure_table
from tests import graphs
from tests.conftest import table_properties
from tests.graphs import GraphBuilder, adder, twice
from tests.support.clock import FakeClock
from tests.support.crash import Crash, install_crash
from tests.unit.driver import drain

E = ExecutionStatus
USER = "u1"


def capped(graph: dict[str, Any], cap: int) -> dict[str, Any]:
    return {**graph, "max_concurrent_runs": cap}


def divider(cap: int) -> dict[str, Any]:
    """a / b: fails when b is 0 (a redrive runs it again)"""
    built = (
        GraphBuilder("divider")
        .input("a", "a")
        .input("b", "b")
        .node("div", "CalculatorBlock", operation="Divide")
        .output("out", "q")
        .link("a", "result", "div", "a")
        .link("b", "result", "div", "b")
        .link("div", "result", "out", "value")
        .build()
    )
    return capped(built, cap)


def register(engine: Engine, graph: dict[str, Any]) -> tuple[str, int]:
    return engine.register_graph(USER, validate_graph(graph))


def slot_item(engine: Engine, graph_id: str) -> dict[str, Any] | None:
    """The slot item as stored (read with the client, not the code under test)."""
    key = {"PK": {"S": f"USER#{USER}"}, "SK": {"S": f"SLOTS#{graph_id}"}}
    raw = engine.store.client.get_item(TableName=engine.store.table, Key=key, ConsistentRead=True).get("Item")
    return deserialize_item(raw)


def slot_unused(engine: Engine, graph_id: str) -> bool:
    """Nobody holds or waits for a slot of the graph: its item is gone, or left empty by the last give-back for the
    graph's next run (the sweeper drops it once idle: store/slots.py)."""
    item = slot_item(engine, graph_id)
    return item is None or (not item.get("holders") and not item.get("waiting"))


def holders(engine: Engine, graph_id: str) -> set[str]:
    return set((slot_item(engine, graph_id) or {}).get("holders") or ())


def status(engine: Engine, execution_id: str) -> ExecutionStatus:
    run = engine.store.get_execution(execution_id)
    assert run is not None
    return run.status


def queued_runs(events: list[OutboundEvent]) -> set[str]:
    return {e.detail["execution_id"] for e in events if e.detail_type == NODE_EXECUTION_QUEUED}


def start_many(engine: Engine, clock: FakeClock, graph: tuple[str, int], count: int) -> list[str]:
    """`count` runs with x = 0, 1, ..., one second apart (so oldest first is start order)."""
    started = []
    for x in range(count):
        started.append(engine.start_execution(USER, graph[0], graph[1], {"x": x}).execution_id)
        clock.now += 1
    return started


def drain_within_cap(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, graph_id: str, runs: list[str], cap: int
) -> int:
    """Deliver the queued node events one at a time, a second apart; after each, at most `cap` of `runs` are
    RUNNING and the slot item holds at most `cap` ids. Returns the most that were RUNNING at once."""
    pending: list[tuple[str, str, int]] = []
    peak = 0
    while True:
        pending += [
            (e.detail["execution_id"], e.detail["node_id"], int(e.detail["seq"]))
            for e in publisher.take()
            if e.detail_type == NODE_EXECUTION_QUEUED
        ]
        if not pending:
            return peak
        engine.run_node(*pending.pop(0))
        clock.now += 1
        running = sum(1 for r in runs if status(engine, r) is E.RUNNING)
        assert running <= cap and len(holders(engine, graph_id)) <= cap
        peak = max(peak, running)


def first_running_at(engine: Engine, execution_id: str) -> str:
    run = engine.store.get_execution(execution_id)
    assert run is not None
    return next(str(h["at"]) for h in run.history if h["status"] == E.RUNNING.value)


# -- the graph field and the setting


@pytest.mark.parametrize("value", [0, -3, 1001, "x", "5", True, 2.5, [5]])
def test_a_graph_with_a_bad_max_concurrent_runs_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(GraphValidationError) as refused:
        validate_graph(capped(graphs.linear(), value))
    assert "max_concurrent_runs must be a whole number from 1 to 1000" in str(refused.value)
    assert f"got {value!r}" in str(refused.value)


@pytest.mark.parametrize("value", [1, 25, 1000])
def test_a_graph_takes_a_max_concurrent_runs_from_1_to_1000(value: int) -> None:
    valid = validate_graph(capped(graphs.linear(), value))
    assert valid.max_concurrent_runs == value
    assert json.loads(valid.graph.to_json())["max_concurrent_runs"] == value  # stored with the version
    assert validate_graph(graphs.linear()).max_concurrent_runs is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("0", "must be at least 1, got '0'"),
        ("many", "must be a number, got 'many'"),
        ("2.5", "must be a whole number from 1 to 1000, got '2.5'"),
        ("1001", "must be a whole number from 1 to 1000, got '1001'"),
        ("nan", "must be a whole number from 1 to 1000, got 'nan'"),
    ],
)
def test_a_bad_setting_is_refused_naming_it(raw: str, message: str) -> None:
    env = {"TABLE_NAME": "t", "EVENT_BUS_NAME": "b", "AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH": raw}
    with pytest.raises(ConfigurationError, match="AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH " + message):
        Settings.from_env(env)


def test_the_setting_defaults_to_autogpts_25() -> None:
    env = {"TABLE_NAME": "t", "EVENT_BUS_NAME": "b"}
    assert Settings.from_env(env).max_concurrent_runs_per_graph == 25
    env["AGENTFLOW_MAX_CONCURRENT_RUNS_PER_GRAPH"] = "7"
    assert Settings.from_env(env).max_concurrent_runs_per_graph == 7


# -- start and admission


def test_runs_over_the_cap_wait_with_no_event_out_and_start_oldest_first(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = register(engine, capped(graphs.linear(), 2))
    runs = start_many(engine, clock, graph, 5)
    events = publisher.events
    assert queued_runs(events) == set(runs[:2])  # the others' nodes did not go out
    assert [status(engine, r) for r in runs] == [E.QUEUED] * 5
    records = [engine.store.get_execution(r) for r in runs]
    assert [r.awaiting_slot for r in records if r] == [False, False, True, True, True]
    assert {r.max_concurrent_runs for r in records if r} == {2}
    item = slot_item(engine, graph[0])
    assert item is not None and set(item["holders"]) == set(runs[:2]) and item["waiting"] == 3

    assert drain_within_cap(engine, publisher, clock, graph[0], runs, cap=2) == 2
    reports = [execution_report(engine.store, r, ["result"]) for r in runs]
    assert [r["status"] for r in reports if r] == ["COMPLETED"] * 5
    assert [r["outputs"]["result"] for r in reports if r] == [[(x + 34) * 2.0] for x in range(5)]
    starts = [first_running_at(engine, r) for r in runs]
    assert starts == sorted(starts) and len(set(starts)) == 5  # admitted oldest first
    assert slot_unused(engine, graph[0])  # nobody holds or waits


def test_a_new_start_does_not_pass_the_runs_that_wait(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = register(engine, capped(graphs.linear(), 1))
    first, second = start_many(engine, clock, graph, 2)
    assert engine.store.release_slot(USER, graph[0], first).released  # a free slot, and the second still waits
    publisher.take()
    (third,) = start_many(engine, clock, graph, 1)
    assert queued_runs(publisher.events) == {second}  # the third's start admitted the oldest waiter, not itself
    assert holders(engine, graph[0]) == {second}
    run = engine.store.get_execution(third)
    assert run is not None and run.awaiting_slot


def test_the_default_cap_is_the_setting(moto_table: tuple[Any, str], clock: FakeClock) -> None:
    client, table = moto_table
    publisher = RecordingPublisher()
    settings = Settings(table_name=table, event_bus_name="bus", max_concurrent_runs_per_graph=1)
    engine = Engine(Store(client, table, clock=clock), publisher, settings)
    graph = register(engine, graphs.linear())  # no max_concurrent_runs of its own
    first, second = start_many(engine, clock, graph, 2)
    assert queued_runs(publisher.events) == {first}
    run = engine.store.get_execution(second)
    assert run is not None and run.awaiting_slot and run.max_concurrent_runs == 1
    drain_within_cap(engine, publisher, clock, graph[0], [first, second], cap=1)
    assert status(engine, first) is status(engine, second) is E.COMPLETED


def test_a_duplicate_start_takes_one_slot_and_a_waiting_run_waits_once(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph_id, version = register(engine, capped(graphs.linear(), 1))
    first = [engine.start_execution(USER, graph_id, version, {"x": 1}, idempotency_key="a") for _ in range(3)]
    assert len({s.execution_id for s in first}) == 1 and [s.created for s in first] == [True, False, False]
    assert holders(engine, graph_id) == {first[0].execution_id}
    again = [engine.start_execution(USER, graph_id, version, {"x": 2}, idempotency_key="b") for _ in range(3)]
    waiting = again[0].execution_id
    assert {s.execution_id for s in again} == {waiting}
    item = slot_item(engine, graph_id)
    assert item is not None and item["waiting"] == 1 and set(item["holders"]) == {first[0].execution_id}
    assert queued_runs(publisher.events) == {first[0].execution_id}
    drain(engine, publisher)
    assert status(engine, first[0].execution_id) is status(engine, waiting) is E.COMPLETED
    assert slot_unused(engine, graph_id)


def test_sub_agent_runs_are_exempt_from_their_graphs_cap(engine: Engine, publisher: RecordingPublisher) -> None:
    child = register(engine, capped(adder(1), 1))
    top_level = engine.start_execution(USER, child[0], child[1], {"x": 100}).execution_id
    held = publisher.take()  # the child graph's one slot stays taken: its run's nodes wait here
    assert holders(engine, child[0]) == {top_level}
    parent = register(engine, capped(twice(child), 1))
    parent_id = engine.start_execution(USER, parent[0], parent[1], {"x": 2}).execution_id
    drain(engine, publisher)
    report = execution_report(engine.store, parent_id, ["out"])
    assert report is not None and report["status"] == "COMPLETED", report and report["error"]
    assert sorted(report["outputs"]["out"]) == [3.0, 21.0]  # both children ran beside the capped run
    kids = [n["child_execution_id"] for n in report["nodes"] if n["child_execution_id"]]
    assert len(kids) == 2
    for kid in kids:
        run = engine.store.get_execution(kid)
        assert run is not None and run.max_concurrent_runs is None and run.parent_execution_id == parent_id
    assert holders(engine, child[0]) == {top_level}  # no child took or gave back a slot
    publisher.publish(held)
    drain(engine, publisher)
    assert status(engine, top_level) is E.COMPLETED
    assert slot_unused(engine, child[0]) and slot_unused(engine, parent[0])


# -- stop, resume, redrive


def test_a_stopped_waiting_run_stops_waiting_and_resumes_only_with_a_free_slot(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = register(engine, capped(graphs.linear(), 1))
    first, second = start_many(engine, clock, graph, 2)
    assert engine.stop(second).won
    item = slot_item(engine, graph[0])
    assert item is not None and item.get("waiting") == 0 and set(item["holders"]) == {first}
    stopped = engine.store.get_execution(second)
    assert stopped is not None and stopped.status is E.TERMINATED and not stopped.awaiting_slot
    with pytest.raises(SlotsFull, match=f"graph {graph[0]} is at its cap of 1 running run ") as refused:
        engine.resume(second)
    assert isinstance(refused.value, Conflict) and refused.value.status == "TERMINATED"
    assert status(engine, second) is E.TERMINATED
    drain(engine, publisher)
    assert status(engine, first) is E.COMPLETED and status(engine, second) is E.TERMINATED  # not admitted
    assert slot_unused(engine, graph[0])
    resumed = engine.resume(second)
    assert resumed.won and resumed.status == "RUNNING"
    assert holders(engine, graph[0]) == {second}
    assert not engine.resume(second).won  # a second resume loses, and keeps the run's slot
    assert holders(engine, graph[0]) == {second}
    drain(engine, publisher)
    report = execution_report(engine.store, second, ["result"])
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"]["result"] == [70.0]  # x = 1
    assert slot_unused(engine, graph[0])


def test_stopping_a_run_gives_its_slot_to_the_oldest_waiting_run(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = register(engine, capped(graphs.linear(), 1))
    runs = start_many(engine, clock, graph, 3)
    publisher.take()
    assert engine.stop(runs[0]).won
    assert queued_runs(publisher.events) == {runs[1]}  # admitted at once; the third still waits
    assert holders(engine, graph[0]) == {runs[1]}
    drain_within_cap(engine, publisher, clock, graph[0], runs, cap=1)
    assert [status(engine, r) for r in runs] == [E.TERMINATED, E.COMPLETED, E.COMPLETED]
    assert slot_unused(engine, graph[0])


def test_a_redrive_takes_a_slot_or_is_refused(engine: Engine, publisher: RecordingPublisher) -> None:
    graph_id, version = register(engine, divider(1))
    failing = engine.start_execution(USER, graph_id, version, {"a": 1, "b": 0}).execution_id
    drain(engine, publisher)
    assert status(engine, failing) is E.FAILED and slot_unused(engine, graph_id)  # given back as it failed
    holder = engine.start_execution(USER, graph_id, version, {"a": 6, "b": 3}).execution_id
    with pytest.raises(RedriveRefused, match=r"cannot be redriven now: graph \S+ is at its cap of 1 running run "):
        engine.redrive(failing)
    assert status(engine, failing) is E.FAILED and holders(engine, graph_id) == {holder}
    drain(engine, publisher)
    assert status(engine, holder) is E.COMPLETED
    moved = engine.redrive(failing)
    assert moved.won and holders(engine, graph_id) == {failing}
    drain(engine, publisher)
    assert status(engine, failing) is E.FAILED  # b is still 0; and it gave the slot back again
    assert slot_unused(engine, graph_id)


# -- the sweeper


def test_the_sweeper_gives_back_a_slot_a_dead_worker_kept_and_admits_the_oldest_waiter(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = register(engine, capped(graphs.linear(), 1))
    runs = start_many(engine, clock, graph, 3)
    with monkeypatch.context() as dead:
        dead.setattr(Admission, "_release_slot", lambda self, store, execution: None)  # died before it
        drain(engine, publisher)
    assert [status(engine, r) for r in runs] == [E.COMPLETED, E.QUEUED, E.QUEUED]
    assert holders(engine, graph[0]) == {runs[0]}
    clock.now += 3600
    report = engine.sweep(now=clock.now)
    assert report.slots_released == 1 and report.admitted == 1 and report.republished == 0
    assert holders(engine, graph[0]) == {runs[1]} and queued_runs(publisher.events) == {runs[1]}
    again = engine.sweep(now=clock.now)  # nothing more to do: the first waiter holds the slot
    assert again.slots_released == again.admitted == 0
    drain_within_cap(engine, publisher, clock, graph[0], runs, cap=1)
    assert [status(engine, r) for r in runs] == [E.COMPLETED] * 3
    assert slot_unused(engine, graph[0])


def test_the_sweeper_admits_a_waiting_run_whose_wake_up_was_lost_and_never_republishes_it_early(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = register(engine, capped(graphs.linear(), 1))
    first, second = start_many(engine, clock, graph, 2)
    publisher.take()
    clock.now += 3600  # both runs' nodes look stale, but the second waits: its nodes stay in
    report = engine.sweep(now=clock.now)
    assert report.republished == 1 and report.admitted == 0  # the first's lost events only
    assert queued_runs(publisher.events) == {first}
    with monkeypatch.context() as dead:
        dead.setattr(Admission, "_admit_waiting", lambda self, store, user_id, graph_id, also=None: 0)
        drain(engine, publisher)  # the first gives its slot back, and its worker dies before the admission
    assert status(engine, first) is E.COMPLETED and status(engine, second) is E.QUEUED
    assert holders(engine, graph[0]) == set() and queued_runs(publisher.events) == set()
    report = engine.sweep(now=clock.now)
    assert report.admitted == 1 and report.slots_released == 0 and queued_runs(publisher.events) == {second}
    run = engine.store.get_execution(second)
    assert run is not None and not run.awaiting_slot and holders(engine, graph[0]) == {second}
    assert engine.sweep(now=clock.now).republished == 0  # just admitted: its events are not lost yet
    drain(engine, publisher)
    assert status(engine, second) is E.COMPLETED and slot_unused(engine, graph[0])


def test_a_run_that_times_out_while_waiting_stops_waiting(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = register(engine, {**capped(graphs.linear(), 1), "timeout_seconds": 60})
    first, second = start_many(engine, clock, graph, 2)
    publisher.take()
    clock.now += 3600
    report = engine.sweep(now=clock.now)
    assert report.timed_out == 2
    assert status(engine, first) is status(engine, second) is E.FAILED
    assert slot_unused(engine, graph[0])  # the holder gave it back, the waiter stopped waiting


# -- a crash at every write


CRASH_WRITES = [
    "create_execution",
    "transition_execution",
    "transition_node",
    "claim_node",
    "save_node_result",
    "deliver",
    "next_slot",
    "queue_slot",
    "finish_node",
    "take_slot",
    "release_slot",
    "drop_empty_slot",
    "wait_for_slot",
    "admit_waiting",
]


def recover_two_runs(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, graph: tuple[str, int]
) -> list[str] | None:
    """Two runs of a graph capped at 1, recovered only as production does (clients retry their start with the
    same key, events are retried, the sweeper runs); never two RUNNING. Their ids once both completed."""
    runs = []
    for x in (1, 2):
        key = str(uuid.uuid4())
        for _ in range(3):
            try:
                runs.append(
                    engine.start_execution(USER, graph[0], graph[1], {"x": x}, idempotency_key=key).execution_id
                )
                break
            except Crash:
                continue
        clock.now += 1
    assert len(runs) == 2
    for _round in range(20):
        queue = [e for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
        while queue:
            event = queue.pop(0)
            try:
                engine.run_node(event.detail["execution_id"], event.detail["node_id"], event.detail["seq"])
            except Crash:
                queue.append(event)  # Lambda retries a failed asynchronous invocation
            assert sum(1 for r in runs if status(engine, r) is E.RUNNING) <= 1
            queue += [e for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
        if all(status(engine, r) is E.COMPLETED for r in runs):
            return runs
        clock.now += 3600
        with contextlib.suppress(Crash):  # the sweeper's next minute comes
            engine.sweep(stale_after_seconds=60, now=clock.now)
    return None


def fresh_engine(engine: Engine, number: int) -> Engine:
    """The same engine over a new, empty table (moto's index queries scan the whole table)."""
    table = f"{engine.store.table}-{number}"
    ensure_table(engine.store.client, table, table_properties())
    return Engine(Store(engine.store.client, table, clock=engine.store.clock), engine.publisher, engine.settings)


def test_a_crash_at_every_write_still_completes_both_runs_within_the_cap_and_leaks_no_slot(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as counting:
        state = install_crash(counting, 0, CRASH_WRITES)
        graph = register(engine, capped(graphs.linear(), 1))
        assert recover_two_runs(engine, publisher, clock, graph) is not None
        total = state["writes"]
    assert total > 20
    crashed_in = set()
    for crash_at in range(1, total + 1):
        engine = fresh_engine(engine, crash_at)
        graph = register(engine, capped(graphs.linear(), 1))
        with monkeypatch.context() as patch:
            state = install_crash(patch, crash_at, CRASH_WRITES)
            runs = recover_two_runs(engine, publisher, clock, graph)
        assert runs is not None, f"crash at write {crash_at} ({state['crashed']}) left a run unfinished"
        outputs = [execution_report(engine.store, r, ["result"]) for r in runs]
        assert [o["outputs"]["result"] for o in outputs if o] == [[70.0], [72.0]], (crash_at, state["crashed"])
        clock.now += 3600
        engine.sweep(stale_after_seconds=60, now=clock.now)  # whatever a crash left is reconciled
        assert slot_unused(engine, graph[0]), (crash_at, state["crashed"])
        crashed_in.add(state["crashed"])
    assert {"take_slot", "release_slot", "wait_for_slot", "admit_waiting"} <= crashed_in


def test_a_give_back_leaves_the_slot_item_which_the_sweeper_drops_once_idle(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    """The next run of the graph takes its slot on the item left (1 write unit, no index entry to write); the
    sweeper deletes an item nobody has used for SLOT_IDLE_SECONDS, and never one that is held."""
    from agentflow.executor.admission import SLOT_IDLE_SECONDS

    graph = register(engine, capped(graphs.linear(), 2))
    first = engine.start_execution(USER, graph[0], graph[1], {"x": 1}).execution_id
    drain(engine, publisher)
    assert status(engine, first) is E.COMPLETED
    left = slot_item(engine, graph[0])
    assert left is not None and not left.get("holders") and "GSI2PK" in left  # left, empty, on the index
    clock.now += SLOT_IDLE_SECONDS - 1
    engine.sweep(stale_after_seconds=60, now=clock.now)
    assert slot_item(engine, graph[0]) is not None  # used within the hour: kept
    second = engine.start_execution(USER, graph[0], graph[1], {"x": 2}).execution_id
    assert holders(engine, graph[0]) == {second}
    clock.now += 2 * SLOT_IDLE_SECONDS
    engine.sweep(stale_after_seconds=60, now=clock.now)
    assert holders(engine, graph[0]) == {second}  # held: never dropped, however old
    drain(engine, publisher)
    assert status(engine, second) is E.COMPLETED and slot_unused(engine, graph[0])
    clock.now += SLOT_IDLE_SECONDS + 1
    engine.sweep(stale_after_seconds=60, now=clock.now)
    assert slot_item(engine, graph[0]) is None  # idle for more than the hour: dropped, off the index
