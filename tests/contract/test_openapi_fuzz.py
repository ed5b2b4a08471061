"""Contract: schemathesis fuzzes the running local stack (`agentflow serve`) against its own OpenAPI document.

The document is the one the API serves at GET /openapi.json. Every operation in it gets generated requests, valid
and invalid data alike, sent with the dev user's X-API-Key (the first one once more with an unknown key: 401).
Besides random ids, a share of the requests that take a path parameter carry ids that exist (dev's example graph, a
copy of it, an execution, a schedule, a webhook), some with a body the API accepts, so success answers are checked
too. Every answer must have a documented status code and a body matching the schema documented for it; none may be
a 5xx.

The campaign runs once per module (fixture `fuzz`) and records every finding instead of raising the first one, so
one failing check does not hide the others: each route of template.yaml then has its own test naming what went
wrong, with the request that reproduces it. Hypothesis is derandomized and keeps no example database: CI sends the
same requests on every run (about 750, in about a minute on two cores).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import OutputConfig, SanitizationConfig, SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok

from agentflow_local.template import load_template

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from schemathesis.schemas import APIOperation

    from tests.conftest import ApiServer

type Operation = APIOperation[Any, Any, Any, Any]
type AnyCase = Case[Any]

ROOT = Path(__file__).resolve().parents[2]
# served without a key (the docs, the web page's static files); the document may leave them out
PUBLIC_PATHS = frozenset({"/openapi.json", "/docs", "/ui", "/ui/{proxy+}"})
API_KEY_HEADER = "X-API-Key"
UNKNOWN_KEY = "af_fuzz-not-a-key"

# Examples per operation and generation mode. Hypothesis stops early once it has tried every distinct input (GET
# /blocks takes nothing: one request), and negative data is impossible for some operations, so the total is
# counted, not assumed.
MAX_EXAMPLES = {GenerationMode.POSITIVE: 35, GenerationMode.NEGATIVE: 15}
MIN_REQUESTS = 500
REQUEST_TIMEOUT = 35.0  # above the gateway's 29 s integration timeout: a slow handler shows up as its 504
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# Findings show requests as they were sent (Idempotency-Key, "secret" fields...): only the key is hidden, by
# describe_request itself.
SCHEMATHESIS_CONFIG = SchemathesisConfig(output=OutputConfig(sanitization=SanitizationConfig(enabled=False)))

# Reads and executions use dev's example graph itself; every other operation on a graph (update, delete, versions,
# schedules...) gets a copy of it made by dev through the API, so the examples other tests of the session rely on
# stay as they are. The webhook routes get a graph started by a webhook, which they need.
READS_EXAMPLE = frozenset({"POST /graphs/{graph_id}/execute"})
LAST = "DELETE /graphs/{graph_id}"


def template_routes() -> list[str]:
    """The routes template.yaml gives the function that serves /openapi.json, as "METHOD /path", public ones left
    out. Other functions on the same API (the signed webhook ingress, no API key) are not part of its document."""
    template = load_template(ROOT / "template.yaml")
    api = [spec for spec in template.functions.values() if any(r.path == "/openapi.json" for r in spec.api_routes)]
    assert len(api) == 1, f"expected one function serving /openapi.json, found {[s.logical_id for s in api]}"
    return sorted({f"{r.method} {r.path}" for r in api[0].api_routes if r.path not in PUBLIC_PATHS})


ROUTES = template_routes()


def get_document(server: ApiServer) -> dict[str, Any]:
    response = requests.get(f"{server.url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, f"GET /openapi.json: {response.status_code} {response.text[:500]}"
    document: dict[str, Any] = response.json()
    return document


# -- what the campaign records


@dataclass
class Finding:
    """One kind of failure (a check's title and the status answered) on one operation, with its first example."""

    title: str
    status: int | None
    message: str
    request: str
    count: int = 1

    def describe(self) -> str:
        return f"[{self.count}x] {self.title} (status {self.status})\n{self.message.strip()}\n{self.request}"


@dataclass
class OperationRun:
    label: str
    seedable: bool = False  # every path parameter has an id that exists (Seeds)
    requests: int = 0
    seeded: int = 0  # requests whose path parameters were ids that exist
    statuses: Counter[int] = field(default_factory=Counter)
    findings: dict[tuple[str, int | None], Finding] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def record(self, title: str, status: int | None, message: str, request: str) -> None:
        key = (title, status)
        if key in self.findings:
            self.findings[key].count += 1
        else:
            self.findings[key] = Finding(title, status, message, request)

    def summary(self) -> str:
        notes = f" ({'; '.join(self.notes)})" if self.notes else ""
        return f"{self.label}: {self.requests} requests, {self.seeded} with existing ids, {dict(self.statuses)}{notes}"

    def report(self) -> str:
        return "\n\n".join([self.summary(), *(f.describe() for f in self.findings.values())])


@dataclass
class Campaign:
    runs: dict[str, OperationRun]
    seconds: float

    @property
    def total(self) -> int:
        return sum(run.requests for run in self.runs.values())

    def summary(self) -> str:
        lines = [f"schemathesis sent {self.total} requests in {self.seconds:.1f}s"]
        lines += [f"  {run.summary()}" for run in self.runs.values()]
        return "\n".join(lines)


# -- ids that exist, and bodies the API accepts


@dataclass(frozen=True)
class Seeds:
    example: dict[str, str]  # dev's example graph, an execution of it, and every id that needs no particular graph
    copy: dict[str, str]  # the same, with a copy of the example as graph_id
    webhooks: dict[str, str]  # a graph started by a webhook and its webhook (empty when the API has no webhooks)
    bodies: dict[str, Any]  # operation label -> a body the API accepts for those ids

    def path_parameters(self, operation: Operation) -> dict[str, str]:
        """Ids that exist for every path parameter of the operation, or nothing when one of them has no seed."""
        if operation.path.startswith("/graphs/{graph_id}/webhooks"):
            known = self.webhooks
        elif operation.method.upper() == "GET" or operation.label in READS_EXAMPLE:
            known = self.example
        else:
            known = self.copy
        names = [p.name for p in operation.path_parameters]
        return {name: known[name] for name in names} if all(name in known for name in names) else {}


def call_api(server: ApiServer, method: str, path: str, body: Any = None) -> Any:
    response = requests.request(
        method, server.url + path, headers={API_KEY_HEADER: server.dev_key}, json=body, timeout=REQUEST_TIMEOUT
    )
    assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text[:500]}"
    return response.json()


