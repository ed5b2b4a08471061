"""A run's recorded outputs live on its output nodes' items, marked by their finish (docs/architecture.md,
"Recorded outputs"): no item of their own, the value kept once; runs recorded with the former `OUT#` items still
read whole, in the order they were recorded."""

from __future__ import annotations

from typing import Any

from agentflow import keys
from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.reports import execution_report
from agentflow.store.dynamo import serialize
from tests import graphs
from tests.unit.driver import run_graph


def run_items(engine: Engine, execution_id: str) -> list[dict[str, Any]]:
    return engine.store._query(keys.execution_pk(execution_id), None)


def test_outputs_are_marked_on_their_node_items_and_have_no_item_of_their_own(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    report = run_graph(engine, publisher, graphs.fan_out(), {"items": [1, 2, 3]})
    assert report["status"] == "COMPLETED"
    assert sorted(report["outputs"]["squares"]) == [1.0, 4.0, 9.0]
    items = run_items(engine, report["execution_id"])
    assert not [i["SK"] for i in items if str(i["SK"]).startswith(keys.OUTPUT_PREFIX)]
    # each square ran its output node, whose execution its item carries (executor/outputs.py)
    squares = [i for i in items if str(i["SK"]).startswith(keys.node_prefix("square"))]
    outs = [i[keys.CARRIED_OUTPUT] for i in squares]
    assert len(outs) == 3 and all(o["output_name"] == "squares" and o["recorded_at"] for o in outs)
    others = [i for i in items if str(i["SK"]).startswith(keys.node_prefix())]
    assert others and not any("recorded_at" in i for i in others)  # only output nodes record


def test_a_big_output_value_is_kept_once_on_its_node_item(engine: Engine, publisher: RecordingPublisher) -> None:
    graph = graphs.GraphBuilder("echo").input("in", "text").output("out", "copy").link("in", "result", "out", "value")
    value = "x" * 90_000  # each copy of a value up to 300 KB on one item takes DynamoDB's 400 KB closer
    report = run_graph(engine, publisher, graph.build(), {"text": value})
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"copy": [value]}
    (out,) = [i for i in run_items(engine, report["execution_id"]) if i["SK"] == keys.node_sk("out", 0)]
    assert sum(len(str(v)) for v in out.values()) < 2 * len(value)


def test_outputs_recorded_as_items_of_their_own_are_still_read_in_order(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    report = run_graph(engine, publisher, graphs.linear(), {"x": 1})
    assert report["outputs"] == {"result": [70.0]}
    execution_id = report["execution_id"]
    (new,) = engine.store.list_outputs(execution_id, ["out"], ["mul"])  # mul ran out, and carries it
    older = {
        "name": "result",
        "value": "1.5",
        "recorded_at": "2000-01-01T00:00:00.000Z",  # before the node's own: it comes first
        "node_id": "out",
        "seq": 7,
    }
    item = {"PK": keys.execution_pk(execution_id), "SK": f"{keys.OUTPUT_PREFIX}out#7", **older}
    engine.store._call("put_item", TableName=engine.store.table, Item={k: serialize(v) for k, v in item.items()})

    listed = engine.store.list_outputs(execution_id, ["out"], ["mul"])
    assert [(o.name, o.value, o.seq) for o in listed] == [("result", "1.5", 7), ("result", new.value, 0)]
    again = execution_report(engine.store, execution_id, ["result"])
    assert again is not None and again["outputs"] == {"result": [1.5, 70.0]}
