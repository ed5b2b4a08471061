"""The LLM blocks end to end, through the real `openai` SDK, against a loopback OpenAI server
(tests/support/llm_server.py): `agentflow run` with OPENAI_BASE_URL and OPENAI_API_KEY set as a user sets them, the
examples in examples/llm/ on `agentflow serve` (the pull-request summariser started by a signed GitHub webhook),
the same agents with every event delivered three times, a run without any key, and a run over its token budget.

One LLM server, one `agentflow serve` and one redelivering stack serve the whole module. Nothing leaves
127.0.0.0/8: the subprocesses get no proxy variables and run under the socket guard of tests/support/network.py
(installed by a `sitecustomize` on their PYTHONPATH, which logs any refused connection to a file the tests check),
and this process runs under the same guard. No assertion depends on the wall clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agentflow.api.auth import create_api_key
from agentflow.credentials.platform import PLATFORM_CREDENTIALS
from agentflow.llm.prices import cost_usd
from agentflow.triggers.cron import next_runs
from agentflow_local.api_gateway import LocalApiGateway
from agentflow_local.dynamodb import DynamoDBLocal, free_port
from agentflow_local.stack import LocalStack, LocalStackConfig
from tests.e2e.conftest import CliResult
from tests.support.http import Api, wait_for
from tests.support.llm_server import (
    LlmServer,
    RecordedRequest,
    Reply,
    llm_server,
    openai_text,
    openai_tool_calls,
    provider_error,
)
from tests.support.network import guard_sockets
from tests.support.serving import Served, serve_env, start_serve

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "llm"
MODEL = "gpt-4o-mini"
KEY = "test"  # the platform key the subprocesses get as OPENAI_API_KEY
OCTOKIT_INDEX = ROOT / "node_modules" / "@octokit" / "webhooks-examples" / "api.github.com" / "index.json"
OCTOKIT_REPO = "Codertocat/Hello-World"  # the repository of @octokit/webhooks-examples' pull_request payloads
FINAL = frozenset({"COMPLETED", "FAILED", "TERMINATED"})
PROXY_VARIABLES = frozenset({"http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "ws_proxy", "wss_proxy"})
PROVIDER_VARIABLES = frozenset(
    {
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    }
    | {p.env for p in PLATFORM_CREDENTIALS if p.env}
)
GUARD_LOG_ENV = "AGENTFLOW_TEST_NETWORK_LOG"
SITECUSTOMIZE = """\
# Written by tests/e2e/test_llm_agents.py: this process may not leave 127.0.0.0/8 (tests/support/network.py).
import os
import sys

_root = {root!r}
sys.path.insert(0, _root)
try:
    from tests.support.network import guard_sockets
finally:
    sys.path.remove(_root)
_log = os.environ.get({env!r})


class _Logged(list):
    def append(self, item):
        super().append(item)
        if _log:
            with open(_log, "a", encoding="utf-8") as log:
                log.write(f"pid {{os.getpid()}} ({{' '.join(sys.argv)[:200]}}): {{item}}\\n")