def make_seeds(server: ApiServer, document: dict[str, Any]) -> Seeds:
    """Dev's first example graph (by name), a copy of it, an execution of the example and, when the API has them, a
    schedule of the copy and a graph started by a webhook with its webhook: all made by dev through the API."""
    paths = document["paths"]
    graphs = call_api(server, "GET", "/graphs")["graphs"]
    assert graphs, "dev owns no graph: `agentflow serve` registers the examples for dev when it starts"
    example = min(graphs, key=lambda g: str(g["name"]))
    shown = call_api(server, "GET", f"/graphs/{example['graph_id']}")
    graph = shown["graph"]
    copy = str(call_api(server, "POST", "/graphs", {**graph, "name": f"fuzz copy of {example['name']}"})["graph_id"])
    execute = {"inputs": {name: 1 for name in shown["required_inputs"]}}
    started = call_api(server, "POST", f"/graphs/{example['graph_id']}/execute", execute)
    ids = {"execution_id": str(started["execution_id"])}
    bodies: dict[str, Any] = {
        "POST /graphs": graph,
        "PUT /graphs/{graph_id}": graph,
        "PUT /graphs/{graph_id}/versions/active": {"version": 1},
        "POST /graphs/{graph_id}/execute": execute,
    }
    if "/graphs/{graph_id}/schedules" in paths:
        yearly = {"name": "fuzz", "cron": "0 0 1 1 *", "timezone": "UTC"}  # never fires during the test
        ids["schedule_id"] = str(call_api(server, "POST", f"/graphs/{copy}/schedules", yearly)["schedule_id"])
        bodies["POST /graphs/{graph_id}/schedules"] = yearly
    webhooks: dict[str, str] = {}
    if "/graphs/{graph_id}/webhooks" in paths:
        triggered = json.loads((ROOT / "examples" / "webhooks" / "greet_on_webhook.json").read_text())
        hooked = str(call_api(server, "POST", "/graphs", triggered)["graph_id"])
        hook = call_api(server, "POST", f"/graphs/{hooked}/webhooks")
        webhooks = {"graph_id": hooked, "webhook_id": str(hook["webhook_id"])}
    return Seeds(
        example={"graph_id": str(example["graph_id"]), **ids},
        copy={"graph_id": copy, **ids},
        webhooks=webhooks,
        bodies=bodies,
    )


# -- the campaign


def case_strategy(operation: Operation, mode: GenerationMode, seeds: Seeds) -> SearchStrategy[tuple[AnyCase, bool]]:
    """Generated cases, each flagged True when its path parameters were set to ids that exist."""
    variants = [operation.as_strategy(generation_mode=mode).map(lambda case: (case, False))]
    real = seeds.path_parameters(operation)
    body = seeds.bodies.get(operation.label)
    if real:
        seeded = operation.as_strategy(generation_mode=mode, path_parameters=real)
        variants.append(seeded.map(lambda case: (case, True)))
    if body is not None and mode is GenerationMode.POSITIVE:
        accepted = operation.as_strategy(generation_mode=mode, path_parameters=real or None, body=body)
        variants.append(accepted.map(lambda case: (case, bool(real))))
    return st.one_of(variants)


