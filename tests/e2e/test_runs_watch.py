"""e2e: `agentflow runs watch EID` against a real `agentflow serve` over HTTP (README, "The terminal client"): it
follows a run to its end, prints its outputs, exits as `agentflow run` does, and --json is one document, the one
`execute --wait --json` prints. Off a terminal its progress is a few plain lines on stderr. Every request stays on
127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentflow_local.dynamodb import free_port
from tests import graphs
from tests.conftest import ApiServer

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ("AGENTFLOW_URL", "AGENTFLOW_API_KEY", "AGENTFLOW_CONFIG")


@dataclass
class Watcher:
    server: ApiServer
    key: str
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in self.server.env.items() if k not in SETTINGS}
        env |= {"AGENTFLOW_CONFIG": str(self.tmp / "no-config.json"), "AGENTFLOW_URL": self.server.url}
        env |= {"AGENTFLOW_API_KEY": self.key, **extra}
        return env

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "agentflow_local.cli", *args],
            cwd=ROOT,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert self.key not in done.stdout + done.stderr  # no command prints a key
        return done

    def api(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.server.url + path, data=data, method=method, headers={"X-API-Key": self.key}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def start(self, graph: dict[str, Any], inputs: dict[str, Any]) -> str:
        graph_id = self.api("POST", "/graphs", graph)["graph_id"]
        execution_id: str = self.api("POST", f"/graphs/{graph_id}/execute", {"inputs": inputs})["execution_id"]
        return execution_id


@pytest.fixture(scope="module")
def watcher(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Watcher:
    key = api_server.create_key(f"watch-{uuid.uuid4().hex[:8]}")
    return Watcher(api_server, key, tmp_path_factory.mktemp("watch"))


def without_stats(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "stats"}


def test_watch_follows_a_run_to_its_end_and_prints_its_outputs(watcher: Watcher) -> None:
    execution_id = watcher.start(graphs.fan_out(), {"items": list(range(20))})
    done = watcher.cli("runs", "watch", execution_id)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{execution_id}  COMPLETED" and lines[1] == "outputs:"
    assert lines[2].startswith("  squares: ") and len(lines[2].split(",")) == 20
    progress = done.stderr.splitlines()  # not a terminal: the plain lines, the first and the last at least
    assert progress[0].startswith(f"agentflow: execution {execution_id} of graph ")
    assert "COMPLETED: 42/42 node executions finished, 0 running; cost " in progress[-1]
    assert len(progress) < 42  # not one line per node execution, let alone per status change


def test_watch_json_is_the_final_run_as_execute_wait_json_prints_it(watcher: Watcher) -> None:
    execution_id = watcher.start(graphs.linear(), {"x": 8})
    done = watcher.cli("runs", "watch", execution_id, "--json")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # --json: nothing but the document
    watched = json.loads(done.stdout)  # exactly one JSON document, or this fails
    assert watched["status"] == "COMPLETED" and watched["outputs"] == {"result": [84.0]}
    answer = watcher.api("GET", f"/executions/{execution_id}")
    assert without_stats(watched) == without_stats(answer)
    assert watched["stats"] == answer["stats"]  # it waited for the run's costs to settle

    graph_id = watcher.api("POST", "/graphs", graphs.linear())["graph_id"]
    waited = watcher.cli("execute", graph_id, "--input", "x=8", "--wait", "--json")
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout).keys() == watched.keys()  # the same document


@pytest.mark.parametrize(
    ("graph", "inputs", "code", "status"),
    [
        (graphs.failing(handle_error=False), {"x": 1}, 1, "FAILED"),
        (graphs.reviewed(), {"x": 5}, 3, "REVIEW"),
    ],
    ids=["failed", "review"],
)
def test_watch_exits_as_agentflow_run_does(
    watcher: Watcher, graph: dict[str, Any], inputs: dict[str, Any], code: int, status: str
) -> None:
    execution_id = watcher.start(graph, inputs)
    done = watcher.cli("runs", "watch", execution_id, "--json")
    assert done.returncode == code, done.stdout + done.stderr
    assert json.loads(done.stdout)["status"] == status
    if status == "REVIEW":
        watcher.api("POST", f"/executions/{execution_id}/stop")  # leave nothing waiting


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


def test_a_wrong_key_an_unknown_run_and_an_unreachable_url_are_one_line_errors(watcher: Watcher) -> None:
    execution_id = watcher.start(graphs.linear(), {"x": 1})
    wrong = watcher.cli(
        "runs", "watch", execution_id, env=watcher.env(AGENTFLOW_API_KEY="af_wrong-" + uuid.uuid4().hex)
    )
    assert wrong.returncode == 2
    assert one_error_line(wrong).startswith("error: 401 unauthorized: ")

    unknown = watcher.cli("runs", "watch", str(uuid.uuid4()))
    assert unknown.returncode == 2
    assert one_error_line(unknown).startswith("error: 404 not_found: ")

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    down = watcher.cli("runs", "watch", execution_id, "--json", env=watcher.env(AGENTFLOW_URL=closed))
    assert down.returncode == 1
    assert one_error_line(down) == f"error: cannot reach {closed}: connection refused"


def test_the_help_says_what_watch_does(watcher: Watcher) -> None:
    shown = watcher.cli("runs", "watch", "--help")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "show a run live until it ends" in text and "--timeout" in text
