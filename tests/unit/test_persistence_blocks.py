"""PersistInformationBlock and RetrieveInformationBlock through the engine on moto: values outlive the run that
stored them, `within_agent` is per graph, `across_agents` per user, other users never see them, and falsy values
come back as stored (where AutoGPT reads them back as missing)."""

from __future__ import annotations

from typing import Any

import pytest

from agentflow.events import RecordingPublisher
from agentflow.executor import Engine
from agentflow.graph import GraphValidationError, validate_graph
from agentflow.reports import execution_report
from tests.graphs import GraphBuilder
from tests.unit.driver import drain


def persist(key: str, value: Any, scope: str = "within_agent") -> dict[str, Any]:
    return (
        GraphBuilder("persist")
        .node("put", "PersistInformationBlock", key=key, value=value, scope=scope)
        .output("out", "stored")
        .link("put", "value", "out", "value")
        .build()
    )


def retrieve(key: str, scope: str = "within_agent", default: Any = None) -> dict[str, Any]:
    return (
        GraphBuilder("retrieve")
        .node("get", "RetrieveInformationBlock", key=key, scope=scope, default_value=default)
        .output("out", "value")
        .link("get", "value", "out", "value")
        .build()
    )


def run(engine: Engine, publisher: RecordingPublisher, user: str, graph_id: str, graph: dict[str, Any]) -> Any:
    valid = validate_graph(graph)
    _, version = engine.register_graph(user, valid, graph_id=graph_id)
    execution_id = engine.start_execution(user, graph_id, version, {}).execution_id
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id, valid.output_names)
    assert report is not None and report["status"] == "COMPLETED", report and report["error"]
    [value] = next(iter(report["outputs"].values()))
    return value


@pytest.mark.parametrize("value", [{"a": [1, 2]}, "text", 3.5, 0, False, "", [], {}], ids=repr)
def test_a_value_persisted_by_one_run_is_retrieved_by_a_later_one(
    engine: Engine, publisher: RecordingPublisher, value: Any
) -> None:
    assert run(engine, publisher, "u1", "g1", persist("k", value)) == value
    assert run(engine, publisher, "u1", "g1", retrieve("k", default="missing")) == value


def test_within_agent_is_per_graph_and_across_agents_per_user(engine: Engine, publisher: RecordingPublisher) -> None:
    run(engine, publisher, "u1", "g1", persist("k", "mine"))
    run(engine, publisher, "u1", "g1", persist("k", "everyone's", scope="across_agents"))
    assert run(engine, publisher, "u1", "g2", retrieve("k", default="none")) == "none"  # another graph
    assert run(engine, publisher, "u1", "g2", retrieve("k", scope="across_agents")) == "everyone's"
    assert run(engine, publisher, "u1", "g1", retrieve("k")) == "mine"  # scopes do not collide
    assert run(engine, publisher, "u2", "g1", retrieve("k", default="none")) == "none"  # another user
    assert run(engine, publisher, "u2", "g1", retrieve("k", scope="across_agents", default="none")) == "none"


def test_the_last_writer_wins(engine: Engine, publisher: RecordingPublisher) -> None:
    run(engine, publisher, "u1", "g1", persist("k", 1))
    run(engine, publisher, "u1", "g1", persist("k", 2))
    assert run(engine, publisher, "u1", "g1", retrieve("k")) == 2


def test_a_missing_key_yields_the_default_and_a_null_value_is_refused(
    engine: Engine, publisher: RecordingPublisher
) -> None:
    assert run(engine, publisher, "u1", "g1", retrieve("nothing")) is None
    with pytest.raises(GraphValidationError, match="'value'"):  # null is "not given": refused at validation
        validate_graph(persist("k", None))
