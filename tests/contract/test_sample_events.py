"""Every sample event under events/<function folder>/ is accepted by that function's handler
(what `sam local invoke -e events/...` would feed it), and a malformed one is refused."""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentflow_local.dynamodb import ensure_table
from agentflow_local.lambda_runtime import FakeLambdaContext, load_handler
from agentflow_local.template import FunctionSpec, load_template
from tests import graphs
from tests.conftest import table_properties

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
SAMPLES = sorted((ROOT / "events").glob("*/*.json"))


def function_for(sample: Path) -> FunctionSpec:
    for spec in TEMPLATE.functions.values():
        if spec.code_dir.name == sample.parent.name:
            return spec
    raise AssertionError(f"{sample}: no function in template.yaml has its code in functions/{sample.parent.name}/")


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", "agentflow-contract")
    monkeypatch.setenv("EVENT_BUS_NAME", "agentflow-contract-bus")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "agentflow")
    monkeypatch.setenv("SCHEDULE_GROUP_NAME", "agentflow-contract-schedules")
    monkeypatch.setenv("SCHEDULED_RUN_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:scheduled-run")
    monkeypatch.setenv("SCHEDULER_ROLE_ARN", "arn:aws:iam::123456789012:role/agentflow-contract-scheduler")
    monkeypatch.delenv("AGENTFLOW_SCHEDULER", raising=False)
    monkeypatch.delenv("AGENTFLOW_CREDENTIALS_KEY_FILE", raising=False)
    with mock_aws():
        key = boto3.client("kms").create_key(Description="credentials")["KeyMetadata"]["Arn"]
        monkeypatch.setenv("AGENTFLOW_CREDENTIALS_KEY_ID", key)
        ensure_table(boto3.client("dynamodb"), "agentflow-contract", table_properties())
        boto3.client("events").create_event_bus(Name="agentflow-contract-bus")
        boto3.client("scheduler").create_schedule_group(Name="agentflow-contract-schedules")
        yield


def test_every_function_has_a_sample_event() -> None:
    folders = {p.parent.name for p in SAMPLES}
    for spec in TEMPLATE.functions.values():
        assert spec.code_dir.name in folders, f"{spec.logical_id} has no sample under events/{spec.code_dir.name}/"


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_sample_event_is_accepted(aws: None, sample: Path) -> None:
    spec = function_for(sample)
    handler = load_handler(spec)
    event: dict[str, Any] = json.loads(sample.read_text())
    if spec.code_dir.name == "node_executor":
        # point the sample at a real execution so the handler runs the node end to end
        module = inspect.unwrap(handler).__globals__
        engine = module["ENGINE"]
        from agentflow.graph import validate_graph

        graph_id, version = engine.register_graph("u1", validate_graph(graphs.linear()))
        execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
        # `add` is the first node queued: the start ran `in` itself (executor/start_inputs.py)
        event["detail"] = {"execution_id": execution_id, "node_id": "add", "seq": 0}
        result = handler(event, FakeLambdaContext.for_function(spec))
        assert result["outcome"] == "completed"
        # with its lease time left, the invocation ran the chain add -> mul -> out itself
        assert result["node_executions"] == 3
        # out ran in mul's finish, which carries it (docs/architecture.md, "Output nodes run by their sender")
        assert [o.node_id for o in engine.store.list_outputs(execution_id, ["out"], ["mul"])] == ["out"]
        assert engine.store.get_execution(execution_id).status == "COMPLETED"
    elif spec.code_dir.name == "node_retry":
        # a delayed attempt of a real node execution: attempt 1 of a node nobody claimed yet runs it, once
        engine = inspect.unwrap(handler).__globals__["ENGINE"]
        from agentflow.graph import validate_graph

        graph_id, version = engine.register_graph("u1", validate_graph(graphs.linear()))
        execution_id = engine.start_execution("u1", graph_id, version, {"x": 1}).execution_id
        assert engine.store.get_node(execution_id, "add", 0).status == "QUEUED"  # the start ran `in`
        body = {"execution_id": execution_id, "node_id": "add", "seq": 0, "attempt": 1}
        event["Records"][0]["body"] = json.dumps(body)
        assert handler(event, FakeLambdaContext.for_function(spec)) == {"batchItemFailures": []}
        assert engine.store.get_node(execution_id, "add", 0).status == "COMPLETED"
        assert engine.store.get_node(execution_id, "mul", 0).status == "QUEUED"  # made by add's finish
        handler(event, FakeLambdaContext.for_function(spec))  # delivered again: the attempt does not run twice
        assert engine.store.get_node(execution_id, "add", 0).attempts == 1
    elif spec.code_dir.name == "webhook":
        engine = inspect.unwrap(handler).__globals__["ENGINE"]
        response = handler(webhook_sample_world(engine, event), FakeLambdaContext.for_function(spec))
        assert response["statusCode"] == 202, response.get("body")
        answer = json.loads(response["body"])
        assert answer["started"] and answer["created"]
        tampered = {**event, "body": event["body"].replace("Ada", "Eve")}
        assert handler(tampered, FakeLambdaContext.for_function(spec))["statusCode"] == 401
    elif spec.code_dir.name == "scheduled_run":
        engine = inspect.unwrap(handler).__globals__["ENGINE"]
        from agentflow.graph import validate_graph

        graph_id, _ = engine.register_graph("sample-user", validate_graph(graphs.linear()))
        engine.store.put_schedule(
            {
                "schedule_id": event["schedule_id"],
                "user_id": "sample-user",
                "graph_id": graph_id,
                "name": "s",
                "cron": "0 9 * * *",
                "timezone": "UTC",
                "aws_expression": "cron(0 9 * * ? *)",
                "inputs": '{"x": 1}',
            }
        )
        first = handler(event, FakeLambdaContext.for_function(spec))
        again = handler(event, FakeLambdaContext.for_function(spec))
        assert first["started"] and first["created"] and not again["created"]
        assert again["execution_id"] == first["execution_id"]
    elif spec.code_dir.name == "api":
        engine = inspect.unwrap(handler).__globals__["app"]._agentflow_engine
        response = handler(api_sample_world(engine, event), FakeLambdaContext.for_function(spec))
        assert response["statusCode"] == API_EXPECTED[sample.stem], (sample.stem, response.get("body"))
    else:
        handler(event, FakeLambdaContext.for_function(spec))


