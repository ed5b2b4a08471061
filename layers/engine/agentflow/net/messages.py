"""What a request sends and what it gets back: encoded bodies (JSON, form, multipart) and the bounded response,
with its body parsed as AutoGPT's HTTP blocks parse it and its `Retry-After` read against the server's clock."""

from __future__ import annotations

import codecs
import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from agentflow.net.guard import RequestFailed

if TYPE_CHECKING:  # httpx is imported by the functions that send: importing it costs a handler that
    import httpx  # never sends (ApiFunction) ~90 ms of its cold start (README, "Performance and cost")

__all__ = ["Body", "HttpResponse", "form_fields", "parse_retry_after"]

_CHARSET = re.compile(r"charset=\"?([\w.:-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Body:
    """Encoded request content, sent again unchanged on every redirect hop."""

    content: bytes = b""
    content_type: str | None = None

    @classmethod
    def json(cls, value: Any) -> Body:
        """JSON text as aiohttp's `json=` writes it; None means no body at all."""
        if value is None:
            return cls()
        try:
            return cls(json.dumps(value, allow_nan=False).encode(), "application/json")
        except (TypeError, ValueError) as exc:
            raise RequestFailed(f"the body cannot be sent as JSON: {exc}") from None

    @classmethod
    def form(cls, fields: Mapping[str, Any] | None) -> Body:
        """URL-encoded form fields (see `form_fields` for the values); no fields means no body."""
        import httpx

        if not fields:
            return cls()
        return cls._encoded(httpx.Request("POST", "http://form.invalid/", data=form_fields(fields)))

    @classmethod
    def multipart(cls, fields: Mapping[str, Any] | None, files: Sequence[tuple[str, str, bytes, str]]) -> Body:
        """multipart/form-data: the form fields, then each `(field name, file name, content, MIME type)`."""
        import httpx

        parts = [(field, (name, content, mime)) for field, name, content, mime in files]
        request = httpx.Request("POST", "http://form.invalid/", data=form_fields(fields or {}), files=parts)
        return cls._encoded(request)

    @classmethod
    def _encoded(cls, request: httpx.Request) -> Body:
        return cls(request.read(), request.headers.get("content-type"))


def form_fields(fields: Mapping[str, Any]) -> dict[str, str | list[str]]:
    """Form values as text: true/false for booleans, "" for null, a list as repeated fields, anything nested as
    JSON text (httpx, like aiohttp, takes only flat values)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return ""
        if isinstance(value, str | int | float):
            return str(value)
        return json.dumps(value)

    return {
        str(name): [text(item) for item in value] if isinstance(value, list) else text(value)
        for name, value in fields.items()
    }


@dataclass(frozen=True)
class HttpResponse:
    method: str
    url: str  # the final URL, after redirects (canonical form)
    origin: str  # scheme://host[:port] of `url`: safe to show in a message
    status: int
    headers: Mapping[str, str]  # lower-case names; repeated fields joined with ", "
    content: bytes  # decoded (gzip/deflate undone), at most the policy's max_response_bytes

    @property
    def body(self) -> Any:
        """JSON when the content type starts with application/json (None for 204, and for HEAD, which has no
        body), else text. Invalid JSON raises RequestFailed: AutoGPT fails the node too."""
        content_type = self.headers.get("content-type", "")
        if content_type.lower().startswith("application/json"):
            if self.status == 204 or self.method == "HEAD":
                return None
            try:
                return json.loads(self.content)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError both
                raise RequestFailed(f"the response from {self.origin} is not valid JSON: {exc}") from None
        return self.content.decode(_charset(content_type), errors="replace")

    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"), self.headers.get("date"))


def _charset(content_type: str) -> str:
    match = _CHARSET.search(content_type)
    if match is not None:
        with contextlib.suppress(LookupError):
            return codecs.lookup(match.group(1)).name
    return "utf-8"


def parse_retry_after(value: str | None, date: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds, or an HTTP-date measured against the response's
    own `Date` header (never this machine's clock, which may disagree with the server's). None when unusable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    if date is None:
        return None
    try:
        later, now = parsedate_to_datetime(text), parsedate_to_datetime(date)
        return max(0.0, (later - now).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None
