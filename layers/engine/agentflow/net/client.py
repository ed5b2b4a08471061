"""One outbound HTTP request, made safe: every hop is checked by the guard before anything connects, and the
connection goes to a checked address (no second lookup, so no DNS rebinding), with `Host` and TLS (SNI and
certificate checks) keeping the URL's own name.

Redirects are followed by hand as AutoGPT's `Requests` does: each hop re-checked, credential headers dropped for
good once the origin changes, method and body re-sent unchanged. The response is bounded by the policy (timeouts,
body bytes, header count and bytes); transport failures become `RetryableError`, the engine's cue to try again.
"""

from __future__ import annotations

import contextlib
import functools
import re
import ssl
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from agentflow.errors import RetryableError
from agentflow.net.guard import RequestFailed, Target, check_url
from agentflow.net.messages import Body, HttpResponse, form_fields, parse_retry_after
from agentflow.net.policy import HttpPolicy

if TYPE_CHECKING:  # httpx is imported by the functions that send: importing it costs a handler that
    import httpx  # never sends (ApiFunction) ~90 ms of its cold start (README, "Performance and cost")

__all__ = ["USER_AGENT", "Body", "HttpResponse", "form_fields", "parse_retry_after", "send_request"]

USER_AGENT = "AutoGPT-Platform/1.0 (https://github.com/Significant-Gravitas/AutoGPT; info@agpt.co) aiohttp"
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SENSITIVE = frozenset({"authorization", "proxy-authorization", "cookie"})
_COMPUTED = frozenset({"host", "content-length", "transfer-encoding"})  # from the URL and the body, never the caller
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 field name
_VALUE = re.compile(r"^[\t\x20-\x7e]*$")  # what httpx can encode, and no line break to smuggle a header in


# -- one hop ----------------------------------------------------------------------------------------------


def _request_headers(headers: Mapping[str, str], body: Body) -> dict[str, str]:
    """The caller's headers, checked, over AutoGPT's defaults. Content-Type comes from the body unless the caller
    set one; multipart always keeps its own, whose boundary must match the content."""
    sent: dict[str, str] = {}
    for name, value in headers.items():
        if not _TOKEN.match(name):
            raise RequestFailed(f"invalid header name {name!r}")
        if not _VALUE.match(value):  # the value is not shown: it may be a secret
            raise RequestFailed(f"the value of header {name!r} has a line break or a non-ASCII character")
        if name.lower() not in _COMPUTED:
            sent[name] = value
    defaults = {"User-Agent": USER_AGENT, "Accept": "*/*", "Accept-Encoding": "gzip, deflate"}
    names = {name.lower() for name in sent}
    sent = {**{k: v for k, v in defaults.items() if k.lower() not in names}, **sent}
    if body.content_type is not None:
        multipart = body.content_type.startswith("multipart/")
        if multipart or "content-type" not in names:
            sent = {k: v for k, v in sent.items() if k.lower() != "content-type"}
            sent["Content-Type"] = body.content_type
    return sent


def _pinned(method: str, target: Target, address: str, headers: Mapping[str, str], body: Body) -> httpx.Request:
    """The request of one hop, addressed to a checked IP; `Host` and (for https) SNI keep the URL's name, so the
    server's certificate is checked against the name."""
    import httpx

    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    try:
        url = httpx.URL(target.url).copy_with(host=address)
    except httpx.InvalidURL as exc:
        raise RequestFailed(f"invalid URL for {target.origin}: {exc}") from None
    authority = target.origin.split("://", 1)[1]
    return httpx.Request(
        method, url, headers={**headers, "Host": authority}, content=body.content or None, extensions=extensions
    )


@functools.cache
def _default_tls() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()  # built once: loading the CA bundle on every request is slow


