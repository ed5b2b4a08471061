"""A small client of the agentflow HTTP API (README, "The terminal client"), local or deployed, standard library only.

Where the stack and the key come from, first found wins:
  URL: --url, AGENTFLOW_URL, the config file's "url", the running `agentflow serve` (its data folder's stack.json)
  key: --key, AGENTFLOW_API_KEY, the config file's "api_key", the local dev key (<data folder>/dev-api-key)
The config file (AGENTFLOW_CONFIG, else $XDG_CONFIG_HOME/agentflow/client.json) is optional; it is refused when
anyone but its owner may read it, since it may hold a key. The key is sent as X-API-Key and never printed.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow_local.dynamodb import DynamoDBLocalError, process_alive, project_root
from agentflow_local.files import LocalFiles

TIMEOUT = 30.0


class ClientError(Exception):
    """A request that did not get a 2xx answer: `status` is the HTTP status, None when there was no answer."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body

    def line(self) -> str:
        """One line for stderr: the status and code, then the message."""
        if self.status is None:
            return f"error: {self}"
        label = f"{self.status} {self.code}" if self.code else str(self.status)
        return f"error: {label}: {self}"


@dataclass(frozen=True)
class Settings:
    url: str
    key: str

    def __repr__(self) -> str:  # never show the key, even in a traceback
        return f"Settings(url={self.url!r}, key=<hidden>)"


def config_path() -> Path:
    if os.environ.get("AGENTFLOW_CONFIG"):
        return Path(os.environ["AGENTFLOW_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentflow" / "client.json"


def load_config(path: Path) -> dict[str, str]:
    """The stored settings, {} without a file; refused when group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return {}
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ClientError(f"{path} may be read by others (mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}")
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ClientError(f'{path} must hold a JSON object like {{"url": ..., "api_key": ...}}')
    return {k: str(v) for k, v in loaded.items() if k in ("url", "api_key") and v}


def local_files() -> LocalFiles:
    try:
        return LocalFiles(project_root())
    except DynamoDBLocalError as exc:
        raise ClientError(f"no local stack to default to ({exc}); pass --url or set AGENTFLOW_URL") from exc


def running_local_url(files: LocalFiles) -> str:
    """The URL of the running `agentflow serve` of this data folder, or why there is none."""
    hint = "start it with `agentflow serve`, or pass --url / set AGENTFLOW_URL"
    try:
        state = json.loads(files.running.read_text())
    except FileNotFoundError:
        raise ClientError(f"no local stack is running (no {files.running}): {hint}") from None
    except (OSError, ValueError) as exc:
        raise ClientError(f"cannot read {files.running}: {exc}") from exc
    url = state.get("api_url") if isinstance(state, dict) else None
    pid = state.get("pid") if isinstance(state, dict) else None
    if not isinstance(url, str) or not isinstance(pid, int):
        raise ClientError(f"{files.running} does not name a stack's URL and process: {hint}")
    if not process_alive(pid):
        raise ClientError(f"the local stack at {url} is not running (stale {files.running}, process {pid}): {hint}")
    return url


def resolve(url: str | None = None, key: str | None = None) -> Settings:
    """The stack and key to use: the flags, else the environment, else the config file, else the local stack."""
    config = load_config(config_path())
    url = url or os.environ.get("AGENTFLOW_URL") or config.get("url")
    key = key or os.environ.get("AGENTFLOW_API_KEY") or config.get("api_key")
    files = None
    if not url:
        files = local_files()
        url = running_local_url(files)
    if not key:
        files = files or local_files()
        try:
            key = files.dev_key.read_text().strip()
        except OSError:
            raise ClientError(
                f"no API key: pass --key or set AGENTFLOW_API_KEY (no local dev key in {files.dev_key})"
            ) from None
    return Settings(url.rstrip("/"), key)


class Client:
    """The HTTP API's routes the terminal commands use; every answer is the API's JSON, unchanged."""

    def __init__(self, settings: Settings, timeout: float = TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None) -> Any:
        url = self.settings.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        headers = {"X-API-Key": self.settings.key, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise api_error(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason: Any = getattr(exc, "reason", exc)
            if isinstance(reason, socket.timeout | TimeoutError):
                reason = f"no answer within {self.timeout:g}s"
            elif isinstance(reason, OSError) and reason.strerror:
                reason = reason.strerror.lower()  # "connection refused", not "[Errno 111] Connection refused"
            raise ClientError(f"cannot reach {self.settings.url}: {reason}") from None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ClientError(f"{method} {path} answered something that is not JSON") from None

    def segment(self, value: str) -> str:
        return urllib.parse.quote(value, safe="")

    def list_graphs(self) -> Any:
        return self.request("GET", "/graphs")

    def get_graph(self, graph_id: str) -> Any:
        return self.request("GET", f"/graphs/{self.segment(graph_id)}")

    def create_graph(self, document: Any) -> Any:
        return self.request("POST", "/graphs", document)

    def update_graph(self, graph_id: str, document: Any) -> Any:
        return self.request("PUT", f"/graphs/{self.segment(graph_id)}", document)

    def execute(self, graph_id: str, inputs: dict[str, Any]) -> Any:
        return self.request("POST", f"/graphs/{self.segment(graph_id)}/execute", {"inputs": inputs})

    def execution(self, execution_id: str) -> Any:
        return self.request("GET", f"/executions/{self.segment(execution_id)}")

    def executions(self, graph_id: str, limit: int, cursor: str | None = None) -> Any:
        query = {"limit": limit, "cursor": cursor}
        return self.request("GET", f"/graphs/{self.segment(graph_id)}/executions", query=query)

    def events(self, execution_id: str) -> Any:
        return self.request("GET", f"/executions/{self.segment(execution_id)}/events")

    def control(self, execution_id: str, action: str) -> Any:
        """POST /executions/{eid}/stop or /resume."""
        return self.request("POST", f"/executions/{self.segment(execution_id)}/{action}")


def api_error(status: int, raw: bytes) -> ClientError:
    """The API's `{"error": {"code", "message", "details"}}`, or what API Gateway said (e.g. an unknown route)."""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        code = str(error["code"]) if error.get("code") else None
        return ClientError(message.replace("\n", " "), status, code, body)
    if isinstance(body, dict) and body.get("message"):
        return ClientError(str(body["message"]), status, None, body)  # API Gateway's own answers
    text = raw.decode(errors="replace").strip().replace("\n", " ")[:200]
    return ClientError(text or "no details", status, None, body)
