"""The executor's algorithm, step by step, on moto with a hand-driven event loop."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from agentflow.blocks.maths import CalculatorBlock
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine, NodeRunOutcome
from agentflow.graph import GraphValidationError, validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import EXECUTION_TRANSITIONS, ExecutionStatus, NodeStatus
from agentflow.store import Store
from tests import graphs
from tests.support.clock import FakeClock
from tests.unit.driver import drain, run_graph


def sorted_outputs(report: dict[str, Any]) -> dict[str, list[str]]:
    return {k: sorted(json.dumps(v) for v in vs) for k, vs in report["outputs"].items()}


def test_linear_run(engine: Engine, publisher: RecordingPublisher) -> None:
    report = run_graph(engine, publisher, graphs.linear(), {"x": 1})
    assert report["status"] == "COMPLETED"
    assert report["outputs"] == {"result": [70.0]}
    assert [h["status"] for h in report["history"]] == ["INCOMPLETE", "QUEUED", "RUNNING", "COMPLETED"]


@pytest.mark.parametrize("seed", range(6))
def test_any_delivery_order_and_duplicates_give_the_same_outputs(
    engine: Engine, publisher: RecordingPublisher, seed: int
) -> None:
    """Random order + every event delivered 3 times: same outputs, every node execution claimed once."""
    inputs = {"items": [1, 2, 3, 4], "factor": 5}
    reference = run_graph(engine, publisher, graphs.static_feed(), inputs)
    shuffled = run_graph(engine, publisher, graphs.static_feed(), inputs, seed=seed, copies=3)
    assert sorted_outputs(shuffled) == sorted_outputs(reference)
    assert sorted(json.loads(v) for v in sorted_outputs(shuffled)["products"]) == [5.0, 10.0, 15.0, 20.0]
    assert all(n["attempts"] == 1 for n in shuffled["nodes"])


def test_static_value_arriving_last_backfills_waiting_slots(engine: Engine, publisher: RecordingPublisher) -> None:
    """Items reach `mul` before the static factor: the waiting slots run when it arrives, once each."""
    valid = validate_graph(graphs.static_feed())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"items": [1, 2, 3], "factor": 2}).execution_id
    publisher.take()
    # run the items side first, all the way, then the factor input (the items input, alone feeding `step`, ran at
    # the start: docs/architecture.md, "Inputs run at the start")
    assert engine.store.get_node(execution_id, "items", 0).status == "COMPLETED"  # type: ignore[union-attr]
    assert engine.run_node(execution_id, "step", 0) is NodeRunOutcome.COMPLETED
    assert [
        e for e in publisher.take() if e.detail_type == "NodeExecutionQueued" and e.detail["node_id"] == "mul"
    ] == []
    waiting = [n for n in engine.store.list_nodes(execution_id, "mul") if n.status == "INCOMPLETE"]
    assert len(waiting) == 3
    engine.run_node(execution_id, "factor", 0)
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED"
    assert sorted(report["outputs"]["products"]) == [2.0, 4.0, 6.0]


def test_crash_after_saving_outputs_retries_without_rerunning_the_block(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentflow.executor.attempts as executor_module

    runs: list[str] = []
    real_execute = executor_module.execute_block

    def counting_execute(block: Any, data: Any, context: Any) -> Any:
        runs.append(context.node_id)
        return real_execute(block, data, context)

    monkeypatch.setattr(executor_module, "execute_block", counting_execute)
    # a block with effects (an HTTP call, an LLM call) keeps its save; the calculator plays one here
    monkeypatch.setattr(CalculatorBlock, "pure", False)
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    drain_until = ["in"]
    for node in drain_until:
        engine.run_node(execution_id, node, 0)
    publisher.take()

    # a first attempt's one value to a child with one source: the child's slot 0 is created by the node's finish,
    # the first write after the save (the node is its source's slot 0: no slot number is taken)
    real_finish = engine.store.finish_node.__func__  # type: ignore[attr-defined]
    crashes = {"left": 1}

    def crashing_finish(self: Any, *args: Any, **kwargs: Any) -> Any:
        if crashes["left"]:
            crashes["left"] -= 1
            raise ConnectionError("worker died between saving outputs and finishing")
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(type(engine.store), "finish_node", crashing_finish)
    with pytest.raises(ConnectionError):
        engine.run_node(execution_id, "add", 0)
    # a redelivery while the lease is live is a duplicate: quiet
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.DUPLICATE
    clock.now += 3600  # the lease expires; the retry takes over and propagates the saved outputs
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.COMPLETED
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    assert runs.count("add") == 1


def test_a_pure_block_is_not_saved_apart_and_runs_again_after_a_crash(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pure block's outputs are written by its finish only (one write fewer); a crash between propagating and
    finishing runs it again, to the same outputs, whose deliveries replay into the same slots."""
    import agentflow.executor.attempts as executor_module

    runs: list[str] = []
    real_execute = executor_module.execute_block

    def counting_execute(block: Any, data: Any, context: Any) -> Any:
        runs.append(context.node_id)
        return real_execute(block, data, context)

    saves: list[str] = []
    real_save = Store.save_node_result

    def counting_save(self: Store, execution_id: str, node_id: str, *args: Any, **kwargs: Any) -> bool:
        saves.append(node_id)
        return real_save(self, execution_id, node_id, *args, **kwargs)

    monkeypatch.setattr(executor_module, "execute_block", counting_execute)
    monkeypatch.setattr(Store, "save_node_result", counting_save)
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.run_node(execution_id, "in", 0)
    publisher.take()
    real_finish = Store.finish_node
    crashes = {"left": 1}

    def crashing_finish(self: Store, *args: Any, **kwargs: Any) -> bool:
        if crashes["left"]:
            crashes["left"] -= 1
            raise ConnectionError("worker died between propagating and finishing")
        return real_finish(self, *args, **kwargs)

    monkeypatch.setattr(Store, "finish_node", crashing_finish)
    with pytest.raises(ConnectionError):
        engine.run_node(execution_id, "add", 0)
    clock.now += 3600  # the lease expires; the retry runs the block again
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.COMPLETED
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    assert runs.count("add") == 2
    assert saves == []  # no pure block of the graph was saved apart
    mul = [n for n in report["nodes"] if n["node_id"] == "mul"]
    assert len(mul) == 1 and mul[0]["outputs"] == {"result": [70.0]}  # the replay found its slot: one `mul`
    add = next(n for n in report["nodes"] if n["node_id"] == "add")
    assert add["attempts"] == 2


