"""Event translation for the local API Gateway: an HTTP request -> a REST API (v1) Lambda proxy event, and the
handler's proxy response -> the HTTP answer, checked the way API Gateway checks it (a malformed one is a 502).

Also the answers API Gateway gives itself (`_gateway_error`: 403, 413, 502, 504 ...) with its headers.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote

from agentflow_local.gateway_routing import _Resource

__all__ = ["GatewayResponse"]

_PROXY_RESPONSE_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Response headers API Gateway does not pass through as they are: it sets its own and renames the handler's.
_REMAPPED_HEADERS = frozenset({"connection", "content-length", "date", "server", "transfer-encoding"})
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # an HTTP header name
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Characters left as they are when a raw request target is made ASCII ("%" keeps existing escapes).
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"


class GatewayResponse(NamedTuple):
    """What the gateway answers: unpacks as `(status, headers, body)`."""

    status: int
    headers: list[tuple[str, str]]  # without Content-Length, Date and Connection, which the HTTP layer adds
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def header_values(self, name: str) -> list[str]:
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def json(self) -> Any:
        return json.loads(self.body)


class _MalformedResponse(ValueError):
    """The handler's answer is not a Lambda proxy response API Gateway accepts."""


@dataclass(frozen=True)
class _Request:
    method: str
    target: str  # path and query as sent, e.g. "/items/42?tag=a"
    headers: list[tuple[str, str]]  # in order, names as sent, duplicates kept
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


def _gateway_error(status: int, message: str, request_id: str, error_type: str) -> GatewayResponse:
    """An answer API Gateway gives itself, e.g. 403 {"message": "Missing Authentication Token"}."""
    headers = [
        ("Content-Type", "application/json"),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
    ]
    return GatewayResponse(status, headers, json.dumps({"message": message}).encode("utf-8"))


def _missing_token(request_id: str) -> GatewayResponse:
    return _gateway_error(403, "Missing Authentication Token", request_id, "MissingAuthenticationTokenException")


# --- headers, targets and proxy responses ---------------------------------------------------------------------


def _request_time(epoch: float) -> str:
    """API Gateway's `requestTime`, e.g. "09/Apr/2015:12:34:56 +0000" (English months whatever the locale)."""
    t = time.gmtime(epoch)
    return f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"


def _trace_id(epoch: float) -> str:
    return f"Root=1-{int(epoch):08x}-{uuid.uuid4().hex[:24]}"


