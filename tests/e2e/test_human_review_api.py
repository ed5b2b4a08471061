"""Human review over the real HTTP API of the local stack: a run pauses in REVIEW with a pending review, `GET
/reviews` lists it, `POST /reviews/{id}` approves it with edited data (or rejects it) and the run goes on with what
the block yields; a second decision, two decisions at once, and a decision after a stop answer 409 with the
review's current state; another user's review answers 404 like one that does not exist; bad bodies answer 400 and
change nothing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import ApiServer
from tests.e2e.conftest import CliResult
from tests.e2e.test_api_flow import new_user
from tests.graphs import reviewed
from tests.support.http import Api, Reply, wait_for

OUTPUTS = ("approved", "rejected", "message")


def paused(api: Api, graph: dict[str, Any] | None = None, x: Any = None) -> tuple[str, dict[str, Any]]:
    """A run of `graph` (default: reviewed()) waiting in REVIEW, and its pending review as GET /reviews lists it."""
    graph_id = api.create_graph(graph or reviewed())["graph_id"]
    execution_id = api.execute(graph_id, {"x": {"title": "draft"} if x is None else x})["execution_id"]
    wait_for(lambda: api.execution(execution_id)["status"] == "REVIEW", timeout=60)
    listed = api.get("/reviews")
    assert listed.status == 200, listed.text
    (review,) = [r for r in listed.body["reviews"] if r["execution_id"] == execution_id]
    return execution_id, review


def test_a_review_is_listed_approved_with_an_edit_and_the_run_completes_with_it(api_server: ApiServer) -> None:
    api = new_user(api_server, "review")
    execution_id, review = paused(api)
    assert review["payload"] == {"title": "draft"} and review["instructions"] == "check x"
    assert review["editable"] is True and review["status"] == "WAITING" and review["node_id"] == "review"
    assert set(review) >= {
        "id",
        "execution_id",
        "node_id",
        "payload",
        "instructions",
        "editable",
        "status",
        "created_at",
    }
    report = api.execution(execution_id)
    (node,) = [n for n in report["nodes"] if n["node_id"] == "review"]
    assert node["status"] == "WAITING" and node["review_id"] == review["id"]
    assert api.get(f"/reviews/{review['id']}").body == review

    decided = api.post(
        f"/reviews/{review['id']}", {"approved": True, "reviewed_data": {"title": "final"}, "message": "ok"}
    )
    assert decided.status == 200, decided.text
    assert decided.body["status"] == "APPROVED" and decided.body["was_edited"] is True
    assert decided.body["reviewed_data"] == {"title": "final"} and decided.body["review_message"] == "ok"
    done = api.wait_final(execution_id)
    assert done["status"] == "COMPLETED", done["error"]
    assert done["outputs"] == {"approved": [{"title": "final"}], "rejected": [], "message": ["ok"]}
    assert api.history(execution_id)[-3:] == ["REVIEW", "RUNNING", "COMPLETED"]
    assert [r for r in api.get("/reviews").body["reviews"] if r["id"] == review["id"]] == []

    again = api.post(f"/reviews/{review['id']}", {"approved": False}).error(409, "conflict")
    assert again["details"]["review"]["status"] == "APPROVED" and "already" in again["message"]
    assert again["details"]["execution_status"] == "COMPLETED"


def test_a_rejection_goes_out_on_rejected_data(api_server: ApiServer) -> None:
    api = new_user(api_server, "review")
    execution_id, review = paused(api, x=[1, 2])
    assert api.post(f"/reviews/{review['id']}", {"approved": False}).status == 200
    done = api.wait_final(execution_id)
    assert done["outputs"] == {"approved": [], "rejected": [[1, 2]], "message": ["Execution rejected by reviewer"]}


def test_two_decisions_at_once_one_wins_the_other_answers_409(api_server: ApiServer) -> None:
    api = new_user(api_server, "review")
    execution_id, review = paused(api)
    barrier = threading.Barrier(2)

    def decide(approved: bool) -> Reply:
        barrier.wait()
        return api.post(f"/reviews/{review['id']}", {"approved": approved, "message": f"approved={approved}"})

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(decide, (True, False)))
    assert sorted(a.status for a in answers) == [200, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status == 200).body
    loser = next(a for a in answers if a.status == 409).error(409, "conflict")
    assert loser["details"]["review"]["status"] == winner["status"]
    assert loser["details"]["review"]["review_message"] == winner["review_message"]
    done = api.wait_final(execution_id)
    side = "approved" if winner["status"] == "APPROVED" else "rejected"
    assert done["outputs"][side] == [{"title": "draft"}] and done["outputs"]["message"] == [winner["review_message"]]


def test_a_stopped_runs_review_is_rejected_and_cannot_be_approved(api_server: ApiServer) -> None:
    api = new_user(api_server, "review")
    execution_id, review = paused(api)
    assert api.post(f"/executions/{execution_id}/stop").status == 200
    refused = api.post(f"/reviews/{review['id']}", {"approved": True}).error(409, "conflict")
    assert refused["details"]["review"]["status"] == "REJECTED"
    assert refused["details"]["review"]["review_message"] == "Execution was stopped by user"
    assert refused["details"]["execution_status"] == "TERMINATED"


def test_bad_decisions_answer_400_and_another_users_review_404(api_server: ApiServer) -> None:
    alice, bob = new_user(api_server, "alice"), new_user(api_server, "bob")
    execution_id, review = paused(alice, reviewed(editable=False))
    path = f"/reviews/{review['id']}"
    for body, field in (
        ({}, "approved"),
        ({"approved": "maybe"}, "approved"),
        ({"approved": True, "extra": 1}, "extra"),
    ):
        error = alice.post(path, body).error(400, "invalid_request")
        assert field in error["message"], (body, error)
    long = alice.post(path, {"approved": True, "message": "m" * 2001}).error(400, "invalid_request")
    assert "message" in long["message"]
    edit = alice.post(path, {"approved": True, "reviewed_data": {"title": "x"}}).error(400, "invalid_request")
    assert "not editable" in edit["message"]

    nobody = f"{uuid.uuid4()}_0123456789abcdef"
    for method in ("GET", "POST"):
        theirs = bob.request(method, path, {"approved": True} if method == "POST" else None).error(404, "not_found")
        random = bob.request(method, f"/reviews/{nobody}", {"approved": True} if method == "POST" else None)
        assert theirs["message"].replace(review["id"], "ID") == random.error(404, "not_found")["message"].replace(
            nobody, "ID"
        )
    assert bob.get("/reviews").body == {"reviews": []}
    assert alice.get(path).body["status"] == "WAITING"  # nothing above changed it
    assert alice.execution(execution_id)["status"] == "REVIEW"


def test_agentflow_run_names_the_pending_review_and_exits_3(agentflow_run: Callable[..., CliResult]) -> None:
    done = agentflow_run(reviewed(), "--input", 'x={"title": "draft"}')
    assert done.code == 3, done.stderr
    assert done.report["status"] == "REVIEW"
    assert "the run waits for 1 human review(s)" in done.stderr and "node review: check x" in done.stderr
    assert "POST /reviews/{id}" in done.stderr
