"""What the local stack promises its user: machine-readable output stays machine-readable (metrics go to a file,
never to stdout or the terminal), and a crash loses nothing and recovers at once on restart."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from agentflow_local.dynamodb import DynamoDBLocal, dynamodb_local_pids
from tests import graphs
from tests.support.serving import ROOT, serve_env, start_serve, wait_until

ITEMS_FOR_150 = 74  # input + step + 74 squares + 74 outputs = 150 node executions


def emf_documents(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def node_executions_counted(documents: list[dict[str, Any]]) -> float:
    counted = 0.0
    for doc in documents:
        value = doc.get("NodeExecutions")
        if value is not None:
            counted += sum(value) if isinstance(value, list) else value
    return counted


def test_run_json_is_one_document_and_metrics_go_to_the_local_file(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    graph = tmp_path / "fan-out.json"
    graph.write_text(json.dumps(graphs.fan_out()))
    env = serve_env(tmp_path / "local", AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint)
    inputs = json.dumps({"items": list(range(ITEMS_FOR_150))})
    done = subprocess.run(
        [sys.executable, "-m", "agentflow_local.cli", "run", str(graph), "--json", "--inputs", inputs],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert report["stats"]["node_executions"] == 150
    assert '"_aws"' not in done.stderr and "No application metrics" not in done.stderr
    documents = emf_documents(tmp_path / "local" / "metrics.jsonl")
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "agentflow" for doc in documents)
    # each invocation's metrics, none lost, none twice; the input node was run by the start (ApiFunction), not by one
    assert node_executions_counted(documents) == 150 - 1


def test_serve_terminal_shows_no_metrics(dynamodb_local: DynamoDBLocal, tmp_path: Path) -> None:
    env = serve_env(tmp_path / "local", AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint)
    served = start_serve(env)
    try:
        assert any(str(tmp_path / "local" / "metrics.jsonl") in line for line in served.output)  # it says where
        status, created = served.call("POST", "/graphs", graphs.fan_out())
        assert status == 201, created
        status, started = served.call(
            "POST", f"/graphs/{created['graph_id']}/execute", {"inputs": {"items": list(range(ITEMS_FOR_150))}}
        )
        assert status == 202, started

        def finished() -> bool:
            answer = served.call("GET", f"/executions/{started['execution_id']}")[1]
            return bool(answer["status"] == "COMPLETED")

        wait_until(finished, 180, "the run to complete")
        metrics = tmp_path / "local" / "metrics.jsonl"
        # the last invocation flushes its metrics just after its run completed
        # (the input node was run by the start, not by an invocation: executor/start_inputs.py)
        wait_until(lambda: node_executions_counted(emf_documents(metrics)) >= 149, 30, "every invocation's metrics")
        assert node_executions_counted(emf_documents(metrics)) == 149
    finally:
        assert served.interrupt() == 0
    terminal = "".join(served.output)
    assert '"_aws"' not in terminal and "No application metrics" not in terminal, terminal


def test_a_killed_stack_leaves_no_orphan_and_its_runs_go_on_at_once(tmp_path: Path) -> None:
    local = tmp_path / "local"
    data = local / "dynamodb"
    env = serve_env(local)  # its own DynamoDB Local on its own data folder, as `make run` has it
    items = list(range(120))
    served = start_serve(env)
    status, created = served.call("POST", "/graphs", graphs.fan_out())
    assert status == 201, created
    status, started = served.call("POST", f"/graphs/{created['graph_id']}/execute", {"inputs": {"items": items}})
    assert status == 202, started
    execution_id = started["execution_id"]

    def some_outputs() -> bool:
        answer = served.call("GET", f"/executions/{execution_id}")[1]
        return bool(answer["outputs"].get("squares")) and answer["status"] == "RUNNING"

    wait_until(some_outputs, 120, "the fan-out to be midway")
    served.kill_group()  # a crash: no cleanup runs
    assert dynamodb_local_pids(data), "DynamoDB Local runs in its own session: the crash left it as an orphan"

    restarted_at = time.monotonic()
    served = start_serve(env)
    try:
        orphans = dynamodb_local_pids(data)
        assert len(orphans) == 1  # only the new one: the orphan was ended
        assert served.process.pid not in orphans

        def completed() -> dict[str, Any] | None:
            answer = served.call("GET", f"/executions/{execution_id}")[1]
            return answer if answer["status"] == "COMPLETED" else None

        answer = wait_until(completed, 30 - (time.monotonic() - restarted_at), "the run to complete after restart")
        squares = answer["outputs"]["squares"]
        assert sorted(squares) == sorted(float(i * i) for i in items)  # every output exactly once
        assert "recovered" in "".join(served.output)  # the banner says what the start-up sweep moved on
    finally:
        assert served.interrupt() == 0
    assert dynamodb_local_pids(data) == []  # Ctrl-C leaves nothing of that data folder behind
    assert not os.path.exists(data / "dynamodb-local.pid")
