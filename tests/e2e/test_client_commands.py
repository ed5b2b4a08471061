"""e2e: the terminal client (`agentflow graphs|execute|runs`) against a real `agentflow serve` over HTTP, run as a
user runs it: a subprocess, the stack and key from --url/--key or AGENTFLOW_URL/AGENTFLOW_API_KEY, or found through
the local data folder. Every request stays on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentflow_local.dynamodb import free_port
from tests import graphs
from tests.conftest import ApiServer
from tests.support.serving import wait_until

ROOT = Path(__file__).resolve().parents[2]
CALCULATOR = ROOT / "examples" / "calculator.json"
SETTINGS = ("AGENTFLOW_URL", "AGENTFLOW_API_KEY", "AGENTFLOW_CONFIG")


@dataclass
class Done:
    code: int
    stdout: str
    stderr: str

    @property
    def doc(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)  # exactly one JSON document, or this fails


@dataclass
class User:
    """A user of its own (so run listings hold only this module's runs), and how to run the client as it."""

    server: ApiServer
    key: str
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in self.server.env.items() if k not in SETTINGS}
        env["AGENTFLOW_CONFIG"] = str(self.tmp / "no-config.json")  # never the tester's own settings
        env.update(extra)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, secrets: tuple[str, ...] = ()) -> Done:
        """The client with AGENTFLOW_URL / AGENTFLOW_API_KEY set, unless `env` says otherwise."""
        env = env if env is not None else self.env(AGENTFLOW_URL=self.server.url, AGENTFLOW_API_KEY=self.key)
        done = subprocess.run(
            [sys.executable, "-m", "agentflow_local.cli", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        for secret in (self.key, self.server.dev_key, *secrets):  # no command ever prints a key
            assert secret not in done.stdout and secret not in done.stderr
        return Done(done.returncode, done.stdout, done.stderr)

    def api(self, path: str) -> Any:
        """The API's own answer, to compare the client's --json with."""
        request = urllib.request.Request(self.server.url + path, headers={"X-API-Key": self.key})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def push(self, graph: dict[str, Any]) -> str:
        path = self.tmp / f"graph-{uuid.uuid4().hex[:8]}.json"
        path.write_text(json.dumps(graph))
        graph_id: str = self.run("graphs", "push", str(path), "--json").doc["graph_id"]
        return graph_id

    def wait_status(self, execution_id: str, statuses: set[str]) -> Any:
        def settled() -> Any:
            report = self.run("runs", "show", execution_id, "--json").doc
            return report if report["status"] in statuses else None

        return wait_until(settled, timeout=120, what=f"{execution_id} to be one of {statuses}")


@pytest.fixture(scope="module")
def user(api_server: ApiServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[User]:
    yield User(api_server, api_server.create_key(f"client-{uuid.uuid4().hex[:8]}"), tmp_path_factory.mktemp("client"))


def one_error_line(done: Done) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stdout == ""
    return lines[0]


def test_graphs_push_creates_then_saves_a_new_version_list_and_show(user: User) -> None:
    path = user.tmp / "linear.json"
    path.write_text(json.dumps(graphs.linear()))
    created = user.run("graphs", "push", str(path), "--json").doc
    graph_id = created["graph_id"]
    assert (created["version"], created["active_version"], created["latest_version"]) == (1, 1, 1)

    human = user.run("graphs", "push", str(path), "--graph-id", graph_id)
    assert human.code == 0, human.stderr
    assert human.stdout.strip() == f"saved graph {graph_id} version 2 ({created['name']})"

    shown = user.run("graphs", "show", graph_id, "--json").doc
    assert shown == user.api(f"/graphs/{graph_id}")
    assert (shown["version"], shown["active_version"], shown["latest_version"]) == (2, 2, 2)
    text = user.run("graphs", "show", graph_id)
    assert "version  2 (active 2, latest 2)" in text.stdout
    assert "inputs   x" in text.stdout

    listed = user.run("graphs", "list", "--json").doc
    assert listed == user.api("/graphs")
    assert graph_id in [g["graph_id"] for g in listed["graphs"]]
    table = user.run("graphs", "list").stdout.splitlines()
    assert table[0].split() == ["GRAPH_ID", "NAME", "ACTIVE", "LATEST", "UPDATED"]
    assert any(line.startswith(graph_id) and " 2 " in line for line in table[1:])


def test_execute_wait_prints_the_outputs_of_the_calculator(user: User) -> None:
    created = user.run("graphs", "push", str(CALCULATOR))
    assert created.code == 0, created.stderr
    assert created.stdout.startswith("created graph ") and "version 1 (Calculator)" in created.stdout
    graph_id = created.stdout.split()[2]

    done = user.run("execute", graph_id, "--input", "Input=8", "--wait")
    assert done.code == 0, done.stderr
    assert "COMPLETED" in done.stdout.splitlines()[0]
    assert "  Output: 42.0" in done.stdout.splitlines()

    report = user.run("execute", graph_id, "--inputs", '{"Input": 1}', "--wait", "--json").doc
    assert report["status"] == "COMPLETED" and report["outputs"] == {"Output": [35.0]}
    answer = user.api(f"/executions/{report['execution_id']}")
    # the stats may still grow after COMPLETED (the retention stamping is billed to the run): compare the rest
    assert {k: v for k, v in report.items() if k != "stats"} == {k: v for k, v in answer.items() if k != "stats"}
    assert report["stats"].keys() == answer["stats"].keys()


def test_execute_then_show_events_and_list_runs(user: User) -> None:
    graph_id = user.push(graphs.linear())
    started = user.run("execute", graph_id, "--input", "x=8", "--json").doc
    assert set(started) >= {"execution_id", "status", "created"} and started["created"] is True
    execution_id = started["execution_id"]
    human = user.run("execute", graph_id, "--input", "x=1")
    assert human.code == 0, human.stderr
    second, status = human.stdout.split()
    assert status in {"QUEUED", "RUNNING", "COMPLETED"}

    report = user.wait_status(execution_id, {"COMPLETED", "FAILED"})
    assert report["status"] == "COMPLETED" and report["outputs"] == {"result": [84.0]}
    shown = user.run("runs", "show", execution_id)
    assert shown.stdout.startswith(f"execution  {execution_id}  COMPLETED")
    assert "  result: 84.0" in shown.stdout.splitlines()

    events = user.run("runs", "events", execution_id, "--json").doc
    assert events == user.api(f"/executions/{execution_id}/events")
    assert [e["status"] for e in events["events"]][-1] == "COMPLETED"
    table = user.run("runs", "events", execution_id).stdout.splitlines()
    assert table[0].split() == ["STATUS", "AT"] and table[-1].startswith("COMPLETED")

    user.wait_status(second, {"COMPLETED", "FAILED"})
    listed = user.run("runs", "list", "--graph", graph_id, "--json").doc
    assert listed == user.api(f"/graphs/{graph_id}/executions?limit=20")
    assert {r["execution_id"] for r in listed["executions"]} == {execution_id, second}
    done = user.run("runs", "list", "--graph", graph_id, "--status", "completed", "--limit", "1", "--json").doc
    assert [r["execution_id"] for r in done["executions"]] == [listed["executions"][0]["execution_id"]]
    assert user.run("runs", "list", "--graph", graph_id, "--status", "FAILED", "--json").doc == {"executions": []}
    rows = user.run("runs", "list", "--graph", graph_id).stdout.splitlines()
    assert rows[0].split()[:4] == ["EXECUTION_ID", "GRAPH_ID", "VERSION", "STATUS"] and len(rows) == 3


def test_runs_list_without_graph_merges_every_graph_newest_first(user: User) -> None:
    first, other = user.push(graphs.linear()), user.push(graphs.adder(2))
    runs = [
        user.run("execute", g, *inputs, "--wait", "--json").doc
        for g, inputs in ((first, ["--input", "x=2"]), (other, ["--input", "x=3"]))
    ]
    merged = user.run("runs", "list", "--json").doc["executions"]
    ids = [r["execution_id"] for r in merged]
    assert {r["execution_id"] for r in runs} <= set(ids)
    assert {r["graph_id"] for r in merged} >= {first, other}
    created = [r["created_at"] for r in merged]
    assert created == sorted(created, reverse=True)
    assert len(user.run("runs", "list", "--limit", "1", "--json").doc["executions"]) == 1


def test_stop_and_resume_a_run_waiting_for_review(user: User) -> None:
    graph_id = user.push(graphs.reviewed())
    waiting = user.run("execute", graph_id, "--input", "x=5", "--wait")
    assert waiting.code == 3, waiting.stdout + waiting.stderr  # as `agentflow run`: a human review is pending
    execution_id, status = waiting.stdout.splitlines()[0].split()
    assert status == "REVIEW" and "waits for review" in waiting.stdout

    stopped = user.run("runs", "stop", execution_id, "--json").doc
    assert stopped == {"execution_id": execution_id, "status": "TERMINATED"}
    again = user.run("runs", "stop", execution_id)
    assert again.code == 2
    assert one_error_line(again).startswith("error: 409 conflict: ")
    resumed = user.run("runs", "resume", execution_id)
    assert resumed.code == 0, resumed.stderr
    assert resumed.stdout.strip() == f"{execution_id}  RUNNING"
    history = [e["status"] for e in user.run("runs", "events", execution_id, "--json").doc["events"]]
    assert history[:3] == ["INCOMPLETE", "QUEUED", "RUNNING"]
    assert history[history.index("TERMINATED") :][:2] == ["TERMINATED", "RUNNING"]
    # the stop rejected the review: the resumed run goes on down the rejected branch, to its end
    final = user.wait_status(execution_id, {"REVIEW", "COMPLETED", "FAILED"})
    assert final["status"] == "COMPLETED", final["error"]
    assert final["outputs"]["approved"] == [] and final["outputs"]["rejected"]


def test_wrong_key_unknown_run_and_unreachable_url_are_one_line_errors(user: User) -> None:
    wrong = "af_not-a-real-key-" + uuid.uuid4().hex
    refused = user.run("graphs", "list", "--key", wrong, "--url", user.server.url, secrets=(wrong,))
    assert refused.code == 2
    assert one_error_line(refused).startswith("error: 401 unauthorized: ")

    unknown = user.run("runs", "show", str(uuid.uuid4()))
    assert unknown.code == 2
    assert one_error_line(unknown).startswith("error: 404 not_found: ")
    assert user.run("runs", "stop", str(uuid.uuid4()), "--json").code == 2

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = user.env(AGENTFLOW_URL=closed, AGENTFLOW_API_KEY=user.key)
    down = user.run("runs", "list", env=env)
    assert down.code == 1
    assert one_error_line(down) == f"error: cannot reach {closed}: connection refused"

    bad = user.run("execute", str(uuid.uuid4()), "--input", "no-equals-sign")
    assert bad.code == 2 and "NAME=VALUE" in one_error_line(bad)


def test_defaults_find_the_running_local_stack_and_its_dev_key(user: User) -> None:
    local = Path(user.server.env["AGENTFLOW_LOCAL_DIR"])
    assert stat.S_IMODE((local / "stack.json").stat().st_mode) == 0o600
    listed = user.run("graphs", "list", "--json", env=user.env()).doc  # no URL, no key: the dev user's graphs
    assert "Calculator" in {g["name"] for g in listed["graphs"]}


def test_a_stale_stack_file_or_no_stack_is_a_clear_error(user: User, tmp_path: Path) -> None:
    env = user.env(AGENTFLOW_LOCAL_DIR=str(tmp_path))
    missing = user.run("graphs", "list", env=env)
    assert missing.code == 1 and "no local stack is running" in one_error_line(missing)

    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    (tmp_path / "stack.json").write_text(json.dumps({"pid": gone.pid, "api_url": user.server.url}))
    stale = user.run("graphs", "list", env=env)
    assert stale.code == 1
    assert f"is not running (stale {tmp_path / 'stack.json'}, process {gone.pid})" in one_error_line(stale)


def test_a_config_file_is_used_only_when_its_owner_alone_can_read_it(user: User, tmp_path: Path) -> None:
    config = tmp_path / "client.json"
    config.write_text(json.dumps({"url": user.server.url, "api_key": user.key}))
    env = user.env(AGENTFLOW_CONFIG=str(config), AGENTFLOW_LOCAL_DIR=str(tmp_path))
    os.chmod(config, 0o644)
    exposed = user.run("graphs", "list", env=env)
    assert exposed.code == 1 and "chmod 600" in one_error_line(exposed)
    os.chmod(config, 0o600)
    assert user.run("graphs", "list", "--json", env=env).doc == user.api("/graphs")
