"""A fan-out's values to a sink that needs nothing else: the slots are created queued, many per transaction
(docs/architecture.md, "Fan-outs"); when a batch is refused (a stop, the node limit near, a replay) the values go
one by one, with the same outcome as before."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.executor import propagation as propagation_module
from agentflow.reports import execution_report
from agentflow.store import Store
from tests import graphs
from tests.unit.driver import drain, run_graph

ITEMS = [1, 2, 3, 4, 5]
SQUARES = sorted(float(i * i) for i in ITEMS)
NODES = 2 + 2 * len(ITEMS)  # in, step, then a square and an output per item


def count_calls(monkeypatch: pytest.MonkeyPatch, *names: str) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {name: [] for name in names}
    for name in names:
        real = getattr(Store, name)

        def counted(self: Store, *args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            result = _real(self, *args, **kwargs)
            calls[_name].append(result)
            return result

        monkeypatch.setattr(Store, name, counted)
    return calls


@pytest.mark.parametrize(("seed", "copies"), [(None, 1), (7, 3)], ids=["in-order", "shuffled-3x"])
def test_the_slots_are_created_queued_in_batches(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch, seed: int | None, copies: int
) -> None:
    monkeypatch.setattr(propagation_module, "CREATE_BATCH", 2)
    calls = count_calls(monkeypatch, "create_slots", "fill_reserved")
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": ITEMS}, seed=seed, copies=copies)
    assert report["status"] == "COMPLETED", report["error"]
    assert sorted(report["outputs"]["squares"]) == SQUARES
    assert report["stats"]["node_executions"] == NODES
    assert calls["create_slots"][:3] == [True, True, True]  # 2 + 2 + 1 slots
    if copies == 1:
        assert calls["fill_reserved"] == []  # only a duplicate event's replay fills
    squares = sorted(n["seq"] for n in report["nodes"] if n["node_id"] == "square")
    assert squares == list(range(1, len(ITEMS) + 1))  # from 1: `square` has one source (ValidGraph.sole_source_sinks)


def test_near_the_node_limit_the_values_go_one_by_one_and_stop_exactly_at_it(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(monkeypatch, "create_slots", "fill_reserved")
    graph = {**graphs.fan_out(), "node_execution_limit": 5}  # in, step, then room for 3 squares of 5
    report = run_graph(engine, publisher, graph, {"items": ITEMS})
    assert report["status"] == "FAILED"
    assert "node_execution_limit=5" in report["error"]
    assert report["stats"]["node_executions"] == 5
    assert calls["create_slots"] == [False]  # refused whole: nothing of it written
    assert len(calls["fill_reserved"]) == 4  # three queued, the fourth hit the limit


def test_a_stop_refuses_the_batch_and_a_resume_runs_every_item_once(
    engine: Engine, publisher: RecordingPublisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Store.create_slots
    stopped: list[str] = []

    def stop_first(self: Store, execution_id: str, *args: Any) -> bool:
        if not stopped:
            stopped.append(execution_id)
            engine.stop(execution_id)  # the user stops the run while the fan-out delivers
        return real(self, execution_id, *args)

    monkeypatch.setattr(Store, "create_slots", stop_first)
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": ITEMS})
    assert report["status"] == "TERMINATED"
    assert not [n for n in report["nodes"] if n["node_id"] == "square" and n["status"] != "INCOMPLETE"]
    engine.resume(stopped[0])
    drain(engine, publisher)
    done = execution_report(engine.store, stopped[0], ["squares"])
    assert done is not None and done["status"] == "COMPLETED", done["error"]
    assert sorted(done["outputs"]["squares"]) == SQUARES
    assert done["stats"]["node_executions"] == NODES
