"""Start `agentflow serve` as a user would (its own process group, its own data folder) and talk to it over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentflow_local.dynamodb import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    process: subprocess.Popen[str]
    url: str
    key: str
    output: list[str] = field(default_factory=list)  # every line it printed, kept by a reader thread

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"X-API-Key": self.key})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C, as a user stops it; returns its exit code."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=timeout)

    def kill_group(self) -> None:
        """SIGKILL to its whole process group: a crash, nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


def serve_env(local_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    env.pop("AGENTFLOW_DYNAMODB_ENDPOINT", None)
    env |= {
        "AGENTFLOW_LOCAL_DIR": str(local_dir),
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        **extra,
    }
    return env


def start_serve(env: dict[str, str], port: int | None = None, timeout: float = 120) -> Served:
    """`agentflow serve` in a new process group; returns once its banner (ending in "Ctrl-C") is printed."""
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "agentflow_local.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C"):
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(timeout) or process.poll() is not None:
        process.kill()
        raise AssertionError("agentflow serve did not start:\n" + "".join(lines))
    key = (Path(env["AGENTFLOW_LOCAL_DIR"]) / "dev-api-key").read_text().strip()
    return Served(process, f"http://127.0.0.1:{port}", key, lines)


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)  # a run's answer reads all its items: don't load the stack being watched
