"""The web page's static routes (agentflow.api.pages): which paths answer which file, the relative root the page's
`<base href>` gets, and that they are answered before any key check without reaching the engine. The page itself
is tested in a browser by tests/e2e/test_web_ui.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agentflow.api import pages
from agentflow.api.app import PUBLIC_PATHS, handle


def event(path: str, resource: str = "/ui/{proxy+}", **extra: Any) -> dict[str, Any]:
    return {"resource": resource, "path": path, "httpMethod": "GET", "headers": {}, **extra}


@pytest.mark.parametrize(
    ("path", "root"),
    [("/ui", "./"), ("/ui/", "../"), ("/ui/runs/abc-123", "../../"), ("/ui/runs/abc-123/", "../../../")],
)
def test_the_page_is_answered_with_the_root_relative_to_its_address(path: str, root: str) -> None:
    answer = pages.respond(event(path, "/ui" if path == "/ui" else "/ui/{proxy+}"))
    assert answer["statusCode"] == 200
    assert answer["headers"]["Content-Type"].startswith("text/html")
    assert f'<base href="{root}">' in answer["body"]
    assert "{{ROOT}}" not in answer["body"]
    assert "script-src 'self'" in answer["headers"]["Content-Security-Policy"]


def test_files_of_the_list_are_answered_with_their_type() -> None:
    script = pages.respond(event("/ui/assets/app.js"))
    assert script["statusCode"] == 200 and script["headers"]["Content-Type"].startswith("text/javascript")
    assert "takeKeyFromFragment" in script["body"]
    style = pages.respond(event("/ui/assets/style.css"))
    assert style["headers"]["Content-Type"].startswith("text/css")
    dagre = pages.respond(event("/ui/assets/vendor/dagre.esm.js"))  # found in the checkout's node_modules
    assert dagre["statusCode"] == 200 and "export{" in dagre["body"]


@pytest.mark.parametrize(
    "path",
    [
        "/ui/assets/nope.js",
        "/ui/assets/../pages.py",
        "/ui/assets/index.html/../../app.py",
        "/ui/assets/vendor/../../pages.py",
        "/ui/runs",
        "/ui/runs/bad%20id",
        "/ui/runs/a/b",
        "/ui/graphs",
    ],
)
def test_anything_else_answers_404(path: str) -> None:
    answer = pages.respond(event(path))
    assert answer["statusCode"] == 404
    assert json.loads(answer["body"])["error"]["code"] == "not_found"


def test_a_vendor_file_that_is_not_installed_answers_404(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pages._read_vendor.cache_clear()
    monkeypatch.setattr(pages, "vendor_candidates", lambda name: [tmp_path / "nowhere.js"])
    try:
        assert pages.respond(event("/ui/assets/vendor/dagre.esm.js"))["statusCode"] == 404
    finally:
        pages._read_vendor.cache_clear()


def test_page_requests_are_answered_before_the_key_check_and_never_reach_the_engine() -> None:
    assert pages.PAGE_RESOURCES <= PUBLIC_PATHS
    nothing = SimpleNamespace(_agentflow_engine=None)  # any use of the engine or the store would raise
    answer = handle(nothing, event("/ui/runs/abc", headers={"X-API-Key": "af_wrong"}), None)  # type: ignore[arg-type]
    assert answer["statusCode"] == 200 and "<html" in answer["body"]
    # only the template's page resources are public: the same path under another resource goes to the key check
    assert not pages.is_page(event("/ui", resource="/graphs"))
    assert not pages.is_page({"path": "/ui"})