SAMPLE_KEY = "af_sample-key-for-events-only"
SAMPLE_GRAPH = "5b3e0c1e-8d7a-4c2b-9f1e-2a3b4c5d6e7f"
SAMPLE_EXECUTION = "9c8b7a6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
API_EXPECTED = {
    "get_openapi": 200,
    "get_docs": 200,
    "get_ui": 200,  # the web page and its files: public, no key (agentflow.api.pages)
    "get_ui_path": 200,
    "list_blocks": 200,
    "create_graph": 201,
    "validate_graph": 200,
    "list_graphs": 200,
    "get_graph": 200,
    "update_graph": 200,
    "delete_graph": 200,
    "list_versions": 200,
    "set_active_version": 200,
    "execute_graph": 202,
    "list_executions": 200,
    "get_execution": 200,
    "stop_execution": 200,
    "resume_execution": 409,
    "redrive_execution": 409,  # the sample run is not FAILED
    "list_reviews": 200,
    "get_review": 404,  # the sample run has no review node
    "decide_review": 404,
    "execution_events": 200,
    "create_webhook": 201,
    "list_webhooks": 200,
    "delete_webhook": 200,
    "rotate_webhook": 200,
    "create_schedule": 201,
    "list_schedules": 200,
    "delete_schedule": 200,
    "create_credential": 201,
    "list_credentials": 200,
    "get_credential": 200,
    "delete_credential": 200,
}
SAMPLE_CREDENTIAL = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
SAMPLE_SCHEDULE = "4d2c1b0a99887766554433221100ffee"
SAMPLE_WEBHOOK = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SAMPLE_SECRET = "whsec_sample-secret-for-events-only"


def seed_webhook(engine: Any, graph_id: str | None = None) -> str:
    from agentflow.graph import validate_graph

    graph = validate_graph((ROOT / "examples" / "webhooks" / "greet_on_webhook.json").read_text())
    graph_id, _ = engine.register_graph("sample-user", graph, graph_id=graph_id)
    engine.store.put_webhook(
        {
            "webhook_id": SAMPLE_WEBHOOK,
            "user_id": "sample-user",
            "graph_id": graph_id,
            "node_id": "hook",
            "provider": "generic",
            "secret": SAMPLE_SECRET,
        }
    )
    return str(graph_id)


def webhook_sample_world(engine: Any, event: dict[str, Any]) -> dict[str, Any]:
    seed_webhook(engine)
    return event


def api_sample_world(engine: Any, event: dict[str, Any]) -> dict[str, Any]:
    """Seed what the samples refer to: the sample key's user, its graph, and one execution (whose real id is
    put in the event, since ids are generated)."""
    from agentflow.api.auth import hash_key
    from agentflow.graph import validate_graph

    engine.store.put_api_key(hash_key(SAMPLE_KEY), "sample-user", "sample")
    graph = validate_graph((ROOT / "examples" / "calculator.json").read_text())
    engine.register_graph("sample-user", graph, graph_id=SAMPLE_GRAPH)
    if event["resource"] == "/schedules/{schedule_id}":  # the sample deletes an existing schedule
        engine.store.put_schedule(
            {
                "schedule_id": SAMPLE_SCHEDULE,
                "user_id": "sample-user",
                "graph_id": SAMPLE_GRAPH,
                "name": "s",
                "cron": "0 9 * * *",
                "timezone": "UTC",
                "aws_expression": "cron(0 9 * * ? *)",
                "inputs": "{}",
            }
        )
    if "/webhooks" in event["resource"]:  # webhook routes need a graph with a trigger block, and one webhook
        seed_webhook(engine, SAMPLE_GRAPH)
    execution_id = engine.start_execution("sample-user", SAMPLE_GRAPH, 1, {"Input": 1}).execution_id
    text = json.dumps(event).replace(SAMPLE_EXECUTION, execution_id)
    if event["resource"] == "/credentials/{credential_id}":  # the samples read and delete an existing credential
        from agentflow.credentials.validation import NewCredential

        created = engine.credentials.create("sample-user", NewCredential(provider="openai", api_key="sk-sample-1234"))
        text = text.replace(SAMPLE_CREDENTIAL, created.credential_id)
    return json.loads(text)  # type: ignore[no-any-return]


def test_malformed_node_event_is_refused(aws: None) -> None:
    spec = function_for(ROOT / "events" / "node_executor" / "x.json")
    handler = load_handler(spec)
    event = json.loads((ROOT / "events" / "node_executor" / "node_execution_queued.json").read_text())
    del event["detail"]["node_id"]
    with pytest.raises(Exception, match="node_id"):
        handler(event, FakeLambdaContext.for_function(spec))


def test_every_api_route_has_a_sample() -> None:
    routes = {(r.method, r.path) for spec in TEMPLATE.functions.values() for r in spec.api_routes}
    sampled = set()
    for path in [*(ROOT / "events" / "api").glob("*.json"), *(ROOT / "events" / "webhook").glob("*.json")]:
        event = json.loads(path.read_text())
        sampled.add((event["httpMethod"], event["resource"]))
    assert routes == sampled
