"""`agentflow run examples/calculator.json` as a user types it, timed from the outside: without any stack running
(it starts DynamoDB Local, its bus and its functions itself), and with a running `agentflow serve` of the same data
folder (it runs the graph there over HTTP: README, "The CLI"). The figure to compare is the ratio; the goal is
with-serve at most a third of without."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agentflow_local.dynamodb import free_port

GRAPH = "examples/calculator.json"
EXPECTED = {"Output": [42.0]}
GOAL = 1 / 3


@dataclass(frozen=True)
class CliWall:
    without_s: list[float]  # each run's wall time, no stack running
    with_serve_s: list[float]  # each run's wall time, a serve running (after one untimed run that makes its key)
    problems: list[str]

    @property
    def ratio(self) -> float | None:
        if not self.without_s or not self.with_serve_s:
            return None
        return statistics.median(self.with_serve_s) / statistics.median(self.without_s)


def _env(local_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("AGENTFLOW_DYNAMODB_ENDPOINT", None)  # it would turn the reuse off, and share a DynamoDB Local
    env["AGENTFLOW_LOCAL_DIR"] = str(local_dir)
    return env


def _run(root: Path, env: dict[str, str], problems: list[str], label: str) -> float:
    command = [sys.executable, "-m", "agentflow_local.cli", "run", GRAPH, "--input", "Input=8", "--json"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    try:
        outputs = json.loads(done.stdout)["outputs"] if done.returncode == 0 else None
    except ValueError:
        outputs = None
    if outputs != EXPECTED:
        problems.append(f"{label}: exit {done.returncode}, outputs {outputs}: {done.stderr.strip()[-300:]}")
    return elapsed


def _serve(root: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """`agentflow serve` on a free port, returned once its banner ends ("Ctrl-C stops everything.")."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agentflow_local.cli", "serve", "--port", str(free_port())],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("Ctrl-C"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(180) or process.poll() is not None:
        process.kill()
        raise RuntimeError("agentflow serve did not start")
    return process


def measure(root: Path, runs: int = 3) -> CliWall:
    problems: list[str] = []
    without: list[float] = []
    with_serve: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as folder:
        alone, served = Path(folder) / "alone", Path(folder) / "served"
        for i in range(runs):
            without.append(_run(root, _env(alone), problems, f"without a stack, run {i + 1}"))
        serve = _serve(root, _env(served))
        try:
            _run(root, _env(served), problems, "with agentflow serve, first run")  # makes the user's key: untimed
            for i in range(runs):
                with_serve.append(_run(root, _env(served), problems, f"with agentflow serve, run {i + 1}"))
        finally:
            serve.send_signal(signal.SIGINT)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait(timeout=30)
    return CliWall(without, with_serve, problems)


def _seconds(values: Sequence[float]) -> str:
    return f"median {statistics.median(values):.2f}s of {len(values)} ({', '.join(f'{v:.2f}' for v in values)})"


def report(root: Path, out: TextIO, runs: int = 3) -> CliWall:
    """Measure, then print the section; returns the figures."""
    print(f"bench: timing `agentflow run {GRAPH}` without and with a running serve", file=sys.stderr, flush=True)
    wall = measure(root, runs)
    print(f"\n== `agentflow run {GRAPH}`: wall time as a user sees it", file=out)
    if wall.without_s:
        print(f"  no stack running (starts DynamoDB Local and its bus) : {_seconds(wall.without_s)}", file=out)
    if wall.with_serve_s:
        print(f"  a running `agentflow serve` (the run goes to it)     : {_seconds(wall.with_serve_s)}", file=out)
    if wall.ratio is not None:
        verdict = "meets" if wall.ratio <= GOAL else "misses"
        print(f"  with / without: {wall.ratio:.2f}x ({verdict} the goal of at most {GOAL:.2f}x)", file=out)
    for problem in wall.problems:
        print(f"  - problem: {problem}", file=out)
    return wall
