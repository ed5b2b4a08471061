"""Retries with backoff, per-node time limits and per-run deadlines, driven step by step on moto with a fake clock
(docs/architecture.md, "Retries and timeouts"). A block's transient failure is injected at `execute_block` (the
real HTTP block's retries run end to end in tests/e2e/test_http_retries.py)."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import agentflow.executor.attempts as attempts_module
from agentflow.blocks.execution import BlockRun, execute_block
from agentflow.config import Settings
from agentflow.errors import RetryableError
from agentflow.events import NODE_EXECUTION_QUEUED, RecordingPublisher
from agentflow.executor import Engine, NodeRunOutcome
from agentflow.graph import GraphValidationError, validate_graph
from agentflow.reports import execution_report
from agentflow.retries import RecordingRetryQueue, ResolvedPolicy, RetryMessage, RetryPolicy, send_delay
from agentflow.store import Store
from tests import graphs
from tests.support.clock import FakeClock
from tests.unit.driver import drain

POLICY = ResolvedPolicy(max_attempts=3, initial_delay_seconds=2.0, max_delay_seconds=60.0)


class Flaky:
    """Fails node `node_id` transiently `failures` times, then lets the block run; counts attempts per node."""

    def __init__(self, node_id: str, failures: int, retry_after: float | None = None) -> None:
        self.node_id, self.failures, self.retry_after = node_id, failures, retry_after
        self.calls: list[tuple[str, int]] = []

    def __call__(self, block: Any, data: Any, context: Any) -> BlockRun:
        self.calls.append((context.node_id, context.attempt))
        if context.node_id == self.node_id and self.failures > 0:
            self.failures -= 1
            try:
                raise RetryableError("HTTP 503 from the provider", retry_after=self.retry_after)
            except RetryableError as exc:
                return BlockRun([("error", str(exc))], str(exc), retryable=True, retry_after=exc.retry_after)
        return execute_block(block, data, context)

    def attempts_of(self, node_id: str) -> list[int]:
        return [attempt for node, attempt in self.calls if node == node_id]


@pytest.fixture
def queue() -> RecordingRetryQueue:
    return RecordingRetryQueue()


@pytest.fixture
def retrying(
    moto_table: tuple[Any, str], publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue
) -> Engine:
    client, table = moto_table
    settings = Settings(table_name=table, event_bus_name="bus", default_lease_seconds=60)
    return Engine(Store(client, table, clock=clock), publisher, settings, retry_queue=queue, rng=random.Random(7))


def _start(engine: Engine, graph: dict[str, Any], inputs: dict[str, Any] | None = None) -> str:
    valid = validate_graph(graph)
    graph_id, version = engine.register_graph("u1", valid)
    return engine.start_execution("u1", graph_id, version, {"x": 1} if inputs is None else inputs).execution_id


def _deliver(engine: Engine, message: RetryMessage) -> NodeRunOutcome:
    return engine.run_node(message.execution_id, message.node_id, message.seq, attempt=message.attempt)


@pytest.fixture
def flaky_add(monkeypatch: pytest.MonkeyPatch) -> Iterator[Flaky]:
    flaky = Flaky("add", failures=2)
    monkeypatch.setattr(attempts_module, "execute_block", flaky)
    yield flaky


# -- the policy ----------------------------------------------------------------------------------------------


def test_backoff_is_full_jitter_within_doubling_bounds_and_capped() -> None:
    rng = random.Random(1)
    for attempt, bound in [(1, 2.0), (2, 4.0), (3, 8.0), (6, 60.0), (40, 60.0)]:
        delays = [POLICY.delay(attempt, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in delays), (attempt, max(delays))
        assert max(delays) > bound * 0.8 and min(delays) < bound * 0.2  # spread over the whole range: full jitter


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    rng = random.Random(2)
    assert all(POLICY.delay(1, 30.0, rng) >= 30.0 for _ in range(50))
    assert POLICY.delay(1, 3600.0, rng) == 60.0
    assert send_delay(0.2) == 1 and send_delay(2.0) == 2 and send_delay(5000) == 900


def test_node_metadata_beats_graph_beats_settings() -> None:
    graph = graphs.linear()
    graph["retry_policy"] = {"max_attempts": 5, "initial_delay_seconds": 1}
    graph["nodes"][1]["metadata"] = {"retry_policy": {"max_attempts": 2}}
    valid = validate_graph(graph)
    settings = Settings(table_name="t", event_bus_name="b").retry_policy
    assert valid.retry_policy("add", settings) == ResolvedPolicy(2, 1.0, 60.0)
    assert valid.retry_policy("mul", settings) == ResolvedPolicy(5, 1.0, 60.0)
    assert RetryPolicy().over(settings) == settings


@pytest.mark.parametrize(
    ("where", "value", "named"),
    [
        ("graph", {"retry_policy": {"max_attempts": 0}}, "max_attempts"),
        ("graph", {"retry_policy": {"attempts": 3}}, "attempts"),
        ("graph", {"timeout_seconds": -1}, "timeout_seconds"),
        ("node", {"retry_policy": {"max_delay_seconds": 5000}}, "max_delay_seconds"),
        ("node", {"timeout_seconds": "soon"}, "metadata.timeout_seconds"),
    ],
)
def test_bad_policies_and_timeouts_are_refused_naming_them(where: str, value: dict[str, Any], named: str) -> None:
    graph = graphs.linear()
    if where == "graph":
        graph.update(value)
    else:
        graph["nodes"][1]["metadata"] = value
    with pytest.raises(GraphValidationError) as caught:
        validate_graph(graph)
    assert named in str(caught.value)
    if where == "node":
        assert caught.value.problems[0].node_id == "add"


# -- retries in the executor ---------------------------------------------------------------------------------


def test_transient_failures_retry_after_their_backoff_then_complete(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher)
    for attempt in (2, 3):
        [(message, delay)] = queue.take()
        assert message.attempt == attempt and message.node_id == "add"
        assert 0 <= delay <= POLICY.bound(attempt - 1)
        if send_delay(delay) > 0:  # not due yet: the claim refuses, the block does not run
            assert _deliver(retrying, message) is NodeRunOutcome.NOT_DUE
            queue.take()  # the early message was sent again for the time left
        clock.now += send_delay(delay)
        assert _deliver(retrying, message) in (NodeRunOutcome.RETRYING, NodeRunOutcome.COMPLETED)
        drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED", report
    assert report["outputs"] == {"result": [70]}
    assert flaky_add.attempts_of("add") == [1, 2, 3]
    add = next(n for n in report["nodes"] if n["node_id"] == "add")
    assert add["attempts"] == 3
    log = add["attempt_log"]
    assert [(e["attempt"], e["error"]) for e in log] == [
        (1, "HTTP 503 from the provider"),
        (2, "HTTP 503 from the provider"),
        (3, None),
    ]
    assert 0 <= log[0]["retry_in_seconds"] <= 2.0 and 0 <= log[1]["retry_in_seconds"] <= 4.0


def test_each_attempt_runs_once_whatever_is_redelivered(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher, copies=3)
    stale: list[RetryMessage] = []
    while queue.sent:
        [(message, delay)] = queue.take()
        clock.now += send_delay(delay) + 1
        outcomes = [_deliver(retrying, message) for _ in range(3)]
        assert sum(o in (NodeRunOutcome.RETRYING, NodeRunOutcome.COMPLETED) for o in outcomes) == 1, outcomes
        for old in stale:  # an earlier attempt's message, delivered late, runs nothing
            assert _deliver(retrying, old) in (NodeRunOutcome.DUPLICATE, NodeRunOutcome.NOT_DUE)
        stale.append(message)
        drain(retrying, publisher, copies=3)
    assert flaky_add.attempts_of("add") == [1, 2, 3]
    report = execution_report(retrying.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70]}


def test_when_attempts_are_spent_the_node_fails_saying_so(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    flaky_add.failures = 10
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher)
    while queue.sent:
        [(message, delay)] = queue.take()
        clock.now += send_delay(delay)
        _deliver(retrying, message)
        drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id)
    assert report is not None and report["status"] == "FAILED"
    add = next(n for n in report["nodes"] if n["node_id"] == "add")
    assert add["status"] == "FAILED" and add["attempts"] == 3
    assert add["error"] == "HTTP 503 from the provider (attempt 3 of 3: no attempt left)"
    assert "no attempt left" in report["error"]


def test_without_a_retry_queue_a_transient_failure_fails_at_once(
    engine: Engine, publisher: RecordingPublisher, flaky_add: Flaky
) -> None:
    execution_id = _start(engine, graphs.linear())
    drain(engine, publisher)
    report = execution_report(engine.store, execution_id)
    assert report is not None and report["status"] == "FAILED"
    assert flaky_add.attempts_of("add") == [1]


def test_retry_after_sets_the_delay(
    retrying: Engine, publisher: RecordingPublisher, queue: RecordingRetryQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(attempts_module, "execute_block", Flaky("add", failures=1, retry_after=20.0))
    _start(retrying, graphs.linear())
    drain(retrying, publisher)
    [(_, delay)] = queue.take()
    assert delay == 20.0


def test_stop_during_backoff_cancels_the_retry_and_resume_runs_it(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    flaky_add.failures = 1
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher)
    [(message, delay)] = queue.take()
    assert retrying.stop(execution_id).won
    clock.now += send_delay(delay)
    assert _deliver(retrying, message) is NodeRunOutcome.TERMINATED
    assert retrying.store.get_node(execution_id, "add", 0).status == "TERMINATED"
    assert flaky_add.attempts_of("add") == [1]
    assert retrying.resume(execution_id).won
    drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"result": [70]}
    assert flaky_add.attempts_of("add") == [1, 2]


def test_a_lost_retry_message_is_republished_by_the_sweeper_once_due(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    flaky_add.failures = 1
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher)
    [(_, delay)] = queue.take()  # the message is lost
    clock.now += 100  # past updated_at + stale, but the retry is not due yet: nothing to do
    node = retrying.store.get_node(execution_id, "add", 0)
    assert node.status == "QUEUED" and node.due_at() == pytest.approx(clock.now - 100 + delay, abs=0.01)
    clock.now = node.due_at() + 10
    assert retrying.sweep(stale_after_seconds=120).republished == 0
    clock.now = node.due_at() + 121
    assert retrying.sweep(stale_after_seconds=120).republished == 1
    drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED"


# -- time limits ---------------------------------------------------------------------------------------------


def test_a_block_past_its_time_limit_fails_the_attempt_retryably(
    retrying: Engine, publisher: RecordingPublisher, queue: RecordingRetryQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def stuck(block: Any, data: Any, context: Any) -> BlockRun:
        if context.node_id == "add":
            release.wait(30)
        return execute_block(block, data, context)

    monkeypatch.setattr(attempts_module, "execute_block", stuck)
    graph = graphs.linear()
    graph["nodes"][1]["metadata"] = {"timeout_seconds": 0.2}
    try:
        execution_id = _start(retrying, graph)
        drain(retrying, publisher)
    finally:
        release.set()
    [(message, _)] = queue.take()
    assert message.attempt == 2
    node = retrying.store.get_node(execution_id, "add", 0)
    assert node.status == "QUEUED"
    assert "did not finish within its time limit of 0.2 s" in node.attempt_log[0]["error"]


def test_a_run_past_its_deadline_fails_in_the_executor_and_in_the_sweep(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock
) -> None:
    graph = graphs.linear()
    graph["timeout_seconds"] = 60
    first = _start(retrying, graph)
    second = _start(retrying, graph)
    events = [e for e in publisher.take() if e.detail_type == NODE_EXECUTION_QUEUED]
    clock.now += 61
    for event in events:
        if event.detail["execution_id"] == first:
            assert retrying.run_node(first, event.detail["node_id"], 0) is NodeRunOutcome.TERMINATED
    report = retrying.sweep()
    assert report.timed_out == 1  # the second run: no worker came by
    for execution_id in (first, second):
        run = retrying.store.get_execution(execution_id)
        assert run is not None and run.status == "FAILED"
        assert run.error is not None and "timed out" in run.error and "60 s" in run.error


def test_recovery_sends_again_the_retries_a_dead_process_held(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue, flaky_add: Flaky
) -> None:
    flaky_add.failures = 1
    execution_id = _start(retrying, graphs.linear())
    drain(retrying, publisher)
    [(message, delay)] = queue.take()  # held in memory by the local queue of a process that then died
    clock.now += delay / 2
    retrying.recover_abandoned()
    [(again, left)] = queue.take()
    assert again == message and left == pytest.approx(delay / 2, abs=0.01)
    clock.now += send_delay(left)
    assert _deliver(retrying, again) is NodeRunOutcome.COMPLETED
    drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id, ["result"])
    assert report is not None and report["status"] == "COMPLETED"


def test_a_countdown_waits_without_a_worker_and_its_wait_is_not_an_attempt(
    retrying: Engine, publisher: RecordingPublisher, clock: FakeClock, queue: RecordingRetryQueue
) -> None:
    graph = (
        graphs.GraphBuilder("countdown")
        .input("in", "x")
        .node("wait", "CountdownTimerBlock", seconds=2000)
        .output("out", "done")
        .link("in", "result", "wait", "input_message")
        .link("wait", "output_message", "out", "value")
        .build()
    )
    graph["nodes"][1]["metadata"] = {"retry_policy": {"max_attempts": 1}}  # a wait must not use one up
    execution_id = _start(retrying, graph, {"x": "ring"})
    started = clock.now
    drain(retrying, publisher)
    [(message, delay)] = queue.take()
    assert message.attempt == 2 and delay == 2000
    clock.now = started + send_delay(delay)  # SQS delays at most 900 s: the message comes early
    assert _deliver(retrying, message) is NodeRunOutcome.NOT_DUE
    [(again, left)] = queue.take()  # sent on for the time left
    assert again == message and left == pytest.approx(2000 - 900)
    clock.now = started + 2000
    assert _deliver(retrying, again) is NodeRunOutcome.COMPLETED
    drain(retrying, publisher)
    report = execution_report(retrying.store, execution_id, ["done"])
    assert report is not None and report["status"] == "COMPLETED" and report["outputs"] == {"done": ["ring"]}
    wait = next(n for n in report["nodes"] if n["node_id"] == "wait")
    assert [(e["attempt"], e.get("deferred_seconds"), e["error"]) for e in wait["attempt_log"]] == [
        (1, 2000, None),
        (1, None, None),
    ]


def test_without_a_delayed_queue_a_countdown_fails_saying_why(engine: Engine, publisher: RecordingPublisher) -> None:
    graph = graphs.GraphBuilder("countdown").node("wait", "CountdownTimerBlock", seconds=5).build()
    execution_id = _start(engine, graph, {})
    drain(engine, publisher)
    node = engine.store.get_node(execution_id, "wait", 0)
    assert node is not None and node.status == "FAILED" and "no delayed-run queue" in (node.error or "")
