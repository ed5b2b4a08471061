"""A small HTTP client (stdlib only) for a running `agentflow serve`, and polling with a deadline."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

FINAL = frozenset({"COMPLETED", "FAILED"})


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    text: str
    body: Any  # parsed JSON, or None when the body is not JSON

    def error(self, status: int, code: str) -> dict[str, Any]:
        """The `{"error": {...}}` of an expected error answer, after checking its status, shape and code."""
        assert self.status == status, f"expected {status}, got {self.status}: {self.text[:500]}"
        assert isinstance(self.body, dict) and set(self.body) == {"error"}, self.text[:500]
        error: dict[str, Any] = self.body["error"]
        assert set(error) == {"code", "message", "details"}, error
        assert error["code"] == code, error
        assert isinstance(error["message"], str) and error["message"], error
        return error


class Api:
    """One user's view of the API: every request carries that user's X-API-Key (none when `key` is None).
    One connection per request, so an instance may be shared by threads."""

    def __init__(self, base_url: str, key: str | None) -> None:
        parts = urlsplit(base_url)
        assert parts.hostname is not None and parts.port is not None
        self.base_url = base_url
        self.host, self.port = parts.hostname, parts.port
        self.key = key

    def with_key(self, key: str | None) -> Api:
        return Api(self.base_url, key)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        sent: dict[str, str] = {} if self.key is None else {"X-API-Key": self.key}
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            payload = response.read()
            reply_headers = {k.lower(): v for k, v in response.getheaders()}
        finally:
            connection.close()
        try:
            parsed: Any = json.loads(payload) if payload else None
        except ValueError:
            parsed = None
        return Reply(response.status, reply_headers, payload.decode("utf-8", errors="replace"), parsed)

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)

    # -- happy-path shortcuts (they assert the status)

    def create_graph(self, graph: dict[str, Any]) -> dict[str, Any]:
        reply = self.post("/graphs", graph)
        assert reply.status == 201, reply.text
        created: dict[str, Any] = reply.body
        return created

    def execute(self, graph_id: str, inputs: dict[str, Any], **body: Any) -> dict[str, Any]:
        reply = self.post(f"/graphs/{graph_id}/execute", {"inputs": inputs, **body})
        assert reply.status == 202, reply.text
        started: dict[str, Any] = reply.body
        return started

    def execution(self, execution_id: str) -> dict[str, Any]:
        reply = self.get(f"/executions/{execution_id}")
        assert reply.status == 200, reply.text
        report: dict[str, Any] = reply.body
        return report

    def history(self, execution_id: str) -> list[str]:
        reply = self.get(f"/executions/{execution_id}/events")
        assert reply.status == 200, reply.text
        assert reply.body["execution_id"] == execution_id
        return [event["status"] for event in reply.body["events"]]

    def wait_final(self, execution_id: str, timeout: float = 60) -> dict[str, Any]:
        """The report once the run is COMPLETED or FAILED."""
        return wait_for(lambda: (r := self.execution(execution_id))["status"] in FINAL and r, timeout)

    def wait_settled(self, execution_id: str, timeout: float = 30) -> dict[str, Any]:
        """The report once no node execution is QUEUED or RUNNING (after a stop, work in flight winds down)."""

        def settled() -> dict[str, Any] | None:
            report = self.execution(execution_id)
            return None if any(n["status"] in ("QUEUED", "RUNNING") for n in report["nodes"]) else report

        return wait_for(settled, timeout)


def wait_for[T](predicate: Callable[[], T | Literal[False] | None], timeout: float = 30, interval: float = 0.05) -> T:
    """Poll until `predicate()` is truthy and return that value; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {predicate}"
        time.sleep(interval)
