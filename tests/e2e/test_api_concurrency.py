"""Concurrent stop, resume and execute over real HTTP: 20 clients at once, several rounds, on one run.

Whatever the interleaving: every answer is 200, 202 or 409 (never a 5xx); a 409 names a status that really
forbids the change; each accepted stop and resume is exactly one step of the status history, which holds only
transitions of the table; and once it settles the run is COMPLETED with every node execution COMPLETED and
every output exactly once. The runs started meanwhile complete too.

The racing clients each keep one HTTP/1.1 keep-alive connection, opened before the race, so that all 20
requests reach the handlers at once. Twenty *new* connections at once are a separate test: the local
gateway must answer each of them too.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from agentflow.statuses import EXECUTION_TRANSITIONS, ExecutionStatus
from tests import graphs
from tests.conftest import ApiServer
from tests.e2e.test_api_flow import assert_allowed_history, new_user
from tests.support.http import Api, Reply, wait_for

CLIENTS = 20
ROUNDS = 4
ITEMS = list(range(40))
SMALL = list(range(3))  # the fan-outs started during the race


class Client:
    """One client with one keep-alive connection (reopened only after the server announced it closes it).
    A request is never retried, so a call is answered once or fails visibly."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Reply:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.api.host, self.api.port, timeout=60)
        sent = {"X-API-Key": str(self.api.key), **(headers or {})}
        data = None if body is None else json.dumps(body).encode()
        if data is not None:
            sent["Content-Type"] = "application/json"
        self.connection.request(method, path, body=data, headers=sent)
        response = self.connection.getresponse()
        payload = response.read()
        if response.will_close:
            self.close()
        parsed = json.loads(payload) if payload else None
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, reply_headers, payload.decode(errors="replace"), parsed)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@dataclass(frozen=True)
class Call:
    round: int
    action: str  # stop, resume or execute
    status: int
    body: Any
    text: str


@pytest.fixture
def user(api_server: ApiServer) -> Api:
    return new_user(api_server, "race")


@pytest.fixture
def clients(user: Api) -> Iterator[list[Client]]:
    opened = [Client(user) for _ in range(CLIENTS)]
    for client in opened:  # connect one by one, before any race
        assert client.request("GET", "/graphs").status == 200
    yield opened
    for client in opened:
        client.close()


def squares(items: list[int]) -> list[float]:
    return [float(i * i) for i in items]


