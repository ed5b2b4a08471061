"""The live view (README, "The terminal client"): what it shows of a report, the plain lines' throttle on a fake
clock (never one line per status change), the terminal display's frames, and following a run over the API."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from agentflow_local.cli_follow import follow
from agentflow_local.cli_inputs import UsageError
from agentflow_local.client import ClientError
from agentflow_local.live_view import NoView, PlainView, RichView, Snapshot, make_view, progress_interval

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def node(node_id: str, status: str, seq: int = 0, block: str = "CalculatorBlock") -> dict[str, Any]:
    return {"node_id": node_id, "seq": seq, "status": status, "block_name": block}


def report(status: str, nodes: list[dict[str, Any]], **stats: Any) -> dict[str, Any]:
    base = {"node_executions": len([n for n in nodes if n["status"] != "INCOMPLETE"]), "dynamodb_requests": 7}
    return {"execution_id": "e1", "graph_id": "g1", "graph_version": 2, "status": status, "nodes": nodes,
            "outputs": {}, "stats": base | stats}  # fmt: skip


def test_a_snapshot_counts_finished_out_of_queued_and_names_the_running_nodes() -> None:
    nodes = [node("a", "COMPLETED"), node("b", "FAILED"), node("c", "RUNNING", 3, "StepThroughItemsBlock")]
    nodes += [node("d", "QUEUED"), node("e", "INCOMPLETE"), node("f", "TERMINATED")]
    snap = Snapshot.of(report("RUNNING", nodes, llm_cost_usd=0.25, llm_calls=2, lambda_invocations=4))
    assert (snap.finished, snap.queued) == (3, 5)  # the INCOMPLETE slot waits for inputs: not queued
    assert snap.running == ("c#3 StepThroughItemsBlock",)
    assert snap.by_status() == "INCOMPLETE 1  QUEUED 1  RUNNING 1  COMPLETED 1  FAILED 1  TERMINATED 1"
    cost = snap.cost()
    assert "7 DynamoDB requests" in cost and "4 Lambda invocations" in cost and "LLM $0.250000 (2 calls)" in cost
    # the engine's count of queued node executions wins when the report lists fewer (e.g. one page of nodes)
    assert Snapshot.of(report("RUNNING", [], node_executions=40)).queued == 40


def test_plain_lines_are_throttled_by_the_clock_whatever_the_number_of_changes() -> None:
    clock, out = Clock(), io.StringIO()
    view = PlainView(out, interval=5.0, clock=clock)
    view.start("e1", "Calculator")
    shown = 0
    for step in range(1200):  # 1,200 reports (status changes) over 12 s
        clock.now += 0.01
        if view.due():
            shown += 1
        view.show(report("RUNNING", [node(f"n{i}", "COMPLETED") for i in range(step % 7)] + [node("x", "RUNNING")]))
    view.close(report("COMPLETED", [node("a", "COMPLETED"), node("b", "COMPLETED")]))
    lines = out.getvalue().splitlines()
    assert shown == 2  # at 5 s and 10 s
    assert len(lines) == 1 + 2 + 1  # the start, one per interval, the end
    assert lines[0] == "agentflow: execution e1 of Calculator"
    assert lines[1].startswith("agentflow: 5.0s RUNNING: ") and lines[2].startswith("agentflow: 10.0s RUNNING: ")
    assert lines[3].startswith("agentflow: 12.0s COMPLETED: 2/2 node executions finished, 0 running; cost ")
    view.show(report("COMPLETED", []))
    view.close(report("COMPLETED", []))
    assert len(out.getvalue().splitlines()) == 4  # nothing after the end


def test_the_interval_setting_and_its_default() -> None:
    assert progress_interval({}) == 5.0
    assert progress_interval({"AGENTFLOW_PROGRESS_INTERVAL": "0.5"}) == 0.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        with pytest.raises(UsageError, match="AGENTFLOW_PROGRESS_INTERVAL must be a number of seconds"):
            progress_interval({"AGENTFLOW_PROGRESS_INTERVAL": bad})


def test_make_view_picks_by_the_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("AGENTFLOW_PROGRESS_INTERVAL", raising=False)
    assert isinstance(make_view(io.StringIO(), quiet=True), NoView)
    assert isinstance(make_view(Tty()), RichView)
    plain = make_view(io.StringIO())
    assert isinstance(plain, PlainView) and plain.interval == 5.0
    monkeypatch.setenv("AGENTFLOW_PROGRESS_INTERVAL", "2")
    assert isinstance(plain := make_view(io.StringIO()), PlainView) and plain.interval == 2.0


def test_the_terminal_display_redraws_in_place_and_leaves_its_last_frame() -> None:
    clock, out = Clock(), io.StringIO()
    view = RichView(out, clock=clock)
    view.start("e1", "Calculator")
    view.show(report("RUNNING", [node("a", "COMPLETED"), node("b", "RUNNING"), node("c", "QUEUED")]))
    assert not view.due()  # the next frame waits for the refresh interval, on the injected clock
    clock.now += 0.25
    assert view.due()
    clock.now += 1.0
    view.close(report("COMPLETED", [node("a", "COMPLETED"), node("b", "COMPLETED"), node("c", "COMPLETED")]))
    text = ANSI.sub("", out.getvalue())
    assert "1/3 node executions finished" in text and "running now: b#0 CalculatorBlock" in text
    last = text[text.rindex("agentflow: execution e1 of Calculator") :]
    assert re.search(r"^COMPLETED\s.*\s3/3 node executions finished$", last, re.M), last
    assert "running now: (none)" in last
    assert "elapsed 1.2s" in last and "7 DynamoDB requests" in last
    assert out.getvalue().count("\x1b[?25l") == 1 and out.getvalue().endswith("\x1b[?25h")  # the cursor is back


class FakeApi:
    """GET /executions/{eid} answers from a script; the last answer repeats. Records stops."""

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        self.answers = answers
        self.reads = 0
        self.stops = 0

    def execution(self, execution_id: str) -> dict[str, Any]:
        answer = self.answers[min(self.reads, len(self.answers) - 1)]
        self.reads += 1
        return answer

    def control(self, execution_id: str, action: str) -> dict[str, Any]:
        assert action == "stop"
        self.stops += 1
        return {"execution_id": execution_id, "status": "TERMINATED"}


def test_follow_waits_for_the_end_and_for_its_costs_to_settle() -> None:
    clock = Clock()
    running = report("RUNNING", [node("a", "RUNNING")])
    ended = report("COMPLETED", [node("a", "COMPLETED")], dynamodb_requests=7)
    settled = report("COMPLETED", [node("a", "COMPLETED")], dynamodb_requests=41)
    api = FakeApi([running, running, ended, settled])

    def sleep(seconds: float) -> None:
        clock.now += seconds

    final = follow(api, "e1", NoView(), timeout=60, clock=clock, sleep=sleep)  # type: ignore[arg-type]
    assert final["status"] == "COMPLETED" and final["stats"]["dynamodb_requests"] == 41
    assert api.reads == 4 + 5  # then five reads with the same costs


def test_follow_past_its_timeout_stops_watching_or_stops_the_run() -> None:
    clock = Clock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    running = report("RUNNING", [node("a", "RUNNING")])
    api = FakeApi([running])
    with pytest.raises(ClientError, match="is still RUNNING after 2s"):
        follow(api, "e1", NoView(), timeout=2, clock=clock, sleep=sleep)  # type: ignore[arg-type]
    assert api.stops == 0  # only watching: the run goes on

    stopped = report("TERMINATED", [node("a", "TERMINATED")])
    owner = FakeApi([running] * 30 + [stopped])
    final = follow(owner, "e1", NoView(), timeout=2, owns_run=True, clock=clock, sleep=sleep)  # type: ignore[arg-type]
    assert owner.stops == 1 and final["status"] == "TERMINATED"