def describe_request(case: AnyCase, response: schemathesis.Response | None, server: ApiServer, key: str) -> str:
    shown = "[the dev key]" if key == server.dev_key else key
    curl = case.as_curl_command({API_KEY_HEADER: shown}, base_url=server.url)
    sent = response.request.body if response is not None else None
    return f"Reproduce: {curl}" + (f"\nBody sent (bytes): {sent!r:.400}" if sent else "")


def fuzz_operation(
    operation: Operation, server: ApiServer, session: requests.Session, seeds: Seeds, run: OperationRun
) -> None:
    run.seedable = bool(seeds.path_parameters(operation))
    if list(operation.path_parameters) and not run.seedable:
        run.notes.append("random ids only: no seed for its path parameters")

    def send(case: AnyCase, seeded: bool, key: str) -> None:
        headers = {API_KEY_HEADER: key}
        run.requests += 1
        run.seeded += seeded
        try:
            response = case.call(base_url=server.url, session=session, headers=headers, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as exc:
            run.record(f"no answer: {type(exc).__name__}", None, str(exc), describe_request(case, None, server, key))
            return
        run.statuses[response.status_code] += 1
        request = describe_request(case, response, server, key)
        if key == UNKNOWN_KEY and response.status_code != 401:
            run.record("answered a request without a valid key", response.status_code, response.text[:600], request)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                message = f"{failure.message}\nResponse body: {response.text[:600]}"
                run.record(failure.title, response.status_code, message, request)

    def send_both(case: AnyCase, seeded: bool) -> None:
        send(case, seeded, server.dev_key)
        if run.requests == 1:  # the operation's first case is sent once more with an unknown key: 401, documented
            send(case, seeded, UNKNOWN_KEY)

    for mode, examples in MAX_EXAMPLES.items():

        @settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.generate],  # findings are recorded, never raised: nothing to shrink
            suppress_health_check=list(HealthCheck),
        )
        @given(drawn=case_strategy(operation, mode, seeds))
        def fuzz(drawn: tuple[AnyCase, bool]) -> None:
            send_both(*drawn)

        try:
            fuzz()
        except Unsatisfiable:
            run.notes.append(f"no {mode.value} data possible")


@pytest.fixture(scope="module")
def fuzz(api_server: ApiServer) -> Campaign:
    document = get_document(api_server)
    schema = schemathesis.openapi.from_dict(document, config=SCHEMATHESIS_CONFIG)
    operations: list[Operation] = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"schemathesis cannot read an operation of the document: {result.err()}"
        operations.append(result.ok())
    seeds = make_seeds(api_server, document)
    runs: dict[str, OperationRun] = {}
    started = time.monotonic()
    with requests.Session() as session:
        # deletes last, and the graph's own last: what they delete is gone for the operations after them
        for operation in sorted(operations, key=lambda o: (o.method.upper() == "DELETE", o.label == LAST)):
            run = runs[operation.label] = OperationRun(operation.label)
            fuzz_operation(operation, api_server, session, seeds, run)
    return Campaign(runs, time.monotonic() - started)


# -- tests: the document


def test_openapi_lists_every_template_route(api_server: ApiServer) -> None:
    document = get_document(api_server)
    listed = {f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item}
    missing = set(ROUTES) - listed
    assert not missing, f"routes of template.yaml missing from the OpenAPI document: {sorted(missing)}"
    extra = listed - set(ROUTES) - {f"GET {path}" for path in PUBLIC_PATHS}
    assert not extra, f"operations in the OpenAPI document that template.yaml does not route: {sorted(extra)}"


def test_openapi_declares_the_api_key_scheme(api_server: ApiServer) -> None:
    document = get_document(api_server)
    schemes: dict[str, Any] = document.get("components", {}).get("securitySchemes", {})
    api_keys = {
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "apiKey" and scheme.get("in") == "header" and scheme.get("name") == API_KEY_HEADER
    }
    assert api_keys, f"no apiKey security scheme for the {API_KEY_HEADER} header; securitySchemes: {schemes}"
    required = {name for requirement in document.get("security", []) for name in requirement}
    assert required & api_keys, f"{sorted(api_keys)} declared but not required globally: {document.get('security')}"


# -- tests: the fuzz campaign


def test_fuzz_sends_enough_requests(fuzz: Campaign) -> None:
    print(f"\n{fuzz.summary()}")
    assert fuzz.total >= MIN_REQUESTS, f"only {fuzz.total} requests were generated\n{fuzz.summary()}"
    for run in fuzz.runs.values():
        assert run.requests > 0, f"{run.label}: no request was generated"
        if run.seedable:
            assert run.seeded > 0, f"{run.label}: no request used an id that exists"


@pytest.mark.parametrize("route", ROUTES)
def test_fuzz_route_conforms(fuzz: Campaign, route: str) -> None:
    """No 5xx, a documented status code, and a body matching the schema documented for it."""
    run = fuzz.runs.get(route)
    assert run is not None, f"{route} is not in the OpenAPI document, so it was not fuzzed"
    if run.findings:
        pytest.fail(run.report(), pytrace=False)