_context = guard_sockets()  # kept: a collected generator would run its `finally` and lift the guard
_guard = _context.__enter__()
_guard.violations = _Logged()
"""


# -- environments: loopback only, the platform key or none


def clean_environment(base: Mapping[str, str]) -> dict[str, str]:
    """`base` without proxies, AWS endpoint overrides, provider keys and local-stack locations."""
    env = {
        name: value
        for name, value in base.items()
        if name.lower() not in PROXY_VARIABLES
        and name.lower() != "no_proxy"
        and not name.startswith("AWS_ENDPOINT_URL")
        and name not in PROVIDER_VARIABLES
        and name not in ("AGENTFLOW_DYNAMODB_ENDPOINT", "AGENTFLOW_TABLE", "AGENTFLOW_LOCAL_DIR", "PYTHONPATH")
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env |= {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "us-east-1"}
    return env


@dataclass(frozen=True)
class NetworkGuard:
    """The sitecustomize folder subprocesses put first on their PYTHONPATH, and the log of what it refused."""

    folder: Path
    log: Path

    def environment(self) -> dict[str, str]:
        return {"PYTHONPATH": str(self.folder), GUARD_LOG_ENV: str(self.log)}

    def violations(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []


@pytest.fixture(scope="module")
def network_guard(tmp_path_factory: pytest.TempPathFactory) -> NetworkGuard:
    folder = tmp_path_factory.mktemp("sitecustomize")
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(root=str(ROOT), env=GUARD_LOG_ENV))
    guard = NetworkGuard(folder, folder / "refused.log")
    # the guard itself must be able to fail: a subprocess connecting to TEST-NET-1 is refused, and logged
    probe = (
        "import socket\n"
        "assert 'guard_sockets' in socket.socket.connect.__qualname__, 'no guard: nothing sent'\n"
        "try:\n    socket.create_connection(('192.0.2.1', 9), timeout=1)\nexcept AssertionError:\n    pass\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=clean_environment(os.environ) | guard.environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [line.rsplit(": ", 1)[1] for line in guard.violations()] == ["connect to 192.0.2.1:9"], guard.violations()
    guard.log.unlink()
    return guard


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    with llm_server() as server:
        yield server


@pytest.fixture(autouse=True)
def _each_test(llm: LlmServer, network_guard: NetworkGuard) -> Iterator[None]:
    """A fresh script per test; afterwards no test mistake on the server and no refused connection anywhere."""
    llm.reset()
    with guard_sockets() as guard:
        yield
    assert not guard.violations, guard.violations
    assert llm.problems == [], llm.problems
    assert network_guard.violations() == [], network_guard.violations()


@pytest.fixture(scope="module")
def cli_env(
    dynamodb_local: DynamoDBLocal, llm: LlmServer, network_guard: NetworkGuard, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """What `agentflow run` gets: the session's DynamoDB Local, a table and data folder of this module, the loopback
    OpenAI server as OPENAI_BASE_URL and the platform key OPENAI_API_KEY=test."""
    return clean_environment(os.environ) | {
        "AGENTFLOW_DYNAMODB_ENDPOINT": dynamodb_local.endpoint,
        "AGENTFLOW_TABLE": f"llm-{uuid.uuid4().hex[:10]}",
        "AGENTFLOW_LOCAL_DIR": str(tmp_path_factory.mktemp("llm-cli-local")),
        "OPENAI_BASE_URL": llm.openai_base_url,
        "OPENAI_API_KEY": KEY,
        **network_guard.environment(),
    }


def agentflow_run(graph: dict[str, Any], env: dict[str, str], tmp_path: Path, *args: str) -> CliResult:
    path = tmp_path / f"graph-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps(graph))
    command = [sys.executable, "-m", "agentflow_local.cli", "run", str(path), "--json", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    return CliResult(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def served(
    dynamodb_local: DynamoDBLocal, llm: LlmServer, network_guard: NetworkGuard, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`agentflow serve` as a user starts it with the platform key, on the session's DynamoDB Local."""
    local = tmp_path_factory.mktemp("llm-serve-local")
    env = clean_environment(serve_env(local)) | {
        "AGENTFLOW_LOCAL_DIR": str(local),
        "AGENTFLOW_DYNAMODB_ENDPOINT": dynamodb_local.endpoint,
        "AGENTFLOW_TABLE": f"llm-serve-{uuid.uuid4().hex[:10]}",
        "OPENAI_BASE_URL": llm.openai_base_url,
        "OPENAI_API_KEY": KEY,
        **network_guard.environment(),
    }
    running = start_serve(env)
    try:
        yield running
    finally:
        try:
            running.interrupt(timeout=30)
        except subprocess.TimeoutExpired:
            running.kill_group()


@pytest.fixture(scope="module")
def api(served: Served) -> Api:
    return Api(served.url, served.key)


@dataclass
class Redelivering:
    """The local stack in this process with every event (bus and queues) delivered three times, behind the local
    API Gateway: what `agentflow serve` runs, with the local stack's `redeliver` option, which serve does not take."""

    stack: LocalStack
    api: Api


