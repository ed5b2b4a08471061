"""Chains run inline (docs/architecture.md, "Chains"): a worker with time left runs a node's single ready child
itself instead of publishing its event. A child its parent's finish creates is created claimed for the worker, so
duplicates lose against its lease; a worker that dies holding a child leaves a RUNNING node whose lease the sweeper
hands on; a stop still stops the chain."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.base import NodeRunOutcome
from agentflow.executor.inline import InlineChain
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Store
from tests import graphs
from tests.support.clock import FakeClock
from tests.support.crash import Crash
from tests.unit.driver import drain, run_graph

# These tests drive a chain by hand from its input node, which the start would otherwise run itself
pytestmark = pytest.mark.usefixtures("ordinary_start")


def plenty() -> float:
    return 250.0  # more than any test node's lease needs (the fixture's default lease is 60 s)


def node_events(publisher: RecordingPublisher, keep: bool = False) -> list[dict[str, Any]]:
    events = list(publisher.events) if keep else publisher.take()
    return [e.detail for e in events if e.detail_type == NODE_EXECUTION_QUEUED]


def start(engine: Engine, graph: dict[str, Any], inputs: dict[str, Any]) -> tuple[str, list[str]]:
    valid = validate_graph(graph)
    graph_id, version = engine.register_graph("u1", valid)
    return engine.start_execution("u1", graph_id, version, inputs).execution_id, valid.output_names


def test_a_chain_runs_in_one_invocation(engine: Engine, publisher: RecordingPublisher) -> None:
    reference = run_graph(engine, publisher, graphs.linear(), {"x": 3})
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    first = node_events(publisher)
    assert [e["node_id"] for e in first] == ["in"]
    engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    assert node_events(publisher) == []  # every child ran here: none was published
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert report["status"] == "COMPLETED"
    assert report["outputs"] == reference["outputs"] == {"result": [74.0]}
    assert report["stats"]["lambda_invocations"] == 1
    # one per node without time to chain, but `out`: `mul`'s worker ran it (executor/outputs.py)
    assert reference["stats"]["lambda_invocations"] == 3
    assert report["stats"]["events_published"] < reference["stats"]["events_published"]
    assert [n["attempts"] for n in report["nodes"]] == [1, 1, 1, 1]


def test_a_worker_short_of_time_publishes_the_child(engine: Engine, publisher: RecordingPublisher) -> None:
    left = [250.0, 250.0, 10.0]  # room for two children, then less than a child's 60 s lease

    def shrinking() -> float:
        return left.pop(0) if len(left) > 1 else left[0]

    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    engine.run_node(execution_id, "in", 0, chain=InlineChain(shrinking))
    published = node_events(publisher)
    assert [e["node_id"] for e in published] == ["mul"]  # `add` ran inline; `mul` goes out as an event
    engine.run_node(execution_id, "mul", 0)  # and `out` with it, carried ended by its finish (executor/outputs.py)
    assert node_events(publisher) == []
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})
    assert report["stats"]["lambda_invocations"] == 2


def test_fan_out_children_are_published_not_held(engine: Engine, publisher: RecordingPublisher) -> None:
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": [1, 2, 3]}, time_left=plenty)
    assert report["status"] == "COMPLETED"
    reference = run_graph(engine, publisher, graphs.fan_out(), {"items": [1, 2, 3]})
    assert sorted(report["outputs"]["squares"]) == sorted(reference["outputs"]["squares"]) == [1.0, 4.0, 9.0]
    # the single-child steps of each branch ran inline; the branches themselves went out as events
    assert 1 < report["stats"]["lambda_invocations"] < reference["stats"]["lambda_invocations"]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_event_three_times_with_chains(engine: Engine, publisher: RecordingPublisher, seed: int) -> None:
    report = run_graph(engine, publisher, graphs.diamond(), {"x": 2}, seed=seed, copies=3, time_left=plenty)
    reference = run_graph(engine, publisher, graphs.diamond(), {"x": 2})
    assert report["status"] == "COMPLETED"
    assert report["outputs"] == reference["outputs"]
    assert all(n["attempts"] == 1 for n in report["nodes"])
    assert report["stats"]["node_executions"] == reference["stats"]["node_executions"]


def test_a_held_child_is_created_claimed_and_a_duplicate_of_it_loses(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chain's child is created RUNNING for the worker by its parent's finish (no claim of its own); another
    worker that receives an event for it (say the sweeper published it) finds its lease live and loses."""
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    claims: list[str] = []
    real_claim = Store.claim_node

    def claim(self: Store, eid: str, node_id: str, *args: Any, **kwargs: Any) -> Any:
        claims.append(node_id)
        return real_claim(self, eid, node_id, *args, **kwargs)

    real_take = InlineChain.take
    raced: list[Any] = []

    def take(self: InlineChain) -> Any:
        if self.claimed is not None and not raced:  # `mul`, created by `add`'s finish (`add` takes a static link)
            raced.append(engine.run_node(execution_id, self.claimed.node_id, 0))
        return real_take(self)

    monkeypatch.setattr(Store, "claim_node", claim)
    monkeypatch.setattr(InlineChain, "take", take)
    engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    assert raced == [NodeRunOutcome.DUPLICATE]
    # `in`, then `add` (queued by its static link the ordinary way), and the duplicate's lost claim of `mul`: the
    # chain made none for `mul` nor `out`
    assert claims == ["in", "add", "mul"]
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})
    assert [n["attempts"] for n in report["nodes"]] == [1, 1, 1, 1]


