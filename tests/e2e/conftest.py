"""e2e: graphs run by the real `agentflow run` command on the local stack, sharing the session's DynamoDB Local."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agentflow_local.dynamodb import DynamoDBLocal

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def agentflow_run(dynamodb_local: DynamoDBLocal, tmp_path: Path) -> Callable[..., CliResult]:
    def run(
        graph: dict[str, Any] | Path,
        *args: str,
        json_output: bool = True,
        timeout: float = 180,
        env: dict[str, str] | None = None,
    ) -> CliResult:
        if isinstance(graph, dict):
            path = tmp_path / f"graph-{len(list(tmp_path.iterdir()))}.json"
            path.write_text(json.dumps(graph))
        else:
            path = graph
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["AGENTFLOW_DYNAMODB_ENDPOINT"] = dynamodb_local.endpoint
        env.update(extra)
        command = [sys.executable, "-m", "agentflow_local.cli", "run", str(path), *args]
        if json_output:
            command.append("--json")
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
        return CliResult(done.returncode, done.stdout, done.stderr)

    return run