def test_worker_that_lost_its_lease_cannot_finish(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    store = engine.store  # `add` is the first node queued: the start ran `in` (executor/start_inputs.py)
    first = store.claim_node(execution_id, "add", 0, lease_seconds=10)
    assert first.won
    clock.now += 60
    second = store.claim_node(execution_id, "add", 0, lease_seconds=10)
    assert second.won and second.item is not None and second.item.attempts == 2
    assert not store.save_node_result(execution_id, "add", 0, 1, "[]", None)  # the stale worker loses
    assert not store.finish_node(execution_id, "add", 0, 1, NodeStatus.COMPLETED)


def test_gives_up_after_max_attempts(engine: Engine, publisher: RecordingPublisher, clock: FakeClock) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    for _ in range(engine.settings.max_attempts):
        assert engine.store.claim_node(execution_id, "add", 0, lease_seconds=1).won  # a worker that dies
        clock.now += 5
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.FAILED
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "FAILED"
    assert "gave up after 3 attempts" in report["error"]


def test_event_for_a_stopped_run_terminates_the_node(engine: Engine, publisher: RecordingPublisher) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    assert engine.stop(execution_id).won
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.TERMINATED
    assert engine.store.get_node(execution_id, "add", 0).status == "TERMINATED"  # type: ignore[union-attr]
    assert engine.resume(execution_id).won
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}


def test_stop_while_a_block_runs_propagates_on_resume(engine: Engine, publisher: RecordingPublisher) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.run_node(execution_id, "in", 0)  # execution RUNNING, `add` queued
    publisher.take()
    engine.stop(execution_id)  # `add` was claimed before the stop: simulate by claiming through run_node after
    # the node's claim checks the execution first, so to model "stopped mid-run" stop between claim and propagate:
    engine.resume(execution_id)
    publisher.take()
    store = engine.store
    original_propagate = engine._propagate

    def stop_then_propagate(*args: Any) -> bool:
        engine.stop(execution_id)
        return original_propagate(*args)

    engine._propagate = stop_then_propagate  # type: ignore[method-assign]
    assert engine.run_node(execution_id, "add", 0) is NodeRunOutcome.TERMINATED
    engine._propagate = original_propagate  # type: ignore[method-assign]
    add = store.get_node(execution_id, "add", 0)
    assert add is not None and add.status == "TERMINATED" and add.outputs is not None  # kept for resume
    assert engine.resume(execution_id).won
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}
    statuses = [h["status"] for h in report["history"]]
    for a, b in itertools.pairwise(statuses):
        assert ExecutionStatus(b) in EXECUTION_TRANSITIONS[ExecutionStatus(a)]


def test_idempotency_key_returns_the_same_execution(engine: Engine, publisher: RecordingPublisher) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    first = engine.start_execution("u1", graph_id, version, {"x": 1}, idempotency_key="k1")
    queued_first = len(publisher.take())
    again = engine.start_execution("u1", graph_id, version, {"x": 1}, idempotency_key="k1")
    assert first.created and not again.created and again.execution_id == first.execution_id
    assert queued_first > 0 and publisher.take() == []  # nothing published twice
    other_user_graph = engine.register_graph("u2", valid)
    third = engine.start_execution("u2", *other_user_graph, {"x": 1}, idempotency_key="k1")
    assert third.execution_id != first.execution_id  # keys are per user


def test_missing_inputs_rejected_before_anything_is_written(engine: Engine, moto_table: tuple[Any, str]) -> None:
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    client, table = moto_table
    before = client.scan(TableName=table)["Count"]
    with pytest.raises(GraphValidationError, match="missing required graph input"):
        engine.start_execution("u1", graph_id, version, {})
    assert client.scan(TableName=table)["Count"] == before


