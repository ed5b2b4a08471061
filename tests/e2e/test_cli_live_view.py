"""e2e: the live view (README, "The terminal client") as people see it: `agentflow run` and `agentflow runs watch`
in a real pseudo-terminal (pexpect), whose last screen shows the progress complete and the outputs; and off a
terminal, a 300-item fan-out's progress in a handful of lines, not one per status change."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pexpect
import pytest

from agentflow_local.dynamodb import DynamoDBLocal
from tests import graphs
from tests.conftest import ApiServer
from tests.e2e.conftest import CliResult
from tests.support.serving import serve_env

ROOT = Path(__file__).resolve().parents[2]
CALCULATOR = ROOT / "examples" / "calculator.json"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")
FAN_OUT = 300
TIMEOUT = 180  # the agentflow_run fixture's limit: no run prints for longer than this


def in_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI in a pseudo-terminal 120 columns wide; its exit code and everything it wrote, ANSI included."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "agentflow_local.cli", *args],
        cwd=str(ROOT),
        env=env,
        encoding="utf-8",
        timeout=TIMEOUT,
        dimensions=(40, 120),
    )
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus is not None, f"killed by signal {child.signalstatus}"
    return child.exitstatus, child.before or ""


def last_frame(screen: str, header: str) -> str:
    """The text of the display's last frame: from its last redraw of the header to the end, escapes removed."""
    text = ANSI.sub("", screen)
    assert header in text, text[-3000:]
    return text[text.rindex(header) :]


def test_agentflow_run_in_a_terminal_shows_one_live_display_then_the_outputs(
    dynamodb_local: DynamoDBLocal, tmp_path: Path
) -> None:
    env = serve_env(tmp_path / "local", AGENTFLOW_DYNAMODB_ENDPOINT=dynamodb_local.endpoint)
    env["AGENTFLOW_TABLE"] = f"live-{uuid.uuid4().hex[:8]}"
    code, screen = in_a_terminal(["run", str(CALCULATOR), "--input", "Input=8"], env)
    assert code == 0, screen[-3000:]
    assert "\x1b[?25l" in screen and screen.count("\x1b[?25h") >= 1  # a live display: the cursor hidden, then back
    final = last_frame(screen, "agentflow: execution ")
    assert final.splitlines()[0].endswith(" of Calculator")
    assert re.search(r"^COMPLETED\s.*\s3/3 node executions finished$", final, re.M), final
    assert "running now: (none)" in final
    assert "node executions: COMPLETED 3" in final and "DynamoDB requests" in final and "elapsed " in final
    after = final[final.index("COMPLETED in ") :].splitlines()  # the summary and the outputs, below the display
    assert after[1:3] == ["outputs:", "  Output: 42.0"]
    assert "  QUEUED" not in ANSI.sub("", screen)  # no line per status change, as the old view printed


def test_runs_watch_in_a_terminal_ends_on_the_finished_run(api_server: ApiServer, tmp_path: Path) -> None:
    key = api_server.create_key(f"live-{uuid.uuid4().hex[:8]}")

    def api(method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(api_server.url + path, data=data, method=method, headers={"X-API-Key": key})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    graph_id = api("POST", "/graphs", graphs.fan_out())["graph_id"]
    execution_id = api("POST", f"/graphs/{graph_id}/execute", {"inputs": {"items": [1, 2, 3]}})["execution_id"]
    env = {k: v for k, v in api_server.env.items() if k not in ("AGENTFLOW_URL", "AGENTFLOW_API_KEY")}
    env |= {"AGENTFLOW_URL": api_server.url, "AGENTFLOW_API_KEY": key}
    env["AGENTFLOW_CONFIG"] = str(tmp_path / "no-config.json")
    code, screen = in_a_terminal(["runs", "watch", execution_id], env)
    assert code == 0, screen[-3000:]
    final = last_frame(screen, f"agentflow: execution {execution_id} of graph ")
    assert f"{graph_id} v1" in final
    assert re.search(r"^COMPLETED\s.*\s8/8 node executions finished$", final, re.M), final
    assert f"{execution_id}  COMPLETED" in final
    squares = final[final.index("  squares: ") :].splitlines()[0].removeprefix("  squares: ")
    assert sorted(float(v) for v in squares.split(", ")) == [1.0, 4.0, 9.0]
    assert key not in screen


def test_off_a_terminal_a_300_item_run_prints_a_few_lines_not_one_per_change(
    agentflow_run: Callable[..., CliResult],
) -> None:
    interval = 5.0
    done = agentflow_run(
        graphs.fan_out(),
        "--inputs",
        json.dumps({"items": list(range(FAN_OUT))}),
        json_output=False,
        timeout=TIMEOUT,
        env={"AGENTFLOW_PROGRESS_INTERVAL": f"{interval:g}"},
    )
    assert done.code == 0, done.stderr[-3000:]
    executions = 2 + 2 * FAN_OUT  # input, step, then a square and an output per item
    progress = [line for line in done.stderr.splitlines() if line.startswith("agentflow: ")]
    assert progress[0].startswith("agentflow: execution ") and progress[0].endswith(" of fan-out")
    assert progress[-1].startswith("agentflow: ") and f"COMPLETED: {executions}/{executions} " in progress[-1]
    # at most one line per interval of a run the fixture cuts off at TIMEOUT, plus the first and the last: a
    # bound the wall clock cannot move, far below the 3 status changes of each of the 602 node executions
    bound = 2 + int(TIMEOUT / interval) + 1
    assert len(done.stderr.splitlines()) <= bound < executions * 3 // 10
    outputs = done.stdout.splitlines()
    assert outputs[-2] == "outputs:" and outputs[-1].startswith("  squares: ")
    assert len(outputs[-1].split(",")) == FAN_OUT


def test_a_bad_interval_setting_is_a_usage_error(agentflow_run: Callable[..., CliResult]) -> None:
    done = agentflow_run(graphs.linear(), "--input", "x=1", json_output=False, env={"AGENTFLOW_PROGRESS_INTERVAL": "0"})
    assert done.code == 2
    assert done.stderr.strip() == "error: AGENTFLOW_PROGRESS_INTERVAL must be a number of seconds more than 0, got '0'"


@pytest.mark.parametrize("command", [["run", "--help"], ["runs", "watch", "--help"], ["execute", "--help"]])
def test_the_help_tells_of_the_live_view(command: list[str], tmp_path: Path) -> None:
    code, screen = in_a_terminal(command, serve_env(tmp_path))
    assert code == 0
    text = " ".join(ANSI.sub("", screen).split())
    assert "live" in text