def test_a_worker_that_dies_holding_a_child_is_recovered_by_the_sweeper(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    real_get = Store.get_execution
    reads: list[str] = []

    def get_execution(self: Store, eid: str) -> Any:
        reads.append(eid)
        if len(reads) == 3:  # `mul`'s read of the run, the first child created claimed (after `in`, `add`)
            raise Crash("the worker died before running the child it held")
        return real_get(self, eid)

    monkeypatch.setattr(Store, "get_execution", get_execution)
    with pytest.raises(Crash):
        engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    assert node_events(publisher) == []  # the held child was taken, never published
    mul = engine.store.get_node(execution_id, "mul", 0)
    assert mul is not None and mul.status.value == "RUNNING" and mul.attempts == 1  # created claimed
    engine.run_node(execution_id, "in", 0)  # Lambda retries the failed invocation: a duplicate now
    assert engine.run_node(execution_id, "mul", 0) is NodeRunOutcome.DUPLICATE  # its lease is still live
    clock.now += 3600  # the lease expires; the sweeper sends the child again and its receiver takes it over
    swept = engine.sweep(stale_after_seconds=60, now=clock.now)
    assert swept.republished == 1
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})
    assert next(n["attempts"] for n in report["nodes"] if n["node_id"] == "mul") == 2


def test_a_failure_while_holding_a_claimed_child_hands_it_on(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that raises (it is alive) with a claimed child held gives its claim back and publishes it."""
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)

    real_take = InlineChain.take

    def take(self: InlineChain) -> Any:
        if self.claimed is not None:
            raise RuntimeError("a bug between the parent's finish and the child's run")
        return real_take(self)

    monkeypatch.setattr(InlineChain, "take", take)
    with pytest.raises(RuntimeError):
        engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    assert [e["node_id"] for e in node_events(publisher, keep=True)] == ["mul"]
    drain(engine, publisher)  # its receiver takes the released claim over at once
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})


def test_a_stop_while_a_child_is_held_stops_the_chain(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    real_take = InlineChain.take

    def take(self: InlineChain) -> Any:
        if self.held is not None:
            engine.stop(execution_id)  # a user stops the run between the queueing of `add` and its run
        return real_take(self)

    monkeypatch.setattr(InlineChain, "take", take)
    engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    stopped = engine.store.get_execution(execution_id)
    assert stopped is not None and stopped.status is ExecutionStatus.TERMINATED
    statuses = {n.node_id: n.status.value for n in engine.store.list_nodes(execution_id)}
    assert statuses == {"in": "COMPLETED", "add": "TERMINATED"}  # `add` never ran, `mul` was never queued
    engine.resume(execution_id)
    drain(engine, publisher, time_left=plenty)
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})


def test_inline_chains_can_be_switched_off(
    moto_table: tuple[Any, str], publisher: RecordingPublisher, clock: FakeClock
) -> None:
    from agentflow.config import Settings

    client, table = moto_table
    settings = Settings(table_name=table, event_bus_name="bus", default_lease_seconds=60, inline_chains=False)
    engine = Engine(Store(client, table, clock=clock), publisher, settings)
    report = run_graph(engine, publisher, graphs.linear(), {"x": 3}, time_left=plenty)
    assert report["status"] == "COMPLETED"
    assert report["stats"]["lambda_invocations"] == 3  # one per node, but `out`, which mul's finish made (outputs.py)


def test_the_switch_reads_true_and_false() -> None:
    from agentflow.config import ConfigurationError, Settings

    base = {"TABLE_NAME": "t", "EVENT_BUS_NAME": "b"}
    assert Settings.from_env(base).inline_chains is True
    assert Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "off"}).inline_chains is False
    assert Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "TRUE"}).inline_chains is True
    with pytest.raises(ConfigurationError, match="AGENTFLOW_INLINE_CHAINS must be true or false"):
        Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "sometimes"})