def test_concurrent_stop_resume_and_execute(user: Api, clients: list[Client]) -> None:
    graph_id = user.create_graph(graphs.fan_out())["graph_id"]
    execution_id = user.execute(graph_id, {"items": ITEMS})["execution_id"]
    wait_for(lambda: user.execution(execution_id)["status"] == "RUNNING", timeout=60)

    rng = random.Random(20240611)  # the same mix of calls on every run; the interleaving is up to the server
    calls: list[Call] = []
    lock = threading.Lock()

    def race(round_no: int, client: Client, action: str, barrier: threading.Barrier) -> None:
        barrier.wait(timeout=60)  # all 20 fire together
        if action == "execute":
            reply = client.request("POST", f"/graphs/{graph_id}/execute", {"inputs": {"items": SMALL}})
        else:
            reply = client.request("POST", f"/executions/{execution_id}/{action}")
        with lock:
            calls.append(Call(round_no, action, reply.status, reply.body, reply.text))

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for round_no in range(ROUNDS):
            actions = ["execute" if i % 5 == 0 else rng.choice(["stop", "resume"]) for i in range(CLIENTS)]
            barrier = threading.Barrier(CLIENTS)
            futures = [pool.submit(race, round_no, c, a, barrier) for c, a in zip(clients, actions, strict=True)]
            for future in futures:
                future.result()
            time.sleep(0.2)  # let the run move on between rounds
    assert len(calls) == CLIENTS * ROUNDS

    # settle: resume the run whenever the last word was a stop, until it ends
    settle_resumes = 0
    deadline = time.monotonic() + 120
    while (status := user.execution(execution_id)["status"]) not in ("COMPLETED", "FAILED"):
        assert time.monotonic() < deadline, f"the run did not settle: still {status}"
        if status == "TERMINATED":
            reply = user.post(f"/executions/{execution_id}/resume")
            assert reply.status == 200, reply.text
            settle_resumes += 1
        time.sleep(0.1)

    # every answer is one the API documents, and a refusal names a status that forbids the change
    unexpected = [c for c in calls if c.status not in ((202,) if c.action == "execute" else (200, 409))]
    assert not unexpected, "\n".join(f"{c.action}: {c.status} {c.text[:300]}" for c in unexpected)
    refuses_stop = {s.value for s in ExecutionStatus if ExecutionStatus.TERMINATED not in EXECUTION_TRANSITIONS[s]}
    for c in calls:
        if c.action == "execute":
            assert c.body["graph_id"] == graph_id and c.body["created"] is True
        elif c.status == 200:
            expected = "TERMINATED" if c.action == "stop" else "RUNNING"
            assert c.body == {"execution_id": execution_id, "status": expected}, c
        else:
            assert c.body["error"]["code"] == "conflict", c
            current = c.body["error"]["details"]["status"]
            if c.action == "stop":
                assert current in refuses_stop, f"stop refused while {current}"
            else:
                assert current != "TERMINATED", "resume refused while TERMINATED"
    won = Counter(c.action for c in calls if c.status == 200)
    assert won["stop"] >= 1 and won["resume"] >= 1, f"the race moved nothing: {won}"

    # the history: allowed transitions only; one TERMINATED per accepted stop, one resume per accepted resume
    history = user.history(execution_id)
    assert_allowed_history(history)
    assert history[-1] == "COMPLETED"
    assert history.count("TERMINATED") == won["stop"], (won, history)
    resumed = sum(1 for step in itertools.pairwise(history) if step == ("TERMINATED", "RUNNING"))
    assert resumed == won["resume"] + settle_resumes, (won, settle_resumes, history)

    # the final status agrees with the node executions
    final = user.wait_final(execution_id)
    assert final["status"] == "COMPLETED", final["error"]
    unfinished = [(n["node_id"], n["seq"], n["status"]) for n in final["nodes"] if n["status"] != "COMPLETED"]
    assert not unfinished
    assert sorted(final["outputs"]["squares"]) == squares(ITEMS)  # every square, each exactly once
    keys = [(n["node_id"], n["seq"]) for n in final["nodes"]]
    assert len(keys) == len(set(keys)) == final["stats"]["node_executions"] == 2 + 2 * len(ITEMS)
    # from 1: a square has one source, whose first execution alone may have slot 0 (ValidGraph.sole_source_sinks)
    assert sorted(n["seq"] for n in final["nodes"] if n["node_id"] == "square") == list(range(1, len(ITEMS) + 1))

    # the runs started meanwhile: each its own, each complete
    started = [c.body["execution_id"] for c in calls if c.action == "execute"]
    assert len(set(started)) == len(started) == ROUNDS * CLIENTS // 5
    for other in started:
        report = user.wait_final(other)
        assert report["status"] == "COMPLETED", report["error"]
        assert sorted(report["outputs"]["squares"]) == squares(SMALL)
        assert_allowed_history(user.history(other))
    listed = user.get(f"/graphs/{graph_id}/executions?limit=100").body
    assert {e["execution_id"] for e in listed["executions"]} == {execution_id, *started}
    assert all(e["status"] == "COMPLETED" for e in listed["executions"])

    # and nothing moves it any more
    for action in ("stop", "resume"):
        assert user.post(f"/executions/{execution_id}/{action}").error(409, "conflict")["details"] == {
            "status": "COMPLETED"
        }
    assert user.history(execution_id) == history


def test_concurrent_starts_with_one_idempotency_key_make_one_execution(user: Api, clients: list[Client]) -> None:
    graph_id = user.create_graph(graphs.fan_out())["graph_id"]
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    barrier = threading.Barrier(CLIENTS)

    def start(client: Client) -> Reply:
        barrier.wait(timeout=60)
        return client.request("POST", f"/graphs/{graph_id}/execute", {"inputs": {"items": SMALL}}, key)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(start, clients))
    assert [a.status for a in answers] == [202] * CLIENTS, [a.text for a in answers if a.status != 202]
    ids = {a.body["execution_id"] for a in answers}
    assert len(ids) == 1, f"one key started {len(ids)} executions"
    assert sum(1 for a in answers if a.body["created"]) == 1
    (execution_id,) = ids
    report = user.wait_final(execution_id)
    assert report["status"] == "COMPLETED" and sorted(report["outputs"]["squares"]) == squares(SMALL)
    assert report["stats"]["node_executions"] == 2 + 2 * len(SMALL)
    assert_allowed_history(user.history(execution_id))
    listed = user.get(f"/graphs/{graph_id}/executions").body["executions"]
    assert [e["execution_id"] for e in listed] == [execution_id]


def test_twenty_new_connections_at_once_all_get_an_answer(user: Api) -> None:
    """20 clients that each open a connection and POST at the same moment: each gets an HTTP answer."""
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    execution_id = user.execute(graph_id, {"x": 1})["execution_id"]
    user.wait_final(execution_id)
    outcomes: Counter[str] = Counter()

    def stop(barrier: threading.Barrier) -> str:
        barrier.wait(timeout=60)
        try:
            return str(user.post(f"/executions/{execution_id}/stop", {}).status)
        except OSError as exc:  # ConnectionResetError, BrokenPipeError, ...
            return type(exc).__name__

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        for _ in range(3):
            barrier = threading.Barrier(CLIENTS)
            outcomes.update(pool.map(stop, [barrier] * CLIENTS))
    assert outcomes == Counter({"409": 3 * CLIENTS}), f"not every connection was answered: {dict(outcomes)}"
