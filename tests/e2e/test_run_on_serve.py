"""e2e: `agentflow run` on a running `agentflow serve` of the same data folder (README, "The CLI"): the run goes to
the serve over its HTTP API, as the user `local`, and loads no local stack of its own; with a stale stack.json, other
settings or --redeliver it starts its own stack as before, with the same --json document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentflow_local.dynamodb import DynamoDBLocal, free_port
from agentflow_local.reuse import run_environment
from tests.support.serving import Served, serve_env, start_serve

ROOT = Path(__file__).resolve().parents[2]
CALCULATOR = ROOT / "examples" / "calculator.json"
REPORT_KEYS = {"execution_id", "status", "outputs", "error", "nodes", "stats"}
# Loaded first in the run's process: importing the local stack (DynamoDB Local, the bus, the functions) fails it
NO_PRIVATE_STACK = """
import sys

class NoPrivateStack:
    def find_spec(self, name, path=None, target=None):
        if name in ("agentflow_local.stack", "agentflow_local.bus"):
            raise ImportError(name + ": this run was to go to the running serve, not start a stack of its own")
        return None

sys.meta_path.insert(0, NoPrivateStack())
"""


@dataclass
class Stack:
    serve: Served
    local: Path  # its data folder
    table: str


@pytest.fixture(scope="module")
def served(dynamodb_local: DynamoDBLocal, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A serve with a data folder of its own (its table on the session's DynamoDB Local)."""
    local = tmp_path_factory.mktemp("reuse-local")
    table = f"reuse-{uuid.uuid4().hex[:8]}"
    serve = start_serve(serve_env(local, AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint, AGENTFLOW_TABLE=table))
    try:
        yield Stack(serve, local, table)
    finally:
        serve.interrupt()


def run_env(local: Path, table: str, **extra: str) -> dict[str, str]:
    """A shell like the serve's, without the DynamoDB endpoint the test session gave the serve."""
    env = serve_env(local, AGENTFLOW_TABLE=table, **extra)
    env.pop("AGENTFLOW_DYNAMODB_ENDPOINT", None)
    return env


def agentflow_run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "agentflow_local.cli", "run", str(CALCULATOR), "--input", "Input=8", *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


def api(url: str, key: str, path: str) -> Any:
    request = urllib.request.Request(url + path, headers={"X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_run_goes_to_the_running_serve_and_starts_no_stack(served: Stack, tmp_path: Path) -> None:
    serve = served.serve
    (tmp_path / "sitecustomize.py").write_text(NO_PRIVATE_STACK)
    java_free_path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "java").exists())
    env = run_env(served.local, served.table, PYTHONPATH=str(tmp_path), PATH=java_free_path)

    done = agentflow_run(env, "--json")
    assert done.returncode == 0, done.stderr
    assert f"agentflow: running on the agentflow serve at {serve.url}" in done.stderr
    report = json.loads(done.stdout)  # the same one document as on a stack of its own
    assert set(report) == REPORT_KEYS and report["status"] == "COMPLETED"
    assert report["outputs"] == {"Output": [42.0]}
    assert report["stats"]["node_executions"] == 3 and report["stats"]["dynamodb_requests"] > 0
    assert len(report["nodes"]) == 3 and all(n["status"] == "COMPLETED" for n in report["nodes"])

    # the serve ran it, for the user `local`, whose key the run keeps beside the dev key
    key_file = served.local / "run-api-key"
    assert key_file.stat().st_mode & 0o077 == 0
    key = key_file.read_text().strip()
    execution_id = report["execution_id"]
    graph_id = api(serve.url, key, f"/executions/{execution_id}")["graph_id"]
    listed = api(serve.url, key, f"/graphs/{graph_id}/executions")["executions"]
    assert [r["execution_id"] for r in listed] == [execution_id]
    assert key not in done.stdout + done.stderr

    human = agentflow_run(env)  # again, with the kept key, and as people read it
    assert human.returncode == 0, human.stderr
    assert human.stdout.splitlines()[-2:] == ["outputs:", "  Output: 42.0"]


def test_other_settings_or_redeliver_keep_a_stack_of_their_own(served: Stack) -> None:
    other = agentflow_run(run_env(served.local, served.table, OPENAI_API_KEY="sk-not-the-serve-s"), "--json")
    assert other.returncode == 0, other.stderr
    assert f"the serve at {served.serve.url} runs with other settings (OPENAI_API_KEY)" in other.stderr
    assert "sk-not-the-serve-s" not in other.stderr
    assert json.loads(other.stdout)["outputs"] == {"Output": [42.0]}

    redelivered = agentflow_run(run_env(served.local, served.table), "--redeliver", "1", "--json")
    assert redelivered.returncode == 0, redelivered.stderr
    assert "running on the agentflow serve" not in redelivered.stderr
    report = json.loads(redelivered.stdout)
    assert report["outputs"] == {"Output": [42.0]} and report["stats"]["node_executions"] == 3


@pytest.mark.parametrize("dead", [True, False], ids=["dead-process", "no-answer"])
def test_a_stale_stack_file_falls_back_to_a_stack_of_its_own(
    dead: bool, dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    if dead:
        gone = subprocess.Popen(["true"])
        gone.wait()
        pid, endpoint = gone.pid, "http://127.0.0.1:1"  # a dead serve: its endpoint is never used
    else:
        pid, endpoint = os.getpid(), dynamodb_local.endpoint  # a live process whose API does not answer
    local = tmp_path / "local"
    local.mkdir()
    env = run_env(local, f"stale-{uuid.uuid4().hex[:8]}")
    state = {"pid": pid, "dynamodb_endpoint": endpoint, "api_url": closed, "environment": run_environment(env)}
    (local / "stack.json").write_text(json.dumps(state))
    done = agentflow_run(env, "--json")
    assert done.returncode == 0, done.stderr
    assert "agentflow: not using a running serve: " in done.stderr
    reason = f"process {pid} is not running" if dead else f"the serve at {closed} does not answer: cannot reach"
    assert reason in done.stderr and "; starting a local stack" in done.stderr
    report = json.loads(done.stdout)
    assert set(report) == REPORT_KEYS and report["outputs"] == {"Output": [42.0]}
