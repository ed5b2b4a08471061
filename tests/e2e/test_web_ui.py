"""The web page (README, "The web page") in a real browser: Debian's headless Chromium driven by Playwright, against
`agentflow serve` (the session's `api_server`). Each test has a user of its own, so it sees only its own graphs.

The browser runs with background networking off, and every request it makes goes through `page.route`: one to
anything but 127.0.0.1 is aborted and fails the test. Waits are Playwright's (expect, with generous timeouts):
nothing here measures time. `AGENTFLOW_UPDATE_SCREENSHOT=1` (`make screenshot`) also writes docs/ui-run.png."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright, Route, expect, sync_playwright

from tests import graphs
from tests.conftest import ApiServer
from tests.support.http import Api

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (`make setup`); Playwright's own download is never used
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 60_000  # ms: generous, for two workers on a small machine
SCREENSHOT = ROOT / "docs" / "ui-run.png"

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make setup` installs Debian's chromium package (apt-get install chromium)"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield launched
    finally:
        launched.close()


class Watched:
    """A page of a fresh browser context (its own sessionStorage), with what went wrong in it recorded."""

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.escaped: list[str] = []  # requests that tried to leave 127.0.0.1
        self.errors: list[str] = []  # uncaught exceptions of the page's scripts
        self.api_calls: list[str] = []  # "METHOD path" of every request the page made

    def guard(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname != "127.0.0.1":
            self.escaped.append(url)
            route.abort()
            return
        self.api_calls.append(f"{route.request.method} {urlsplit(url).path}")
        route.continue_()

    def open(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def session_key(self) -> Any:
        return self.page.evaluate("() => sessionStorage.getItem('agentflow.apiKey')")


@pytest.fixture
def watched(browser: Browser, api_server: ApiServer) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    seen = Watched(page, api_server.url)
    context.route("**/*", seen.guard)
    page.on("pageerror", lambda error: seen.errors.append(str(error)))
    try:
        yield seen
    finally:
        context.close()
    assert not seen.escaped, f"the page tried to reach beyond 127.0.0.1: {seen.escaped}"
    assert not seen.errors, f"the page's scripts failed: {seen.errors}"


@pytest.fixture
def user(api_server: ApiServer) -> Api:
    return Api(api_server.url, api_server.create_key(f"web-{uuid.uuid4().hex[:10]}"))


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((ROOT / "examples" / name).read_text())
    return loaded


def node(page: Page, node_id: str) -> Any:
    return page.locator(f'#graph g.node[data-node-id="{node_id}"]')


def test_the_runs_page_lists_runs_and_starts_one_whose_nodes_complete(
    watched: Watched, user: Api, tmp_path: Path
) -> None:
    page = watched.page
    calculator = user.create_graph(example("calculator.json"))["graph_id"]
    greeting = user.create_graph(example("greeting.json"))["graph_id"]
    earlier = user.execute(calculator, {"Input": 8})["execution_id"]
    assert user.wait_final(earlier)["outputs"] == {"Output": [42.0]}

    watched.open(f"/ui#key={user.key}")
    row = page.locator(f'tr.run-row[data-execution-id="{earlier}"]')
    expect(row).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(row).to_contain_text("Calculator")
    assert "key=" not in page.url and user.key not in page.url  # taken from the fragment, then removed
    assert watched.session_key() == user.key
    assert user.key not in page.content()  # the key is never shown
    expect(page.locator("tr.run-row")).to_have_count(1)
    page.select_option("#status-filter", "FAILED")
    expect(page.locator("tr.run-row")).to_have_count(0)
    expect(page.locator("#runs-empty")).to_be_visible()
    page.select_option("#status-filter", "COMPLETED")
    expect(page.locator("tr.run-row")).to_have_count(1)

    page.select_option("#start-graph", label="Greeting")
    expect(page.locator("#start-inputs")).to_have_attribute("data-graph-id", greeting, timeout=WAIT)
    names = page.locator('[data-input-name="names"]')
    expect(names).to_have_value("Ada, Grace, Linus")
    names.fill("Ada, Grace, Linus, Alan")
    page.click("#start-button")
    expect(page).to_have_url(re.compile(r"/ui/runs/[0-9a-f-]{36}$"), timeout=WAIT)
    execution_id = page.url.rsplit("/", 1)[1]
    run = page.locator("#run")
    expect(run).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(run).to_have_attribute("data-live", "false", timeout=WAIT)  # ended: the page stops polling
    for node_id in ("names", "split", "each", "greet", "count", "crowd", "greetings", "verdict"):
        expect(node(page, node_id)).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "greet")).to_have_attribute("data-executions", "4")

    node(page, "greet").click()
    detail = page.locator("#node-detail")
    expect(detail.locator("article.node-execution")).to_have_count(4)
    expect(detail.locator('dd[data-pin="output"]')).to_contain_text(
        ["Hello, Ada!", "Hello, Grace!", "Hello, Linus!", "Hello, Alan!"]
    )
    expect(page.locator("#timeline li").last).to_have_attribute("data-status", "COMPLETED")
    expect(page.locator("#run-outputs")).to_contain_text("Hello, Alan!")

    report = user.execution(execution_id)  # what the page drew is what the API says
    assert report["inputs"] == {"names": "Ada, Grace, Linus, Alan"}
    assert sorted(report["outputs"]["greetings"]) == ["Hello, Ada!", "Hello, Alan!", "Hello, Grace!", "Hello, Linus!"]
    assert user.history(execution_id) == [el.get_attribute("data-status") for el in page.locator("#timeline li").all()]

    shot = tmp_path / "ui-run.png"
    page.locator("#graph").evaluate("el => el.scrollTo(0, 0)")  # clicking a node may have scrolled it
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("AGENTFLOW_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, SCREENSHOT)


def test_a_stopped_run_shows_terminated_nodes_and_resumes(watched: Watched, user: Api) -> None:
    page = watched.page
    graph_id = user.create_graph(graphs.reviewed())["graph_id"]
    execution_id = user.execute(graph_id, {"x": {"title": "draft"}})["execution_id"]

    watched.open(f"/ui/runs/{execution_id}#key={user.key}")
    expect(node(page, "review")).to_have_attribute("data-status", "WAITING", timeout=WAIT)
    expect(page.locator("#run")).to_have_attribute("data-status", "REVIEW", timeout=WAIT)
    expect(page.locator("#resume-run")).to_be_disabled()
    page.click("#stop-run")
    expect(page.locator("#run")).to_have_attribute("data-status", "TERMINATED", timeout=WAIT)
    expect(node(page, "review")).to_have_attribute("data-status", "TERMINATED", timeout=WAIT)
    expect(node(page, "in")).to_have_attribute("data-status", "COMPLETED")
    expect(node(page, "approved")).to_have_attribute("data-status", "NOT_RUN")
    expect(page.locator("#stop-run")).to_be_disabled()
    assert user.execution(execution_id)["status"] == "TERMINATED"

    page.click("#resume-run")  # the review node runs again and yields the stop's rejection (README, "Human review")
    expect(page.locator("#run")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "review")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "rejected")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "approved")).to_have_attribute("data-status", "NOT_RUN")
    node(page, "message").click()
    expect(page.locator('#node-detail dd[data-pin="output"]')).to_contain_text("Execution was stopped by user")
    statuses = [el.get_attribute("data-status") for el in page.locator("#timeline li").all()]
    assert "TERMINATED" in statuses and statuses[-1] == "COMPLETED", statuses
    assert user.execution(execution_id)["outputs"]["rejected"] == [{"title": "draft"}]


def test_a_review_is_approved_from_the_page(watched: Watched, user: Api) -> None:
    page = watched.page
    graph_id = user.create_graph(graphs.reviewed())["graph_id"]
    execution_id = user.execute(graph_id, {"x": 5})["execution_id"]

    watched.open(f"/ui#key={user.key}")
    review = page.locator(f'#reviews li.review[data-execution-id="{execution_id}"]')
    expect(review).to_contain_text("check x", timeout=WAIT)
    review.locator("input.review-message").fill("fine by me")
    review.locator("button.approve").click()
    expect(review).to_have_count(0, timeout=WAIT)

    page.click(f'tr.run-row[data-execution-id="{execution_id}"] a')
    expect(page).to_have_url(re.compile(f"/ui/runs/{execution_id}$"))
    expect(page.locator("#run")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "approved")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "rejected")).to_have_attribute("data-status", "NOT_RUN")
    report = user.execution(execution_id)
    assert report["outputs"]["approved"] == [5]
    assert report["outputs"]["message"] == ["fine by me"]


def test_a_wrong_key_shows_a_clear_message_and_no_data(watched: Watched, user: Api) -> None:
    page = watched.page
    graph_id = user.create_graph(graphs.linear())["graph_id"]
    execution_id = user.execute(graph_id, {"x": 1})["execution_id"]
    user.wait_final(execution_id)

    watched.open("/ui#key=af_not-a-key")
    error = page.locator("#auth-error")
    expect(error).to_be_visible(timeout=WAIT)
    expect(error).to_contain_text("The API key was refused (401 unauthorized)")
    expect(page.locator("#view")).to_be_hidden()
    expect(page.locator("[data-execution-id]")).to_have_count(0)
    assert watched.session_key() is None  # a refused key is not kept
    assert "af_not-a-key" not in page.url

    watched.open(f"/ui/runs/{execution_id}")  # a shared link, without a key: asked for one, shown nothing
    expect(page.locator("#auth")).to_be_visible(timeout=WAIT)
    expect(page.locator("#run")).to_have_count(0)
    page.fill("#auth-key", user.key)
    page.click("#auth-form button")
    expect(page.locator("#run")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)
    expect(node(page, "out")).to_have_attribute("data-status", "COMPLETED", timeout=WAIT)

    other = Api(user.base_url, user.key.replace(user.key[-4:], "xxxx"))
    assert other.get(f"/executions/{execution_id}").status == 401
    assert any(call.startswith("GET /executions/") for call in watched.api_calls)


def test_the_page_and_its_files_are_public_static_and_carry_no_data(user: Api) -> None:
    anonymous = user.with_key(None)
    page = anonymous.get("/ui")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html"), page.text[:300]
    assert user.get("/ui").text == page.text == user.with_key("af_wrong").get("/ui").text  # the same for anyone
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert '<base href="./">' in page.text
    assert '<base href="../../">' in anonymous.get(f"/ui/runs/{uuid.uuid4()}").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(not re.match(r"^[a-z]+://", s) for s in sources), sources  # nothing from elsewhere
    for asset in ("app.js", "api.js", "dom.js", "graph.js", "run.js", "runs.js", "style.css", "vendor/dagre.esm.js"):
        reply = anonymous.get(f"/ui/assets/{asset}")
        assert reply.status == 200, (asset, reply.status)
        assert "innerHTML" not in reply.text or asset.startswith("vendor/"), asset
        urls = set(re.findall(r"https?://[^\s\"'`)]+", reply.text)) - {"http://www.w3.org/2000/svg"}
        assert not urls, (asset, urls)  # no script, style or font from a CDN
    for missing in ("/ui/assets/nope.js", "/ui/assets/../app.py", "/ui/graphs", "/ui/runs/a/b"):
        reply = anonymous.get(missing)
        assert reply.status in (403, 404), (missing, reply.status)
        assert reply.body is None or reply.body["error"]["code"] == "not_found", (missing, reply.text)
    anonymous.get("/graphs").error(401, "unauthorized")  # the API itself still needs a key
