"""`agentflow run` on a running `agentflow serve` of the same data folder (README, "The CLI"; docs/architecture.md,
"agentflow run on a running serve"), instead of a stack of its own.

The serve is reused only when all of these hold, else `agentflow run` starts its own stack as before:
- no `--redeliver` (it needs a bus of its own) and no AGENTFLOW_DYNAMODB_ENDPOINT (the caller chose the storage;
  the tests always set it);
- the data folder's stack.json names a live process and an API that answers a key of the user `local` (the
  user `agentflow run` has always run as, so its graphs and credentials stay the same);
- the serve runs with the same settings the functions read from the shell (platform LLM keys, base URLs, every
  AGENTFLOW_* setting of the engine), compared through the digests the serve records in stack.json: a shell's
  `OPENAI_API_KEY=... agentflow run` must not silently run without it.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentflow_local.client import Client, ClientError, Settings
from agentflow_local.dynamodb import process_alive
from agentflow_local.files import LocalFiles

RUN_USER = "local"  # the user `agentflow run` runs as, on its own stack and on a serve
PROBE_TIMEOUT = 3.0  # a live serve answers a one-item query at once; longer means it is not usable
# What only the command line reads, never the functions: a difference there does not change a run
CLI_ONLY = frozenset(
    {
        "AGENTFLOW_URL",
        "AGENTFLOW_API_KEY",
        "AGENTFLOW_CONFIG",
        "AGENTFLOW_LOCAL_DIR",
        "AGENTFLOW_ROOT",
        "AGENTFLOW_DYNAMODB_ENDPOINT",
        "AGENTFLOW_LOG_LEVEL",
        "AGENTFLOW_PROGRESS_INTERVAL",
    }
)


def run_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A digest of each shell setting the functions read: AGENTFLOW_* (but CLI_ONLY), the providers' keys and base
    URLs. Digests, never values: stack.json must not hold a key."""
    environ = os.environ if environ is None else environ
    found = {}
    for name, value in environ.items():
        engine_setting = name.startswith("AGENTFLOW_") and name not in CLI_ONLY
        provider = name.endswith(("_API_KEY", "_BASE_URL")) or name.startswith(("OPENAI_", "ANTHROPIC_"))
        if value and (engine_setting or (provider and name not in CLI_ONLY)):
            found[name] = hashlib.sha256(f"{name}={value}".encode()).hexdigest()[:16]
    return found


@dataclass(frozen=True)
class Found:
    """The serve to run on (`settings`: its URL and a key of RUN_USER), or None and why not (`note`, for stderr;
    None when there is simply no serve)."""

    settings: Settings | None
    note: str | None = None


def run_key_file(files: LocalFiles) -> Path:
    return files.folder / "run-api-key"  # RUN_USER's key on this data folder's serve (0600, like dev-api-key)


def find_serve(files: LocalFiles, environ: Mapping[str, str] | None = None) -> Found:
    """The live `agentflow serve` of this data folder that `agentflow run` may use, or why it may not."""
    environ = os.environ if environ is None else environ
    try:
        state = json.loads(files.running.read_text())
    except FileNotFoundError:
        return Found(None)
    except (OSError, ValueError) as exc:
        return Found(None, f"cannot read {files.running} ({exc})")
    if not isinstance(state, dict):
        return Found(None, f"{files.running} does not describe a serve")
    pid, url = state.get("pid"), state.get("api_url")
    if not isinstance(pid, int) or not isinstance(url, str):
        return Found(None, f"{files.running} names no serve's process and URL")
    if not process_alive(pid):
        return Found(None, f"stale {files.running}: process {pid} is not running")
    recorded = state.get("environment")
    if not isinstance(recorded, dict):
        return Found(None, f"the serve at {url} did not record its settings (an older agentflow?)")
    ours = run_environment(environ)
    differ = sorted(n for n in {*recorded, *ours} if recorded.get(n) != ours.get(n))
    if differ:
        return Found(None, f"the serve at {url} runs with other settings ({', '.join(differ)})")
    try:
        key = _run_key(files, url, state.get("dynamodb_endpoint"), environ)
    except ClientError as exc:
        return Found(None, f"the serve at {url} does not answer: {exc}")
    return Found(Settings(url.rstrip("/"), key))


def _probe(url: str, key: str) -> bool:
    """Whether the API at `url` answers `key` (False: 401, the key is not known there); no answer raises."""
    try:
        Client(Settings(url.rstrip("/"), key), timeout=PROBE_TIMEOUT).request("GET", "/credentials")
    except ClientError as exc:
        if exc.status == 401:
            return False
        raise
    return True


def _run_key(files: LocalFiles, url: str, endpoint: object, environ: Mapping[str, str]) -> str:
    """RUN_USER's key on the serve: the one kept in the data folder, else a new one (made in the serve's table)."""
    path = run_key_file(files)
    try:
        key = path.read_text().strip()
    except OSError:
        key = ""
    # first: is it our API, alive? (a 401 to no key says so) before any key is made in the table it names
    if _probe(url, key or "no-key"):
        return key
    if not isinstance(endpoint, str):
        raise ClientError("its stack.json names no DynamoDB endpoint to create a key in")
    try:
        key = _create_key(endpoint, environ.get("AGENTFLOW_TABLE") or "agentflow")
    except Exception as exc:  # botocore's errors, DynamoDB Local gone: the serve is not usable, whatever the cause
        raise ClientError(f"cannot create a key in its table at {endpoint}: {exc}") from exc
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    path.write_text(key + "\n")
    if not _probe(url, key):
        raise ClientError(f"it refuses the key just created in its table {endpoint}")
    return key


def _create_key(endpoint: str, table: str) -> str:
    # imported here: the engine's store and boto3 cost a second of start-up, paid once per data folder
    from agentflow.api.auth import create_api_key
    from agentflow.store import Store
    from agentflow_local.dynamodb import client_for

    return create_api_key(Store(client_for(endpoint), table), RUN_USER, "agentflow run (on agentflow serve)")
