"""Chains run inline (docs/architecture.md, "Chains"): a worker with time left runs a node's single ready child
itself instead of publishing its event. The claim is the same conditional write, so duplicates still lose; a
worker that dies holding a child leaves a QUEUED node the sweeper publishes; a stop still stops the chain."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor.inline import InlineChain
from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow.store import Store
from tests import graphs
from tests.support.clock import FakeClock
from tests.support.crash import Crash
from tests.unit.driver import drain, run_graph


def plenty() -> float:
    return 250.0  # more than any test node's lease needs (the fixture's default lease is 60 s)


def node_events(publisher: RecordingPublisher) -> list[dict[str, Any]]:
    return [e.detail for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]


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
    assert reference["stats"]["lambda_invocations"] == 4  # one per node without time to chain
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
    engine.run_node(execution_id, "mul", 0)
    drain(engine, publisher)  # `out`, published by `mul`'s worker (no time given: no chain)
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})
    assert report["stats"]["lambda_invocations"] == 3


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


def test_a_duplicate_of_a_held_child_loses_its_claim(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker claims the held child first (say the sweeper published it): the chain's claim loses."""
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    real_claim = Store.claim_node
    raced: list[str] = []

    def claim(self: Store, eid: str, node_id: str, seq: int, *args: Any, **kwargs: Any) -> Any:
        if node_id == "add" and not raced:
            raced.append(node_id)
            engine.run_node(eid, node_id, seq)  # the other worker runs `add` (and publishes `mul`)
        return real_claim(self, eid, node_id, seq, *args, **kwargs)

    monkeypatch.setattr(Store, "claim_node", claim)
    engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id, outputs)
    assert report is not None
    assert (report["status"], report["outputs"]) == ("COMPLETED", {"result": [74.0]})
    assert [n["attempts"] for n in report["nodes"]] == [1, 1, 1, 1]


def test_a_worker_that_dies_holding_a_child_is_recovered_by_the_sweeper(
    engine: Engine, publisher: RecordingPublisher, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id, outputs = start(engine, graphs.linear(), {"x": 3})
    node_events(publisher)
    real_claim = Store.claim_node

    def claim(self: Store, eid: str, node_id: str, *args: Any, **kwargs: Any) -> Any:
        if node_id == "add":
            raise Crash("the worker died before claiming the child it held")
        return real_claim(self, eid, node_id, *args, **kwargs)

    monkeypatch.setattr(Store, "claim_node", claim)
    with pytest.raises(Crash):
        engine.run_node(execution_id, "in", 0, chain=InlineChain(plenty))
    monkeypatch.undo()
    assert node_events(publisher) == []  # the held child was taken, never published
    engine.run_node(execution_id, "in", 0)  # Lambda retries the failed invocation: a duplicate now
    assert node_events(publisher) == []
    clock.now += 3600
    swept = engine.sweep(stale_after_seconds=60, now=clock.now)
    assert swept.republished == 1
    drain(engine, publisher)
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
    assert report["stats"]["lambda_invocations"] == 4


def test_the_switch_reads_true_and_false() -> None:
    from agentflow.config import ConfigurationError, Settings

    base = {"TABLE_NAME": "t", "EVENT_BUS_NAME": "b"}
    assert Settings.from_env(base).inline_chains is True
    assert Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "off"}).inline_chains is False
    assert Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "TRUE"}).inline_chains is True
    with pytest.raises(ConfigurationError, match="AGENTFLOW_INLINE_CHAINS must be true or false"):
        Settings.from_env({**base, "AGENTFLOW_INLINE_CHAINS": "sometimes"})