@contextlib.contextmanager
def _transport_errors(method: str, target: Target, policy: HttpPolicy) -> Iterator[None]:
    """httpx's failures as the engine's: transient ones retryable, the rest failing the node. No message quotes a
    header or the URL's path or query, which may hold secrets."""
    import httpx

    where = f"{method} {target.origin}"
    try:
        yield
    except httpx.ConnectTimeout as exc:
        raise RetryableError(f"{where} timed out after {policy.connect_timeout:g} s connecting") from exc
    except httpx.TimeoutException as exc:  # read, write
        raise RetryableError(f"{where} timed out after {policy.read_timeout:g} s waiting for the server") from exc
    except httpx.DecodingError as exc:
        raise RequestFailed(f"the response from {target.origin} cannot be decoded: {exc}") from exc
    except httpx.LocalProtocolError as exc:
        raise RequestFailed(f"{where}: the request cannot be sent ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:  # a network failure, a dropped connection, a malformed answer
        raise RetryableError(f"{where} failed: {exc or type(exc).__name__}") from exc


def _check_headers(response: httpx.Response, origin: str, policy: HttpPolicy) -> None:
    fields = response.headers.raw
    if len(fields) > policy.max_header_count:
        raise RequestFailed(
            f"the response from {origin} has {len(fields)} header fields, more than the limit of "
            f"{policy.max_header_count}"
        )
    size = sum(len(name) + len(value) + 4 for name, value in fields)  # "name: value\r\n"
    if size > policy.max_header_bytes:
        raise RequestFailed(
            f"the response headers from {origin} are {size} bytes, more than the limit of {policy.max_header_bytes}"
        )


def _read_capped(response: httpx.Response, origin: str, policy: HttpPolicy) -> bytes:
    """The decoded body, refused as soon as it passes the cap (a declared length over it is refused unread)."""
    cap = policy.max_response_bytes
    too_large = RequestFailed(
        f"the response from {origin} is larger than the limit of {cap} bytes (AGENTFLOW_HTTP_MAX_RESPONSE_BYTES)"
    )
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise too_large
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():  # decoded chunks: a gzip bomb stops at the cap too
        total += len(chunk)
        if total > cap:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _exchange(request: httpx.Request, target: Target, policy: HttpPolicy, tls: ssl.SSLContext) -> HttpResponse:
    import httpx

    # A fresh client per hop: a pooled TLS connection checked for one name must never carry another's request.
    timeout = httpx.Timeout(policy.read_timeout, connect=policy.connect_timeout)
    with httpx.Client(verify=tls, trust_env=False, timeout=timeout, follow_redirects=False) as client:
        response = client.send(request, stream=True)
        try:
            _check_headers(response, target.origin, policy)
            content = _read_capped(response, target.origin, policy)
        finally:
            response.close()
    headers = {name.lower(): value for name, value in response.headers.items()}
    return HttpResponse(request.method, target.url, target.origin, response.status_code, headers, content)


def _certificate_problem(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _send_hop(
    method: str, target: Target, headers: Mapping[str, str], body: Body, policy: HttpPolicy, tls: ssl.SSLContext
) -> HttpResponse:
    """Try the checked addresses in order until one accepts the connection."""
    import httpx

    failure: httpx.ConnectError | None = None
    for address in target.addresses:
        with _transport_errors(method, target, policy):
            try:
                return _exchange(_pinned(method, target, address, headers, body), target, policy, tls)
            except httpx.ConnectError as exc:
                if (bad := _certificate_problem(exc)) is not None:  # permanent: retrying cannot help
                    message = f"{method} {target.origin}: TLS certificate check failed: {bad.verify_message}"
                    raise RequestFailed(message) from exc
                failure = exc
    raise RetryableError(f"{method} {target.origin} failed: cannot connect ({failure or 'no address'})")


# -- the request, with its redirects ----------------------------------------------------------------------------


def send_request(
    method: str,
    url: str,
    policy: HttpPolicy,
    *,
    headers: Mapping[str, str] | None = None,
    body: Body | None = None,
    private_headers: Collection[str] = (),
    verify: ssl.SSLContext | None = None,
) -> HttpResponse:
    """Send one request as the policy allows and return the final answer, whatever its status (AutoGPT's
    `raise_for_status=False`). `private_headers` names more headers to drop with Authorization, Proxy-Authorization
    and Cookie once a redirect leaves the origin (e.g. host-scoped credentials). `verify` replaces the default CA
    bundle (tests, private CAs); it is never off.

    Raises RequestRefused (the guard said no, nothing sent), RequestFailed (too many redirects, a limit, a bad
    header, invalid JSON later on `body`) or RetryableError (timeout, connection failure, DNS busy)."""
    method, body = method.upper(), body or Body()
    sent = _request_headers(headers or {}, body)
    tls = verify or _default_tls()
    dropped = SENSITIVE | {name.lower() for name in private_headers}
    target = check_url(url, policy)
    redirects = 0
    while True:
        response = _send_hop(method, target, sent, body, policy, tls)
        location = response.headers.get("location")
        if response.status not in REDIRECTS or not location:
            return response
        if redirects == policy.max_redirects:
            raise RequestFailed(f"too many redirects: {method} {target.origin} led to more than {redirects}")
        redirects += 1
        following = check_url(urljoin(target.url, location), policy)  # checked before anything connects
        if (following.scheme, following.host, following.port) != (target.scheme, target.host, target.port):
            sent = {k: v for k, v in sent.items() if k.lower() not in dropped}  # and never restored
        target = following
