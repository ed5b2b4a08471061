"""template.yaml, the one source of wiring, read the way the local stack reads it.

`sam validate --lint` and `sam build` run from the Makefile (they need the tools venv), not from pytest.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentflow.events import NODE_EXECUTION_QUEUED, SOURCE
from agentflow_local.bus import event_matches, validate_pattern
from agentflow_local.template import AppTemplate, load_template, resolve_environment

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> AppTemplate:
    return load_template(ROOT / "template.yaml")


def test_template_loads_with_the_node_executor(template: AppTemplate) -> None:
    spec = template.functions["NodeExecutorFunction"]
    assert spec.handler_path.is_file(), f"{spec.handler_path} is missing"
    assert spec.handler_path == ROOT / "functions" / "node_executor" / "app.py"
    assert spec.timeout == 300
    for pattern in (rule.pattern for _, rule in template.event_targets()):
        validate_pattern(pattern)


def test_node_executor_rule_matches_only_node_execution_queued(template: AppTemplate) -> None:
    [rule] = template.functions["NodeExecutorFunction"].event_rules
    assert rule.bus == "EventBus"
    queued = {"source": SOURCE, "detail-type": NODE_EXECUTION_QUEUED, "detail": {"execution_id": "e"}}
    assert event_matches(rule.pattern, queued)
    for other in ({**queued, "detail-type": "ExecutionStatusChanged"}, {**queued, "source": "someone.else"}):
        assert not event_matches(rule.pattern, other)
    assert [spec.logical_id for spec, _ in template.rules_for(SOURCE, NODE_EXECUTION_QUEUED)] == [
        "NodeExecutorFunction"
    ]


def test_every_function_environment_resolves_with_the_local_refs(template: AppTemplate) -> None:
    from agentflow_local.queues import LocalQueues
    from agentflow_local.stack import local_refs

    refs = local_refs("agentflow", "agentflow-local-bus", template.parameter_defaults())
    queues = LocalQueues(template, clock=lambda: 0.0, serve_http=False)
    refs.update(queues.refs())
    for spec in template.functions.values():
        env = resolve_environment(spec.environment, refs)
        assert env["TABLE_NAME"] == "agentflow"
        assert env["EVENT_BUS_NAME"] == "agentflow-local-bus"
        assert env["AGENTFLOW_RETENTION_DAYS"] == "30"  # the RetentionDays parameter's default
        assert env["AGENTFLOW_HTTP_ALLOW_HOSTS"] == ""  # the guard has no holes unless a deployer makes one
        if "RETRY_QUEUE_URL" in env:
            assert env["RETRY_QUEUE_URL"] == queues.refs()["RetryQueue"]


def test_table_matches_the_design(template: AppTemplate) -> None:
    table = template.resources["Table"]
    props = table["Properties"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert {k["AttributeName"]: k["KeyType"] for k in props["KeySchema"]} == {"PK": "HASH", "SK": "RANGE"}
    indexes = {g["IndexName"]: g for g in props["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"GSI1", "GSI2"}  # listings; unfinished executions for the sweeper
    assert [k["AttributeName"] for k in indexes["GSI2"]["KeySchema"]] == ["GSI2PK", "GSI2SK"]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_sample_events_are_json() -> None:
    # One test over the folder rather than one per file: the folder may still be empty.
    for path in sorted((ROOT / "events").glob("**/*.json")):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            pytest.fail(f"{path.relative_to(ROOT)} is not JSON: {exc}")