@pytest.fixture(scope="module")
def redelivering(dynamodb_local: DynamoDBLocal, llm: LlmServer) -> Iterator[Redelivering]:
    with pytest.MonkeyPatch.context() as env:
        # the blocks run in this process: the SDK reads OPENAI_BASE_URL, the vault the platform key, from here
        for name in list(os.environ):
            if name.lower() in PROXY_VARIABLES or name in PROVIDER_VARIABLES:
                env.delenv(name)
        env.setenv("NO_PROXY", "127.0.0.1,localhost")
        env.setenv("OPENAI_BASE_URL", llm.openai_base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        config = LocalStackConfig(
            root=ROOT,
            dynamodb_endpoint=dynamodb_local.endpoint,
            table_name=f"llm-redeliver-{uuid.uuid4().hex[:10]}",
            concurrency=4,
            redeliver=2,
            seed=7,
            log_level="WARNING",
            recover=False,
            environment={"OPENAI_BASE_URL": llm.openai_base_url},
        )
        with LocalStack(config) as stack:
            runtime = stack.runtime
            gateway = LocalApiGateway(stack.template, port=free_port(), runtime=runtime, clock=runtime.clock).start()
            try:
                key = create_api_key(stack.engine.store, "llm-redeliver", "test_llm_agents")
                yield Redelivering(stack, Api(gateway.url, key))
            finally:
                gateway.stop()


# -- helpers


def example(name: str) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return graph


def node(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    return next(n for n in graph["nodes"] if n["id"] == node_id)


def executions_of(report: dict[str, Any], node_id: str) -> list[dict[str, Any]]:
    return sorted((n for n in report["nodes"] if n["node_id"] == node_id), key=lambda n: n.get("seq", 0))


def messages(request: RecordedRequest) -> list[dict[str, Any]]:
    assert isinstance(request.body, dict), request
    sent: list[dict[str, Any]] = request.body["messages"]
    return sent


def assert_openai_request(request: RecordedRequest) -> None:
    """A Chat Completions call with the platform key, for the model the node names, not streamed."""
    assert request.path == "/v1/chat/completions", request.path
    assert request.headers["authorization"] == f"Bearer {KEY}" and request.api_key == KEY
    assert request.body["model"] == MODEL, request.body
    assert not request.body.get("stream"), request.body


def llm_stats(calls: int, input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "llm_calls": calls,
        "llm_retries": 0,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd(MODEL, input_tokens, output_tokens),
        "model": MODEL,
    }


def settled(api: Api, execution_id: str, timeout: float = 90) -> dict[str, Any]:
    """The report once the run is final and no node execution is still queued or running."""

    def done() -> dict[str, Any] | None:
        report = api.execution(execution_id)
        busy = any(n["status"] in ("QUEUED", "RUNNING") for n in report["nodes"])
        return report if report["status"] in FINAL and not busy else None

    return wait_for(done, timeout, interval=0.1)


def run_on(api: Api, graph: dict[str, Any], inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    graph_id = api.create_graph(graph)["graph_id"]
    return settled(api, api.execute(graph_id, inputs or {})["execution_id"])


def opened_pull_request() -> dict[str, Any]:
    """A real `pull_request` `opened` delivery from @octokit/webhooks-examples."""
    if not OCTOKIT_INDEX.is_file():
        pytest.fail(f"{OCTOKIT_INDEX} is missing: run `npm ci` in the repository root (`make setup`)")
    index = json.loads(OCTOKIT_INDEX.read_text(encoding="utf-8"))
    entry = next(e for e in index if e["name"] == "pull_request")
    payload: dict[str, Any] = next(p for p in entry["examples"] if p.get("action") == "opened")
    assert payload["repository"]["full_name"] == OCTOKIT_REPO
    return payload


@dataclass(frozen=True)
class Hook:
    graph_id: str
    webhook_id: str
    secret: str


def summariser_hook(api: Api) -> Hook:
    """examples/llm/summarize_pull_request.json pointed at the octokit payloads' repository, with its webhook."""
    graph = example("summarize_pull_request")
    node(graph, "pr")["input_default"]["repo"] = OCTOKIT_REPO
    graph_id = api.create_graph(graph)["graph_id"]
    reply = api.post(f"/graphs/{graph_id}/webhooks")
    assert reply.status == 201, reply.text
    return Hook(graph_id, reply.body["webhook_id"], reply.body["secret"])


def deliver(api: Api, hook: Hook, payload: dict[str, Any], delivery: str) -> dict[str, Any]:
    """POST the payload as GitHub does: compact JSON, signed with HMAC-SHA256 of the exact bytes, no API key."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(hook.secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {
        "X-Hub-Signature-256": signature,
        "X-GitHub-Event": "pull_request",
        "X-GitHub-Delivery": delivery,
        "User-Agent": "GitHub-Hookshot/test",
    }
    reply = api.with_key(None).post(f"/webhooks/{hook.webhook_id}", raw=body, headers=headers)
    assert reply.status == 202 and reply.body["started"] is True, reply.text
    answer: dict[str, Any] = reply.body
    return answer


def check_summary_request(request: RecordedRequest, payload: dict[str, Any]) -> None:
    assert_openai_request(request)
    pull_request = payload["pull_request"]
    sent = messages(request)
    sys_prompt = node(example("summarize_pull_request"), "summarize")["input_default"]["sys_prompt"]
    assert [m["role"] for m in sent] == ["system", "user"], sent
    assert sent[0]["content"] == sys_prompt
    prompt = sent[1]["content"]
    for part in (pull_request["title"], pull_request["body"], pull_request["html_url"], pull_request["user"]["login"]):
        assert part in prompt, (part, prompt)
    assert "{{" not in prompt, prompt


TOOL_NAME = "calculatorblock"  # cleanup(CalculatorBlock.name()): the Orchestrator's name for the tool
FINAL_ANSWER = "6 times 7 is 42."


def script_tool_calling(llm: LlmServer) -> None:
    llm.script(
        openai_tool_calls(
            [(TOOL_NAME, {"a": 6, "b": 7, "operation": "Multiply"})], prompt_tokens=31, completion_tokens=9
        ),
        openai_text(FINAL_ANSWER, prompt_tokens=47, completion_tokens=8),
    )


def check_tool_calling(report: dict[str, Any], llm: LlmServer) -> None:
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"answer": [FINAL_ANSWER]}, report["outputs"]
    assert llm.calls() == 2, [r.body for r in llm.requests]
    first, second = llm.requests
    for request in (first, second):
        assert_openai_request(request)
        (tool,) = request.body["tools"]
        assert tool["function"]["name"] == TOOL_NAME, tool
        parameters = tool["function"]["parameters"]
        assert sorted(parameters["properties"]) == ["a", "b", "operation"], parameters
        assert sorted(parameters["required"]) == ["a", "b", "operation"], parameters
        assert "Multiply" in parameters["properties"]["operation"]["enum"], parameters
    assert messages(first)[-1] == {"role": "user", "content": "[Main Objective Prompt]: What is 6 times 7?"}
    # the second turn carries the call and the calculator's result, answering the call's id
    *_, call, result = messages(second)
    assert call["role"] == "assistant" and [c["id"] for c in call["tool_calls"]] == ["call_1"], call
    assert json.loads(call["tool_calls"][0]["function"]["arguments"]) == {"a": 6, "b": 7, "operation": "Multiply"}
    assert result["role"] == "tool" and result["tool_call_id"] == "call_1", result
    assert float(result["content"]) == 42, result
    (calculator,) = executions_of(report, "calculator")
    assert calculator["status"] == "COMPLETED" and calculator["outputs"]["result"] == [42.0], calculator
    turns = executions_of(report, "orchestrator")
    assert [t["status"] for t in turns] == ["COMPLETED", "COMPLETED"], turns
    assert [t["stats"] for t in turns] == [llm_stats(1, 31, 9), llm_stats(1, 47, 8)]
    assert all(t["attempts"] == 1 for t in report["nodes"]), report["nodes"]
    stats = report["stats"]
    assert (stats["llm_calls"], stats["llm_input_tokens"], stats["llm_output_tokens"]) == (2, 78, 17), stats
    assert stats["llm_cost_usd"] == pytest.approx(cost_usd(MODEL, 31, 9) + cost_usd(MODEL, 47, 8), abs=1e-8)


# -- `agentflow run`: the "done when"

HAIKU = "Rain taps the window / the kettle starts to whistle / autumn settles in"
TITLE = "Kettle Weather"


def two_generators() -> dict[str, Any]:
    """A topic, then one AITextGeneratorBlock named by its UUID writing a haiku, and one named by its block name
    giving it a title (the first one's answer fills the second one's prompt)."""
    return {
        "name": "Haiku and title",
        "nodes": [
            {"id": "topic", "block_id": "AgentInputBlock", "input_default": {"name": "topic"}},
            {
                "id": "haiku",
                "block_id": "1f292d4a-41a4-4977-9684-7c8d560b9f91",
                "input_default": {
                    "model": MODEL,
                    "sys_prompt": "You are a poet.",
                    "prompt": "Write a haiku about {{topic}}.",
                },
            },
            {
                "id": "title",
                "block_id": "AITextGeneratorBlock",
                "input_default": {"model": MODEL, "prompt": "Give this haiku a title:\n{{haiku}}"},
            },
            {"id": "haiku_out", "block_id": "AgentOutputBlock", "input_default": {"name": "haiku"}},
            {"id": "title_out", "block_id": "AgentOutputBlock", "input_default": {"name": "title"}},
        ],
        "links": [
            {
                "source_id": "topic",
                "sink_id": "haiku",
                "source_name": "result",
                "sink_name": "prompt_values_#_topic",
                "is_static": True,
            },
            {"source_id": "haiku", "sink_id": "title", "source_name": "response", "sink_name": "prompt_values_#_haiku"},
            {"source_id": "haiku", "sink_id": "haiku_out", "source_name": "response", "sink_name": "value"},
            {"source_id": "title", "sink_id": "title_out", "source_name": "response", "sink_name": "value"},
        ],
    }


def test_agentflow_run_calls_the_openai_base_url_with_the_platform_key_and_reports_the_tokens(
    llm: LlmServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    llm.script(
        openai_text(HAIKU, prompt_tokens=23, completion_tokens=17),
        openai_text(TITLE, prompt_tokens=41, completion_tokens=4),
    )
    done = agentflow_run(two_generators(), cli_env, tmp_path, "--input", "topic=autumn rain")
    assert done.code == 0, done.stderr
    report = done.report
    assert report["status"] == "COMPLETED" and report["error"] is None, report
    assert report["outputs"] == {"haiku": [HAIKU], "title": [TITLE]}

    # the run's totals are exactly what the server reported, and each LLM node's own figures add up to them
    stats = report["stats"]
    assert (stats["llm_calls"], stats["llm_input_tokens"], stats["llm_output_tokens"]) == (2, 23 + 41, 17 + 4), stats
    assert stats["llm_cost_usd"] == pytest.approx(cost_usd(MODEL, 23, 17) + cost_usd(MODEL, 41, 4), abs=1e-8)
    assert stats["llm_cost_usd"] > 0
    (haiku,) = executions_of(report, "haiku")
    (title,) = executions_of(report, "title")
    assert haiku["block_name"] == title["block_name"] == "AITextGeneratorBlock"
    assert haiku["stats"] == llm_stats(1, 23, 17), haiku
    assert title["stats"] == llm_stats(1, 41, 4), title
    assert haiku["outputs"]["response"] == [HAIKU] and title["outputs"]["response"] == [TITLE]
    (topic,) = executions_of(report, "topic")
    assert topic["stats"]["llm_calls"] == 0 and topic["stats"]["model"] is None

    # what the server received: the model, the prompts (filled in), the key
    assert llm.calls() == llm.calls("openai") == 2
    first, second = llm.requests
    for request in (first, second):
        assert_openai_request(request)
    assert messages(first) == [
        {"role": "system", "content": "You are a poet."},
        {"role": "user", "content": "Write a haiku about autumn rain."},
    ]
    assert messages(second) == [{"role": "user", "content": f"Give this haiku a title:\n{HAIKU}"}]
    assert KEY not in json.dumps(report)  # the key reaches the provider only


def test_without_any_key_the_run_fails_saying_how_to_add_one(
    llm: LlmServer, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """No OPENAI_API_KEY and no credential on the node: the AI blocks' credentials are optional (the platform key
    stands in), so the start checks let the run start; the node then fails, naming both ways to give a key, and
    no request is made."""
    env = {name: value for name, value in cli_env.items() if name != "OPENAI_API_KEY"}
    graph = {
        "name": "No key",
        "nodes": [
            {"id": "gen", "block_id": "AITextGeneratorBlock", "input_default": {"model": MODEL, "prompt": "Hello?"}},
            {"id": "out", "block_id": "AgentOutputBlock", "input_default": {"name": "answer"}},
        ],
        "links": [{"source_id": "gen", "sink_id": "out", "source_name": "response", "sink_name": "value"}],
    }
    done = agentflow_run(graph, env, tmp_path)
    assert done.code == 1, (done.stdout, done.stderr)
    report = done.report
    assert report["status"] == "FAILED", report
    assert report["outputs"] == {"answer": []}
    for error in (report["error"], executions_of(report, "gen")[0]["error"]):
        assert "agentflow credentials add --user <you> --provider openai" in error, error
        assert "OPENAI_API_KEY" in error, error
    (gen,) = executions_of(report, "gen")
    assert gen["status"] == "FAILED" and gen["stats"]["llm_calls"] == 0, gen
    assert report["stats"]["llm_calls"] == 0
    assert llm.calls() == 0


# -- the examples on `agentflow serve`


def test_tool_calling_example_multiplies_with_the_calculator_then_answers(llm: LlmServer, api: Api) -> None:
    script_tool_calling(llm)
    report = run_on(api, example("tool_calling"), {"question": "What is 6 times 7?"})
    check_tool_calling(report, llm)


def digest_responder(items: list[str]) -> Any:
    """Answers AIListGeneratorBlock's structured request: the list inside the tagged section its request names."""

    def respond(request: RecordedRequest) -> Reply:
        instructions = " ".join(m["content"] for m in messages(request) if m["role"] == "system")
        found = re.search(r'<json_output id="([0-9a-f]+)">', instructions)
        assert found, instructions
        text = f'Here is the digest.\n<json_output id="{found[1]}">{json.dumps({"list": items})}</json_output>'
        return openai_text(text, prompt_tokens=120, completion_tokens=35)

    return respond


def test_daily_digest_example_runs_with_its_default_input_and_a_valid_crontab(llm: LlmServer, api: Api) -> None:
    graph = example("daily_digest")
    cron = graph["recommended_schedule_cron"]
    assert cron == "0 8 * * *"
    runs = next_runs(cron, "UTC", datetime(2030, 1, 1, tzinfo=UTC), 2)  # a fixed date: no wall clock
    assert runs == [datetime(2030, 1, 1, 8, 0, tzinfo=UTC), datetime(2030, 1, 2, 8, 0, tzinfo=UTC)], runs
    topic = node(graph, "topic")["input_default"]["value"]
    assert isinstance(topic, str) and topic

    items = ["LangGraph 1.0 released", "AutoGPT adds an Orchestrator block", "CrewAI ships memory"]
    llm.respond_with(digest_responder(items))
    report = run_on(api, graph)  # no inputs: a schedule without inputs runs on the default
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"]["digest"] == [items], report["outputs"]
    assert sorted(report["outputs"]["digest_item"]) == sorted(items), report["outputs"]
    assert llm.calls() == 1
    (request,) = llm.requests
    assert_openai_request(request)
    assert topic in messages(request)[-1]["content"], messages(request)
    (digest,) = executions_of(report, "digest")
    assert digest["stats"] == llm_stats(1, 120, 35), digest
    stats = report["stats"]
    assert (stats["llm_calls"], stats["llm_input_tokens"], stats["llm_output_tokens"]) == (1, 120, 35), stats


SUMMARY = "Updates the README with new information; a small documentation-only change."


def test_pull_request_summariser_starts_from_a_signed_github_webhook(llm: LlmServer, api: Api) -> None:
    hook = summariser_hook(api)
    payload = opened_pull_request()
    llm.script(openai_text(SUMMARY, prompt_tokens=412, completion_tokens=19))
    started = deliver(api, hook, payload, str(uuid.uuid4()))
    assert started["created"] is True and started["graph_id"] == hook.graph_id, started
    report = settled(api, started["execution_id"])
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"summary": [SUMMARY]}, report["outputs"]
    assert llm.calls() == 1
    check_summary_request(llm.requests[0], payload)
    (summarize,) = executions_of(report, "summarize")
    assert summarize["stats"] == llm_stats(1, 412, 19), summarize
    assert report["stats"]["llm_input_tokens"] == 412 and report["stats"]["llm_output_tokens"] == 19


# -- at least once: every event three times


def test_every_event_three_times_still_makes_one_call_per_llm_node_execution(
    llm: LlmServer, redelivering: Redelivering
) -> None:
    api = redelivering.api
    # the webhook-started summariser, its delivery sent three times too (GitHub's "redeliver" keeps the id)
    hook = summariser_hook(api)
    payload = opened_pull_request()
    llm.script(openai_text(SUMMARY, prompt_tokens=412, completion_tokens=19))
    delivery = str(uuid.uuid4())
    answers = [deliver(api, hook, payload, delivery) for _ in range(3)]
    assert [a["created"] for a in answers] == [True, False, False], answers
    assert len({a["execution_id"] for a in answers}) == 1
    report = settled(api, answers[0]["execution_id"])
    assert report["status"] == "COMPLETED", report["error"]
    assert report["outputs"] == {"summary": [SUMMARY]}, report["outputs"]
    assert llm.calls() == 1, [r.body for r in llm.requests]  # one LLM node: one call, not three
    check_summary_request(llm.requests[0], payload)
    assert all(n["attempts"] == 1 for n in report["nodes"]), report["nodes"]
    (summarize,) = executions_of(report, "summarize")
    assert summarize["stats"] == llm_stats(1, 412, 19), summarize
    stats = report["stats"]
    assert (stats["llm_calls"], stats["llm_input_tokens"], stats["llm_output_tokens"]) == (1, 412, 19), stats

    # the tool-calling loop: two Orchestrator turns, two calls, the same answer
    llm.reset()
    script_tool_calling(llm)
    check_tool_calling(run_on(api, example("tool_calling"), {"question": "What is 6 times 7?"}), llm)


# -- budgets


def budget_chain(max_tokens: int) -> dict[str, Any]:
    return {
        "name": "Over budget",
        "budget": {"max_tokens": max_tokens},
        "nodes": [
            {
                "id": "first",
                "block_id": "AITextGeneratorBlock",
                "input_default": {"model": MODEL, "prompt": "Name a colour."},
            },
            {
                "id": "second",
                "block_id": "AITextGeneratorBlock",
                "input_default": {"model": MODEL, "prompt": "Write a poem about {{colour}}."},
            },
            {"id": "out", "block_id": "AgentOutputBlock", "input_default": {"name": "poem"}},
        ],
        "links": [
            {
                "source_id": "first",
                "sink_id": "second",
                "source_name": "response",
                "sink_name": "prompt_values_#_colour",
            },
            {"source_id": "second", "sink_id": "out", "source_name": "response", "sink_name": "value"},
        ],
    }


def test_a_run_over_its_token_budget_fails(llm: LlmServer, api: Api) -> None:
    """The first call reports 15 + 10 = 25 tokens, over the budget of 20: the run fails saying so, and the second
    node never completes. (That the second node makes no call at all is the next test's: here it races.)"""
    llm.script(
        openai_text("teal", prompt_tokens=15, completion_tokens=10),
        openai_text("a poem that is over budget", prompt_tokens=1, completion_tokens=1),
    )
    report = run_on(api, budget_chain(20))
    assert report["status"] == "FAILED", report
    assert "budget exceeded" in report["error"], report["error"]
    assert "25" in report["error"] and "20" in report["error"] and "max_tokens" in report["error"], report["error"]
    assert report["outputs"] == {"poem": []}
    assert llm.requests and messages(llm.requests[0]) == [{"role": "user", "content": "Name a colour."}]
    (first,) = executions_of(report, "first")
    assert first["status"] == "COMPLETED" and first["stats"] == llm_stats(1, 15, 10), first
    for second in executions_of(report, "second"):
        assert second["status"] != "COMPLETED", second
    stats = report["stats"]
    assert (stats["llm_input_tokens"], stats["llm_output_tokens"]) >= (15, 10), stats


def test_no_call_starts_once_the_run_is_over_its_budget_even_when_a_write_is_slow(
    llm: LlmServer, redelivering: Redelivering, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same chain on the in-process stack, with the first node's finishing write slowed down (as a slow
    DynamoDB write would be): the second node must still make no call. Without a slow write the outcome is a race
    (see BUDGET_RACE); the slow write makes it the same every time."""
    second_asked = threading.Event()
    held: list[str] = []
    store_class = type(redelivering.stack.engine.store)
    real_finish = store_class.finish_node

    def slow_finish(self: Any, execution_id: str, node_id: str, *args: Any, **kwargs: Any) -> bool:
        if node_id == "first":
            held.append(node_id)
            second_asked.wait(3)  # the second node's request, if it is made, arrives meanwhile
        return bool(real_finish(self, execution_id, node_id, *args, **kwargs))

    def respond(request: RecordedRequest) -> Reply:
        if messages(request) == [{"role": "user", "content": "Name a colour."}]:
            return openai_text("teal", prompt_tokens=15, completion_tokens=10)
        second_asked.set()
        return openai_text("a poem that is over budget", prompt_tokens=1, completion_tokens=1)

    monkeypatch.setattr(store_class, "finish_node", slow_finish)
    llm.respond_with(respond)
    report = run_on(redelivering.api, budget_chain(20))
    assert held == ["first"], held
    assert report["status"] == "FAILED" and "budget exceeded" in report["error"], report
    assert llm.calls() == 1, [messages(r) for r in llm.requests]
    for second in executions_of(report, "second"):
        assert second["stats"]["llm_calls"] == 0, second
    assert report["stats"]["llm_calls"] == llm.calls(), report["stats"]  # every call made is counted


def test_a_failed_run_is_redriven_over_the_api_once_its_cause_is_removed(llm: LlmServer, api: Api) -> None:
    """The provider refuses the first call (401): the run fails. Once the provider answers, POST /redrive re-runs
    the failed node only: the topic's node is not run again, and the run completes with the answer; a second
    redrive of the completed run answers 409 with its status."""
    llm.script(provider_error(401, "invalid api key"))
    failed = run_on(api, two_generators(), {"topic": "owls"})
    assert failed["status"] == "FAILED", failed
    assert "openai answered 401: invalid api key" in failed["error"]
    llm.script(openai_text("Owls in the dark"), openai_text("Night Watch"))
    redriven = api.post(f"/executions/{failed['execution_id']}/redrive")
    assert redriven.status == 200, redriven.body
    assert redriven.body["status"] == "RUNNING"
    done = settled(api, failed["execution_id"])
    assert done["status"] == "COMPLETED", done["error"]
    assert done["outputs"] == {"haiku": ["Owls in the dark"], "title": ["Night Watch"]}
    (topic,) = executions_of(done, "topic")
    assert topic["attempts"] == 1  # completed before the failure: not run again
    events = api.get(f"/executions/{failed['execution_id']}/events").body["events"]
    assert [e["status"] for e in events][-3:] == ["FAILED", "RUNNING", "COMPLETED"]
    refused = api.post(f"/executions/{failed['execution_id']}/redrive").error(409, "conflict")
    assert refused["details"] == {"status": "COMPLETED"}
    assert "only a FAILED run can be redriven; this one is COMPLETED" in refused["message"]