def _header_text(value: str) -> str:
    """http.client reads header bytes as Latin-1; give back UTF-8 text when the bytes were UTF-8."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return value


def _ascii_target(target: str) -> str:
    """The request target with raw non-ASCII bytes percent-encoded, as a client should have sent it."""
    return quote(target.encode("latin-1", "replace"), safe=_TARGET_SAFE)


def _header_value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise _MalformedResponse(f"{where}: a header value must be a string, not {value!r}")
    if "\r" in text or "\n" in text:
        raise _MalformedResponse(f"{where}: a header value must not hold a line break")
    return text


def _response_headers(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """`multiValueHeaders` merged with `headers` as API Gateway merges them (a pair given in both appears once)."""
    headers = result.get("headers") or {}
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(headers, Mapping) or not isinstance(multi, Mapping):
        raise _MalformedResponse("headers and multiValueHeaders must be objects")
    merged: list[tuple[str, str]] = []
    multi_values: dict[str, set[str]] = {}
    for name, values in multi.items():
        if not isinstance(values, list):
            raise _MalformedResponse(f"multiValueHeaders.{name} must be a list")
        for value in values:
            text = _header_value(value, f"multiValueHeaders.{name}")
            merged.append((str(name), text))
            multi_values.setdefault(str(name).lower(), set()).add(text)
    for name, value in headers.items():
        text = _header_value(value, f"headers.{name}")
        if text not in multi_values.get(str(name).lower(), set()):
            merged.append((str(name), text))
    for name, _ in merged:
        if not _TOKEN.fullmatch(name):
            raise _MalformedResponse(f"bad header name {name!r}")
    return merged


def _proxy_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """A Lambda proxy response (already through JSON, as Lambda returns it) -> (status, headers, body)."""
    if not isinstance(result, dict):
        raise _MalformedResponse(f"the handler returned {type(result).__name__}, not an object")
    extra = set(result) - _PROXY_RESPONSE_KEYS
    if extra:  # REST APIs refuse unknown keys (HTTP APIs ignore them)
        raise _MalformedResponse(f"unknown keys {sorted(extra)}")
    status = result.get("statusCode")
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise _MalformedResponse(f"statusCode must be an HTTP status code, not {status!r}")
    body = result.get("body")
    if body is not None and not isinstance(body, str):
        raise _MalformedResponse(f"body must be a string or null, not {type(body).__name__}")
    encoded = result.get("isBase64Encoded", False)
    if encoded is not None and not isinstance(encoded, bool):
        raise _MalformedResponse(f"isBase64Encoded must be a boolean, not {encoded!r}")
    headers = _response_headers(result)
    if encoded and body:
        try:
            data = base64.b64decode(body, validate=True)
        except binascii.Error as exc:
            raise _MalformedResponse(f"isBase64Encoded is true but the body is not base64: {exc}") from None
    else:
        data = (body or "").encode("utf-8")
    # API Gateway renames the headers it sets itself, and answers application/json when no type is given.
    headers = [(f"x-amzn-Remapped-{n}" if n.lower() in _REMAPPED_HEADERS else n, v) for n, v in headers]
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", "application/json"))
    return status, headers, data


# --- request -> event ----------------------------------------------------------------------------------------


def _event_headers(request: _Request, port: int, now: float) -> dict[str, list[str]]:
    """The request's headers by name (as first sent, values in order), plus those API Gateway adds."""
    multi_headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}  # lower-case name -> the name as first sent
    for raw_name, raw_value in request.headers:
        name = names.setdefault(raw_name.lower(), raw_name)
        multi_headers.setdefault(name, []).append(_header_text(raw_value))
    # Headers API Gateway adds on its way to the integration.
    forwarded = names.get("x-forwarded-for")
    if forwarded is None:
        multi_headers["X-Forwarded-For"] = [request.source_ip]
    else:
        multi_headers[forwarded] = [f"{multi_headers[forwarded][-1]}, {request.source_ip}"]
    for name, value in (
        ("X-Forwarded-Port", str(port)),
        ("X-Forwarded-Proto", "http"),
        ("X-Amzn-Trace-Id", _trace_id(now)),
    ):
        if name.lower() not in names:
            multi_headers[name] = [value]
    return multi_headers


def _event_body(data: bytes) -> tuple[str | None, bool]:
    """(body, isBase64Encoded): text when the body is UTF-8, else base64."""
    if not data:
        return None, False
    try:
        return data.decode("utf-8"), False
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), True


def _identity(source_ip: str, user_agent: str | None) -> dict[str, Any]:
    return {
        "cognitoIdentityPoolId": None,
        "accountId": None,
        "cognitoIdentityId": None,
        "caller": None,
        "sourceIp": source_ip,
        "principalOrgId": None,
        "accessKey": None,
        "cognitoAuthenticationType": None,
        "cognitoAuthenticationProvider": None,
        "userArn": None,
        "userAgent": user_agent,
        "user": None,
        "apiKey": None,
        "apiKeyId": None,
        "clientCert": None,
    }


@dataclass(frozen=True)
class _ApiStage:
    """Where the events say they come from."""

    api_id: str
    stage: str
    account: str


def _proxy_event(
    request: _Request,
    *,
    method: str,
    path: str,
    query: str,
    resource: _Resource,
    path_params: dict[str, str],
    request_id: str,
    now: float,
    port: int,
    api: _ApiStage,
) -> dict[str, Any]:
    """The REST API (v1) Lambda proxy event of a routed request; `path` is without the stage."""
    multi_headers = _event_headers(request, port, now)
    headers = {name: values[-1] for name, values in multi_headers.items()}
    multi_query: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        multi_query.setdefault(key, []).append(value)
    body, is_base64 = _event_body(request.body)
    lower = {name.lower(): value for name, value in headers.items()}
    host = lower.get("host", "")
    return {
        "resource": resource.path,
        "path": path,
        "httpMethod": method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": resource.resource_id,
            "resourcePath": resource.path,
            "httpMethod": method,
            "extendedRequestId": request_id.replace("-", "")[:16],
            "requestTime": _request_time(now),
            "path": f"/{api.stage}{path}",
            "accountId": api.account,
            "protocol": request.protocol,
            "stage": api.stage,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": request_id,
            "identity": _identity(request.source_ip, lower.get("user-agent")),
            "domainName": host,
            "apiId": api.api_id,
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }
