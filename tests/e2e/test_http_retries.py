"""SendWebRequestBlock end to end on the local stack, against real HTTP servers on 127.0.0.1: transient answers are
retried through the local SQS retry queue on a clock the test moves, each attempt runs once however often events
are delivered, a stop during a backoff cancels the retry and resume runs it; and `agentflow run` reaches an
allow-listed local server, or refuses it naming the address (README, "HTTP blocks" and "Retries and timeouts").
No test leaves 127.0.0.0/8: the socket guard fails any connection beyond it."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from agentflow.graph import validate_graph
from agentflow.reports import execution_report
from agentflow.statuses import ExecutionStatus
from agentflow_local.dynamodb import DynamoDBLocal
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests.e2e.conftest import CliResult
from tests.graphs import GraphBuilder
from tests.support.clock import FakeClock
from tests.support.network import SocketGuard, guard_sockets, local_http_server

ROOT = Path(__file__).resolve().parents[2]
FINAL = {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.TERMINATED}


@pytest.fixture(autouse=True)
def sockets() -> Iterator[SocketGuard]:
    with guard_sockets() as guard:
        yield guard
    assert not guard.violations, guard.violations


@pytest.fixture(scope="module")
def server() -> Iterator[HTTPServer]:
    with local_http_server() as running:
        yield running


@dataclass
class Script:
    """Answers a server gives in turn (the last one repeats), with the stack clock's time of each request."""

    clock: FakeClock
    answers: list[Callable[[], Response]]
    seen_at: list[float] = field(default_factory=list)

    def __call__(self, request: Request) -> Response:
        self.seen_at.append(self.clock.now)
        answer = self.answers[min(len(self.seen_at) - 1, len(self.answers) - 1)]
        return answer()


def status(code: int, body: str = "", **headers: str) -> Callable[[], Response]:
    return lambda: Response(body, status=code, headers=headers, content_type="application/json")


def slow() -> Response:
    time.sleep(1.0)  # longer than the stack's read timeout (0.3 s): the attempt times out
    return Response("{}", content_type="application/json")


def request_graph(url: str) -> dict[str, Any]:
    return (
        GraphBuilder("http retries")
        .node("req", "SendWebRequestBlock", url=url, method="GET")
        .output("ok", "response")
        .output("client", "client_error")
        .output("server", "server_error")
        .link("req", "response", "ok", "value")
        .link("req", "client_error", "client", "value")
        .link("req", "server_error", "server", "value")
        .build()
    )


def make_stack(dynamodb_local: DynamoDBLocal, clock: FakeClock, redeliver: int = 0) -> LocalStack:
    config = LocalStackConfig(
        root=ROOT,
        dynamodb_endpoint=dynamodb_local.endpoint,
        table_name=f"t-{uuid.uuid4().hex[:10]}",
        concurrency=2,
        redeliver=redeliver,
        seed=11,
        clock=clock,
        log_level="WARNING",
        recover=False,
        environment={"AGENTFLOW_HTTP_ALLOW_HOSTS": "127.0.0.1", "AGENTFLOW_HTTP_READ_TIMEOUT": "0.3"},
    )
    return LocalStack(config)


def run_to_end(stack: LocalStack, clock: FakeClock, execution_id: str, step: float = 1.0) -> dict[str, Any]:
    """Let the stack work; while a retry waits for its delay, move the clock `step` seconds at a time."""
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, "the run did not end"
        assert stack.idle(30)
        execution = stack.engine.store.get_execution(execution_id)
        assert execution is not None
        if execution.status in FINAL and not stack.waiting_retries():
            report = execution_report(stack.engine.store, execution_id, ["response", "client_error", "server_error"])
            assert report is not None
            return report
        if stack.waiting_retries():
            clock.now += step
        time.sleep(0.05)  # the queue looks at the clock every 20 ms


def start(stack: LocalStack, graph: dict[str, Any]) -> str:
    graph_id, version = stack.engine.register_graph("u1", validate_graph(graph))
    return stack.engine.start_execution("u1", graph_id, version, {}).execution_id


def node_of(report: dict[str, Any], node_id: str = "req") -> dict[str, Any]:
    return next(n for n in report["nodes"] if n["node_id"] == node_id)


@pytest.mark.parametrize("redeliver", [0, 2], ids=["once", "every-event-three-times"])
def test_503_503_200_completes_on_attempt_3_after_backoffs_within_their_bounds(
    dynamodb_local: DynamoDBLocal, server: HTTPServer, redeliver: int
) -> None:
    clock = FakeClock()
    script = Script(clock, [status(503, "{}"), status(503, "{}"), status(200, '{"ok": true}')])
    server.clear()
    server.expect_request("/flaky").respond_with_handler(script)
    with make_stack(dynamodb_local, clock, redeliver) as stack:
        report = run_to_end(stack, clock, start(stack, request_graph(server.url_for("/flaky"))))
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"response": [{"ok": True}], "client_error": [], "server_error": []}
    assert len(script.seen_at) == 3  # one request per attempt, however often each event was delivered
    node = node_of(report)
    assert node["attempts"] == 3 and node["status"] == "COMPLETED"
    log = node["attempt_log"]
    assert [entry["attempt"] for entry in log] == [1, 2, 3]
    assert all("503" in entry["error"] for entry in log[:2]) and log[2]["error"] is None
    for attempt, entry in enumerate(log[:2], start=1):
        bound = 2.0 * 2 ** (attempt - 1)  # the default policy: 2 s, doubling, full jitter
        assert 0 <= entry["retry_in_seconds"] <= bound
        waited = script.seen_at[attempt] - script.seen_at[attempt - 1]
        # never before its delay; at most one clock step after it came due
        assert entry["retry_in_seconds"] <= waited <= math.ceil(entry["retry_in_seconds"]) + 1.0


def test_404_is_not_retried_and_yields_client_error(dynamodb_local: DynamoDBLocal, server: HTTPServer) -> None:
    clock = FakeClock()
    script = Script(clock, [status(404, '{"missing": true}')])
    server.clear()
    server.expect_request("/gone").respond_with_handler(script)
    with make_stack(dynamodb_local, clock) as stack:
        report = run_to_end(stack, clock, start(stack, request_graph(server.url_for("/gone"))))
    assert report["status"] == "COMPLETED"
    assert report["outputs"]["client_error"] == [{"missing": True}] and report["outputs"]["response"] == []
    assert len(script.seen_at) == 1 and node_of(report)["attempts"] == 1


def test_503_until_attempts_are_spent_yields_server_error(dynamodb_local: DynamoDBLocal, server: HTTPServer) -> None:
    clock = FakeClock()
    script = Script(clock, [status(503, '{"busy": true}', **{"Retry-After": "3"})])
    server.clear()
    server.expect_request("/busy").respond_with_handler(script)
    with make_stack(dynamodb_local, clock) as stack:
        report = run_to_end(stack, clock, start(stack, request_graph(server.url_for("/busy"))))
    assert report["status"] == "COMPLETED"  # AutoGPT's rule on the last attempt: the answer goes to server_error
    assert report["outputs"]["server_error"] == [{"busy": True}]
    assert len(script.seen_at) == 3
    log = node_of(report)["attempt_log"]
    assert all(entry["retry_in_seconds"] >= 3.0 for entry in log[:2])  # Retry-After honoured
    assert script.seen_at[1] - script.seen_at[0] >= 3.0


def test_a_slow_server_times_out_each_attempt_then_fails_the_node(
    dynamodb_local: DynamoDBLocal, server: HTTPServer
) -> None:
    clock = FakeClock()
    script = Script(clock, [slow])
    server.clear()
    server.expect_request("/slow").respond_with_handler(script)
    with make_stack(dynamodb_local, clock) as stack:
        report = run_to_end(stack, clock, start(stack, request_graph(server.url_for("/slow"))))
    assert report["status"] == "FAILED"
    node = node_of(report)
    assert node["status"] == "FAILED" and node["attempts"] == 3
    assert "timed out" in node["error"] and "no attempt left" in node["error"]
    assert len(script.seen_at) == 3


def test_stop_during_backoff_cancels_the_retry_and_resume_runs_it(
    dynamodb_local: DynamoDBLocal, server: HTTPServer
) -> None:
    clock = FakeClock()
    script = Script(clock, [status(503, "{}"), status(200, '{"ok": 1}')])
    server.clear()
    server.expect_request("/later").respond_with_handler(script)
    with make_stack(dynamodb_local, clock) as stack:
        execution_id = start(stack, request_graph(server.url_for("/later")))
        deadline = time.monotonic() + 60
        while not stack.waiting_retries():
            assert time.monotonic() < deadline, "the first attempt never asked for a retry"
            time.sleep(0.05)
        assert stack.engine.stop(execution_id).won
        clock.now += 120  # the retry comes due while the run is stopped
        assert stack.idle(30)
        deadline = time.monotonic() + 30
        while stack.engine.store.get_node(execution_id, "req", 0).status != "TERMINATED":
            assert time.monotonic() < deadline, "the stopped run's retry did not terminate its node"
            time.sleep(0.05)
        assert len(script.seen_at) == 1  # cancelled: nothing was sent
        assert stack.engine.resume(execution_id).won
        report = run_to_end(stack, clock, execution_id)
    assert report["status"] == "COMPLETED"
    assert report["outputs"]["response"] == [{"ok": 1}]
    assert len(script.seen_at) == 2


def test_agentflow_run_reaches_an_allow_listed_server_and_refuses_it_otherwise(
    agentflow_run: Callable[..., CliResult], server: HTTPServer
) -> None:
    server.clear()
    server.expect_request("/hello").respond_with_json({"hello": "world"})
    graph = request_graph(server.url_for("/hello"))
    allowed = agentflow_run(graph, env={"AGENTFLOW_HTTP_ALLOW_HOSTS": "127.0.0.1"})
    assert allowed.code == 0, allowed.stderr
    assert allowed.report["outputs"]["response"] == [{"hello": "world"}]
    refused = agentflow_run(graph, env={"AGENTFLOW_HTTP_ALLOW_HOSTS": ""})
    assert refused.code == 1
    node = next(n for n in refused.report["nodes"] if n["node_id"] == "req")
    assert node["status"] == "FAILED"
    assert "127.0.0.1" in node["error"] and "loopback" in node["error"]
    assert "AGENTFLOW_HTTP_ALLOW_HOSTS" in node["error"]
    # only the allowed run reached the server (counted by path: the module's server may still be logging a slow
    # request of an earlier test, which pytest-httpserver records when its handler returns)
    assert [request.path for request, _ in server.log if request.path == "/hello"] == ["/hello"]
