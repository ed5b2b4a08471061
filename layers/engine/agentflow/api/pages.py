"""The web page (README.md, "The web page"): the static files of `/ui`, answered by ApiFunction before any key check.

Only files of a fixed list are answered, from this package (`static/`) and from the graph layout library installed
from npm (`@dagrejs/dagre`): the layer build copies it into `static/vendor/`, and a checkout finds it in the
repository's `node_modules/` (the local stack). Nothing here reads the table or the request's key, so these routes
carry no data: the page calls the HTTP API itself, with the key the person gives it (docs/architecture.md, "The web
page")."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from agentflow.api.errors import not_found

PAGE_RESOURCES = frozenset({"/ui", "/ui/{proxy+}"})  # template.yaml's events GetUi and GetUiPath
STATIC = Path(__file__).with_name("static")
# the npm file behind each vendor asset (package.json pins the version)
VENDOR = {
    "vendor/dagre.esm.js": "@dagrejs/dagre/dist/dagre.esm.js",
    "vendor/dagre.esm.js.LEGAL.txt": "@dagrejs/dagre/dist/dagre.esm.js.LEGAL.txt",
}
OWN = ("app.js", "api.js", "dom.js", "graph.js", "run.js", "runs.js", "style.css")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")  # the API's id rule (agentflow.api.common.ID_PATTERN)

# The page runs only its own files: no inline script, no other origin (so no CDN can slip in), no framing.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'self'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # unversioned file names: revalidate, so a deploy shows at once
}


def is_page(event: dict[str, Any]) -> bool:
    """True for a request API Gateway routed to one of the page's resources."""
    return str(event.get("resource") or "") in PAGE_RESOURCES


def respond(event: dict[str, Any]) -> dict[str, Any]:
    """The proxy response for a page request: the page, one of its files, or 404."""
    path = str(event.get("path") or "/ui")
    parts = [p for p in path.split("/") if p]
    if parts == ["ui"] or (len(parts) == 3 and parts[1] == "runs" and RUN_ID.match(parts[2])):
        return _answer(200, "text/html; charset=utf-8", index_html(_root_of(path)))
    if len(parts) >= 3 and parts[1] == "assets":
        name = "/".join(parts[2:])
        text = asset(name)
        if text is not None:
            return _answer(200, TYPES[Path(name).suffix], text)
    error = not_found("page", path[:200])
    return _answer(404, "application/json", json.dumps(error.body()))


def _root_of(path: str) -> str:
    """The API's root relative to the page's address, for `<base href>`: every link and API call of the page is
    relative to it, so the page works under a stage prefix (`/v1/ui`) or a custom domain alike."""
    depth = path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def _answer(status: int, content_type: str, body: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_type, **HEADERS},
        "body": body,
        "isBase64Encoded": False,
    }


def index_html(root: str) -> str:
    return _read_own("index.html").replace("{{ROOT}}", root)


def asset(name: str) -> str | None:
    """A file of the fixed list, or None (not one of them, or the npm file is not installed)."""
    if name in OWN:
        return _read_own(name)
    if name in VENDOR:
        return _read_vendor(name)
    return None


@functools.cache
def _read_own(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


@functools.cache
def _read_vendor(name: str) -> str | None:
    for candidate in vendor_candidates(name):
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8")
    return None


def vendor_candidates(name: str) -> list[Path]:
    """Where a vendor file may be: copied into the package (the layer), else `node_modules/` of the checkout this
    package is installed from (`pip install -e`, the local stack)."""
    found = [STATIC / name]
    for parent in Path(__file__).resolve().parents:
        found.append(parent / "node_modules" / VENDOR[name])
    return found