def test_node_execution_limit(engine: Engine, publisher: RecordingPublisher) -> None:
    report = run_graph(engine, publisher, graphs.endless_loop(limit=10), {})
    assert report["status"] == "FAILED"
    assert "node_execution_limit=10" in report["error"]
    assert report["stats"]["node_executions"] == 10


def test_stats_count_requests_and_events(engine: Engine, publisher: RecordingPublisher) -> None:
    report = run_graph(engine, publisher, graphs.linear(), {"x": 2})
    stats = report["stats"]
    assert stats["node_executions"] == 4
    # node events (not in's: the start ran it, executor/start_inputs.py; not out's: mul's worker ran it,
    # executor/outputs.py) + QUEUED, RUNNING, COMPLETED status changes
    assert stats["events_published"] == 2 + 3
    assert stats["dynamodb_requests"] >= 4 * 5


def test_resume_between_reading_a_stopped_run_and_terminating_its_node(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker reads the run as TERMINATED; before it marks its node TERMINATED, a resume lists the node as
    QUEUED and re-publishes it. The run must still finish (it used to stay RUNNING forever)."""
    from agentflow.store import Store

    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.stop(execution_id)
    publisher.take()
    original = Store.transition_node
    sneaked = {"done": False}

    def resume_sneaks_in(self: Store, *args: Any, **kwargs: Any) -> Any:
        if not sneaked["done"] and args[3] is NodeStatus.TERMINATED:
            sneaked["done"] = True
            assert engine.resume(execution_id).won
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "transition_node", resume_sneaks_in)
    engine.run_node(execution_id, "in", 0)
    assert sneaked["done"]
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED", report["status"]
    assert report["outputs"] == {"result": [70.0]}


def test_sweeper_requeues_terminated_nodes_of_a_running_run(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    """Whatever race leaves a TERMINATED node in a RUNNING run, the sweeper moves it on."""
    valid = validate_graph(graphs.linear())
    graph_id, version = engine.register_graph("u1", valid)
    execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
    engine.run_node(execution_id, "in", 0)
    publisher.take()  # `add` is QUEUED; its event is dropped and the node ends up TERMINATED by a stale stop
    assert engine.store.transition_node(execution_id, "add", 0, NodeStatus.TERMINATED).won
    swept = engine.sweep(stale_after_seconds=60, now=clock.now + 3600)
    assert swept.republished == 1
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70.0]}


def test_a_pure_blocks_big_outputs_are_not_kept_on_its_node_item(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fan-out's list outputs would fill its node item (docs/architecture.md, "Pure blocks"): over the bound they
    go to its children only; the run's outputs are whole, and a small pure output is still kept."""
    import agentflow.executor.node as node_module

    monkeypatch.setattr(node_module, "KEPT_PURE_OUTPUT_BYTES", 60)  # the step's outputs for 3 items are ~90 bytes
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": [1, 2, 3]})
    assert report["status"] == "COMPLETED"
    assert sorted(report["outputs"]["squares"]) == [1.0, 4.0, 9.0]
    step = next(n for n in report["nodes"] if n["node_id"] == "step")
    assert step["status"] == "COMPLETED" and step["outputs"] == {}
    squares = [n for n in report["nodes"] if n["node_id"] == "square"]
    assert sorted(v for n in squares for v in n["outputs"]["result"]) == [1.0, 4.0, 9.0]  # under the bound: kept


def test_a_fan_in_delivered_directly_records_no_delivery(engine: Engine, publisher: RecordingPublisher) -> None:
    """Each of the fan-out's squares sends its one value to the output node, which needs nothing else: its slot is
    created by the square's finish, and the output node's PINS item keeps only its counter, however wide the fan-in
    (docs/architecture.md, "Direct deliveries")."""
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": list(range(12))})
    assert report["status"] == "COMPLETED"
    assert sorted(report["outputs"]["squares"]) == [float(i * i) for i in range(12)]
    outs = sorted(n["seq"] for n in report["nodes"] if n["node_id"] == "out")
    # consecutive slot numbers, one per value; from 1, since `out` has one source (`square`), whose first execution
    # (slot 0) would have created slot 0 itself, but fan-out children count from 1 too (ValidGraph.sole_source_sinks)
    assert outs == list(range(1, 13))
    from agentflow import keys

    pins = engine.store._get(keys.execution_pk(report["execution_id"]), keys.pins_sk("out"))  # the raw item
    assert pins is not None and pins[keys.COUNTER + "value"] == 13  # the next slot number
    assert [name for name in pins if name.startswith(keys.DELIVERY)] == []


def test_the_node_execution_limit_is_bounded() -> None:
    from agentflow.graph import MAX_NODE_EXECUTION_LIMIT

    graph = graphs.linear()
    validate_graph({**graph, "node_execution_limit": MAX_NODE_EXECUTION_LIMIT})
    with pytest.raises(GraphValidationError, match=f"between 1 and {MAX_NODE_EXECUTION_LIMIT}"):
        validate_graph({**graph, "node_execution_limit": MAX_NODE_EXECUTION_LIMIT + 1})
