"""The files the local stack keeps next to its data, in <root>/.local (git-ignored), and what they tell other
commands about a running `agentflow serve`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from agentflow_local.dynamodb import process_alive


def local_dir(root: Path) -> Path:
    """Where the local stack keeps its data and files: AGENTFLOW_LOCAL_DIR, else <root>/.local (git-ignored)."""
    configured = os.environ.get("AGENTFLOW_LOCAL_DIR")
    return Path(configured).resolve() if configured else root / ".local"


@dataclass(frozen=True)
class LocalFiles:
    """What the local stack keeps next to its data, in <root>/.local (git-ignored)."""

    root: Path

    @property
    def folder(self) -> Path:
        return local_dir(self.root)

    @property
    def dev_key(self) -> Path:
        return self.folder / "dev-api-key"

    @property
    def examples(self) -> Path:
        return self.folder / "examples.json"

    @property
    def metrics(self) -> Path:
        return self.folder / "metrics.jsonl"  # the functions' CloudWatch EMF documents

    @property
    def credentials_key(self) -> Path:
        return self.folder / "credentials.key"  # the local keyring's master key (0600): users' credentials need it

    @property
    def running(self) -> Path:
        return self.folder / "stack.json"  # endpoints of a running `agentflow serve`, for other commands


def running_dynamodb_endpoint(files: LocalFiles) -> str | None:
    """The DynamoDB endpoint of a running `agentflow serve`, if there is one."""
    try:
        state = json.loads(files.running.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not process_alive(int(state.get("pid", -1))):
        return None
    endpoint = state.get("dynamodb_endpoint")
    return str(endpoint) if endpoint else None
