"""The SSRF guard and the guarded client (agentflow.net): URL canonicalisation, blocked addresses, pinning to the
checked address, redirects, limits and transport failures, against real servers on 127.0.0.1.

No test reaches anything outside 127.0.0.0/8 or asks a real DNS server: the socket guard (autouse) fails any
attempt, and names resolve through `static_resolver`."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from agentflow.errors import AgentflowError, RetryableError
from agentflow.net.client import USER_AGENT, Body, HttpResponse, form_fields, parse_retry_after, send_request
from agentflow.net.guard import RequestFailed, RequestRefused, address_problem, canonical_url, check_url
from agentflow.net.policy import HttpPolicy
from tests.support.network import (
    SocketGuard,
    guard_sockets,
    held_until,
    local_http_server,
    recorder,
    settle,
    static_resolver,
)

LOCAL = frozenset({"127.0.0.1", "localhost"})


@pytest.fixture(autouse=True)
def sockets() -> Iterator[SocketGuard]:
    with guard_sockets() as guard:
        yield guard
    assert not guard.violations, guard.violations


@pytest.fixture(scope="module")
def _module_server() -> Iterator[HTTPServer]:
    with local_http_server() as server:
        yield server


@pytest.fixture
def server(_module_server: HTTPServer) -> Iterator[HTTPServer]:
    _module_server.clear()
    yield _module_server
    settle(_module_server)
    _module_server.clear()


def local_policy(**overrides: Any) -> HttpPolicy:
    values: dict[str, Any] = {"allow_hosts": LOCAL, "resolve": static_resolver({"localhost": ["127.0.0.1"]})}
    return HttpPolicy(**{**values, **overrides})


def never_resolve(host: str, port: int) -> list[str]:
    raise AssertionError(f"the guard resolved {host!r}, which it must check as it is")


# -- canonical form ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("  https://example.com/a/  ", "https://example.com/a"),
        ("example.com/path", "http://example.com/path"),
        ("https:\\\\example.com\\a\\b", "https://example.com/a/b"),
        ("HTTPS://Example.COM/x", "https://example.com/x"),
        ("http://bücher.de/", "http://xn--bcher-kva.de"),
        ("http://example.com/a b/ü?q=1 2", "http://example.com/a%20b/%C3%BC?q=1 2"),
        ("http://example.com:8080/%41:@x", "http://example.com:8080/%41:@x"),
        ("http://[::1]:81/", "http://[::1]:81"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/f", "URL scheme 'ftp' is not allowed"),
        ("file:///etc/passwd", "URL scheme 'file' is not allowed"),
        ("javascript://alert(1)", "URL scheme 'javascript' is not allowed"),
        ("http://exa_mple.com/", "invalid host name 'exa_mple.com'"),
        ("http://:80/", "the URL has no host"),
        ("http://example.com:99999/", "invalid port"),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(RequestRefused, match=message):
        check_url(url, HttpPolicy(resolve=never_resolve))


def test_request_errors_are_agentflow_errors_and_not_retryable() -> None:
    assert issubclass(RequestRefused, RequestFailed)
    assert issubclass(RequestFailed, AgentflowError)
    assert not issubclass(RequestFailed, RetryableError)


# -- addresses -----------------------------------------------------------------------------------------------

REFUSED = [
    ("0.0.0.0", "'this network' address (0.0.0.0/8)"),
    ("10.0.0.1", "a private address (10.0.0.0/8)"),
    ("100.64.0.1", "carrier-grade NAT) address (100.64.0.0/10)"),
    ("127.0.0.1", "a loopback address (127.0.0.0/8)"),
    ("127.255.0.9", "a loopback address (127.0.0.0/8)"),
    ("169.254.169.254", "the cloud metadata address"),
    ("169.254.1.1", "a link-local address (169.254.0.0/16)"),
    ("172.16.0.1", "a private address (172.16.0.0/12)"),
    ("172.31.255.255", "a private address (172.16.0.0/12)"),
    ("192.0.0.1", "(192.0.0.0/24)"),
    ("192.168.1.1", "a private address (192.168.0.0/16)"),
    ("198.18.0.1", "a benchmarking address (198.18.0.0/15)"),
    ("224.0.0.1", "a multicast address (224.0.0.0/4)"),
    ("240.0.0.1", "a reserved address (240.0.0.0/4)"),
    ("255.255.255.255", "a reserved address (240.0.0.0/4)"),
    ("192.0.2.10", "a non-public address"),  # TEST-NET-1: the stdlib's is_private, beyond AutoGPT's list
    ("::", "the unspecified address"),
    ("::1", "a loopback address (::1/128)"),
    ("fe80::1", "a link-local address (fe80::/10)"),
    ("fc00::1", "a unique local (private) address (fc00::/7)"),
    ("fd00:ec2::254", "a unique local (private) address (fc00::/7)"),  # EC2's IPv6 metadata address
    ("ff02::1", "a multicast address (ff00::/8)"),
    ("::ffff:10.0.0.1", "an IPv6 form of 10.0.0.1, a private address (10.0.0.0/8)"),
    ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("::ffff:169.254.169.254", "an IPv6 form of 169.254.169.254, the cloud metadata address"),
    ("2002:a00:1::", "an IPv6 form of 10.0.0.1"),  # 6to4 wraps an IPv4 address too
    ("2001:db8::1", "a non-public address"),
]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_blocked_addresses(address: str, reason: str) -> None:
    problem = address_problem(address)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "100.128.0.1", "172.32.0.1", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(address) is None


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_an_ip_literal_is_checked_without_resolving(address: str, reason: str) -> None:
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(RequestRefused) as info:
        check_url(f"http://{host}:8080/x", HttpPolicy(resolve=never_resolve))
    message = str(info.value)
    assert message.startswith(f"refused http://{host}:8080: {address} is ")
    assert reason in message
    assert message.endswith("add the host to AGENTFLOW_HTTP_ALLOW_HOSTS to allow it")


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    resolver = static_resolver({"evil.test": ["10.0.0.1"]})
    with pytest.raises(RequestRefused) as info:
        check_url("https://evil.test/admin", HttpPolicy(resolve=resolver))
    assert str(info.value) == (
        "refused https://evil.test: evil.test resolves to 10.0.0.1, a private address (10.0.0.0/8); "
        "add the host to AGENTFLOW_HTTP_ALLOW_HOSTS to allow it"
    )
    assert resolver.calls == [("evil.test", 443)]


@pytest.mark.parametrize("private", ["10.0.0.1", "fe80::1", "::ffff:192.168.0.1"])
def test_every_resolved_address_must_be_public(private: str) -> None:
    resolver = static_resolver({"mixed.test": ["93.184.216.34", private]})
    with pytest.raises(RequestRefused, match=re.escape(f"mixed.test resolves to {private},")):
        check_url("http://mixed.test/", HttpPolicy(resolve=resolver))


def test_a_public_name_gives_its_checked_addresses() -> None:
    resolver = static_resolver({"api.example.com": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]})
    target = check_url("https://API.example.com:8443/v1/x?y=1", HttpPolicy(resolve=resolver))
    assert target.addresses == ("93.184.216.34", "2606:2800:220:1::1")  # in order, duplicates dropped
    assert (target.scheme, target.host, target.port) == ("https", "api.example.com", 8443)
    assert target.url == "https://api.example.com:8443/v1/x?y=1"
    assert target.origin == "https://api.example.com:8443"


def test_the_allow_list_skips_the_checks_but_still_resolves() -> None:
    resolver = static_resolver({"internal.test": ["10.1.2.3"]})
    target = check_url("http://Internal.test/", HttpPolicy(allow_hosts=frozenset({"internal.test"}), resolve=resolver))
    assert target.addresses == ("10.1.2.3",)
    assert resolver.calls == [("internal.test", 80)]


def test_an_allow_listed_address_lets_names_resolving_to_it_through() -> None:
    resolver = static_resolver({"db.test": ["10.1.2.3"], "other.test": ["10.1.2.4"]})
    policy = HttpPolicy(allow_hosts=frozenset({"10.1.2.3"}), resolve=resolver)
    assert check_url("http://db.test/", policy).addresses == ("10.1.2.3",)
    with pytest.raises(RequestRefused, match=r"10\.1\.2\.4"):
        check_url("http://other.test/", policy)


def test_default_policy_refuses_loopback_and_the_allow_list_lets_it_through() -> None:
    with pytest.raises(RequestRefused, match=r"127\.0\.0\.1 is a loopback address"):
        check_url("http://127.0.0.1:9/", HttpPolicy())
    assert check_url("http://127.0.0.1:9/", HttpPolicy(allow_hosts=LOCAL)).addresses == ("127.0.0.1",)
    assert check_url("http://[::1]:9/", HttpPolicy(allow_hosts=frozenset({"[::1]"}))).addresses == ("::1",)


def test_unresolvable_names() -> None:
    with pytest.raises(RequestFailed, match=r"cannot resolve http://nowhere\.test") as info:
        check_url("http://nowhere.test/", HttpPolicy(resolve=static_resolver({})))
    assert not isinstance(info.value, RequestRefused)

    def busy(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(RetryableError, match="right now"):
        check_url("http://busy.test/", HttpPolicy(resolve=busy))
    with pytest.raises(RequestFailed, match="no addresses"):
        check_url("http://empty.test/", HttpPolicy(resolve=static_resolver({"empty.test": []})))


def test_refusals_never_show_user_info_path_or_query() -> None:
    with pytest.raises(RequestRefused) as info:
        check_url("http://admin:hunter2@10.0.0.1/hooks/T0K3N?api_key=s3cr3t", HttpPolicy(resolve=never_resolve))
    message = str(info.value)
    assert "10.0.0.1" in message
    for secret in ("admin", "hunter2", "T0K3N", "s3cr3t"):
        assert secret not in message


# -- retry-after and bodies ----------------------------------------------------------------------------------

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("120", None, 120.0),
        (" 0 ", DATE, 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", DATE, 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", DATE, 0.0),  # already past: no wait
        ("Wed, 21 Oct 2015 07:28:30 GMT", None, None),  # no server clock to measure against
        ("soon", DATE, None),
        ("-5", DATE, None),
        ("\u00b2", DATE, None),  # a digit to str.isdigit, not to HTTP
        (None, DATE, None),
    ],
)
def test_parse_retry_after(value: str | None, date: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, date) == expected


def test_bodies() -> None:
    assert Body.json(None) == Body()
    assert Body.json({"a": [1, "ü"]}) == Body(b'{"a": [1, "\\u00fc"]}', "application/json")
    with pytest.raises(RequestFailed, match="cannot be sent as JSON"):
        Body.json({"x": float("nan")})
    assert Body.form(None) == Body() == Body.form({})
    form = Body.form({"a": "x y", "n": 1, "t": True, "z": None, "l": [1, "b"], "d": {"k": 1}})
    assert form.content_type == "application/x-www-form-urlencoded"
    assert form.content == b"a=x+y&n=1&t=true&z=&l=1&l=b&d=%7B%22k%22%3A+1%7D"
    assert form_fields({"f": 1.5}) == {"f": "1.5"}
    multipart = Body.multipart({"k": "v"}, [("upload", "a.txt", b"hello", "text/plain")])
    assert multipart.content_type is not None and multipart.content_type.startswith("multipart/form-data; boundary=")
    assert b'name="upload"; filename="a.txt"' in multipart.content and b"hello" in multipart.content
    assert b'name="k"' in multipart.content


def response(content: bytes, content_type: str, status: int = 200, method: str = "GET") -> HttpResponse:
    return HttpResponse(method, "http://x.test/", "http://x.test", status, {"content-type": content_type}, content)


def test_response_bodies() -> None:
    assert response(b'{"a": 1}', "application/json; charset=utf-8").body == {"a": 1}
    assert response(b"", "application/json", status=204).body is None
    assert response(b"", "application/json", method="HEAD").body is None
    assert response(b"caf\xe9", "text/plain; charset=latin-1").body == "café"
    assert response(b"caf\xc3\xa9", "text/html").body == "café"
    assert response(b"x", "text/plain; charset=nonsense").body == "x"
    with pytest.raises(RequestFailed, match=r"the response from http://x\.test is not valid JSON"):
        _ = response(b"{nope", "application/json").body


# -- the client against a local server -----------------------------------------------------------------------


def test_the_connection_goes_to_the_checked_address_with_the_name_in_host(
    server: HTTPServer, sockets: SocketGuard
) -> None:
    seen: list[Request] = []
    answer = Response('{"pong": true}', content_type="application/json")
    server.expect_request("/v1/ping", method="POST").respond_with_handler(recorder(seen, answer))
    # A rebinding resolver: the first answer is the checked one, any later answer would be private.
    answers = iter([["127.0.0.1"], ["10.0.0.1"], ["10.0.0.1"]])
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return next(answers)

    policy = HttpPolicy(allow_hosts=frozenset({"api.test"}), resolve=rebinding)
    result = send_request("post", f"http://api.test:{server.port}/v1/ping", policy, body=Body.json({"a": 1}))
    assert (result.status, result.body, result.method) == (200, {"pong": True}, "POST")
    assert result.url == f"http://api.test:{server.port}/v1/ping"
    assert calls == ["api.test"]  # resolved once: the connection never asks again
    assert sockets.attempts == [("127.0.0.1", server.port)]
    (request,) = seen
    assert request.headers["Host"] == f"api.test:{server.port}"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Content-Type"] == "application/json"
    assert request.get_data() == b'{"a": 1}'


def test_a_checked_address_that_refuses_falls_back_to_the_next(server: HTTPServer, sockets: SocketGuard) -> None:
    server.expect_request("/").respond_with_data("ok")
    resolver = static_resolver({"two.test": ["127.0.0.2", "127.0.0.1"]})  # the server listens on .1 only
    policy = HttpPolicy(allow_hosts=frozenset({"two.test"}), resolve=resolver)
    result = send_request("GET", f"http://two.test:{server.port}/", policy)
    assert result.body == "ok"
    assert sockets.attempts == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]


def test_caller_headers_win_and_computed_ones_are_not_taken(server: HTTPServer) -> None:
    seen: list[Request] = []
    server.expect_request("/h").respond_with_handler(recorder(seen))
    headers = {"user-agent": "mine/1", "Host": "evil.test", "Content-Length": "999", "X-Trace": "t1"}
    send_request("GET", f"http://127.0.0.1:{server.port}/h", local_policy(), headers=headers)
    (request,) = seen
    assert request.headers["User-Agent"] == "mine/1"
    assert request.headers["Host"] == f"127.0.0.1:{server.port}"
    assert request.headers["X-Trace"] == "t1"
    assert "Content-Length" not in request.headers or request.headers["Content-Length"] == "0"


def test_a_header_value_with_a_line_break_fails_without_showing_it(server: HTTPServer) -> None:
    with pytest.raises(RequestFailed) as info:
        send_request("GET", f"http://127.0.0.1:{server.port}/", local_policy(), headers={"X-Key": "s3cret\r\nX: y"})
    assert "X-Key" in str(info.value) and "s3cret" not in str(info.value)
    assert server.log == []


def test_a_redirect_to_the_metadata_address_is_refused_before_connecting(
    server: HTTPServer, sockets: SocketGuard
) -> None:
    location = "http://169.254.169.254/latest/meta-data"
    server.expect_request("/go").respond_with_data("", status=302, headers={"Location": location})
    with pytest.raises(RequestRefused) as info:
        send_request("GET", f"http://127.0.0.1:{server.port}/go", local_policy())
    assert "169.254.169.254 is the cloud metadata address" in str(info.value)
    assert not sockets.connected_to("169.254.")
    assert sockets.attempts == [("127.0.0.1", server.port)]


def test_a_redirect_to_a_name_resolving_privately_is_refused(server: HTTPServer, sockets: SocketGuard) -> None:
    server.expect_request("/go").respond_with_data("", status=307, headers={"Location": "http://evil.test/x"})
    policy = local_policy(resolve=static_resolver({"evil.test": ["10.0.0.1"]}))
    with pytest.raises(RequestRefused, match=r"evil\.test resolves to 10\.0\.0\.1"):
        send_request("POST", f"http://127.0.0.1:{server.port}/go", policy)
    assert not sockets.connected_to("10.")


SECRET_HEADERS = {"Authorization": "Bearer tok", "Proxy-Authorization": "Basic p", "Cookie": "sid=1", "X-Other": "o"}


def _recorder(server: HTTPServer, path: str, seen: dict[str, Request], **redirect: Any) -> None:
    def handle(request: Request) -> Response:
        seen[path] = request
        if redirect:
            return Response("", status=redirect["status"], headers={"Location": redirect["to"]})
        return Response("done")

    server.expect_request(path).respond_with_handler(handle)


def test_a_cross_host_redirect_drops_credentials_for_good(server: HTTPServer) -> None:
    seen: dict[str, Request] = {}
    port = server.port
    _recorder(server, "/start", seen, status=302, to="/same")  # same origin: kept
    _recorder(server, "/same", seen, status=301, to=f"http://localhost:{port}/other")  # other host: dropped
    _recorder(server, "/other", seen, status=308, to=f"http://127.0.0.1:{port}/back")  # back: still dropped
    _recorder(server, "/back", seen)
    result = send_request("GET", f"http://127.0.0.1:{port}/start", local_policy(), headers=SECRET_HEADERS)
    assert (result.status, result.body) == (200, "done")
    assert result.url == f"http://127.0.0.1:{port}/back"
    for name in ("Authorization", "Proxy-Authorization", "Cookie", "X-Other"):
        assert seen["/start"].headers.get(name) == SECRET_HEADERS[name] == seen["/same"].headers.get(name)
    assert seen["/other"].headers["Host"] == f"localhost:{port}"
    for path in ("/other", "/back"):
        assert seen[path].headers.get("X-Other") == "o"
        for name in ("Authorization", "Proxy-Authorization", "Cookie"):
            assert name not in seen[path].headers, (path, name)


def test_a_redirect_to_another_port_drops_credentials(server: HTTPServer) -> None:
    seen: dict[str, Request] = {}
    with local_http_server() as other:
        _recorder(other, "/there", seen)
        _recorder(server, "/here", seen, status=307, to=f"http://127.0.0.1:{other.port}/there")
        send_request("GET", f"http://127.0.0.1:{server.port}/here", local_policy(), headers=SECRET_HEADERS)
    assert seen["/here"].headers["Authorization"] == "Bearer tok"
    assert "Authorization" not in seen["/there"].headers


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_resends_the_method_and_body_unchanged(server: HTTPServer, status: int) -> None:
    seen: dict[str, Request] = {}
    _recorder(server, "/a", seen, status=status, to="/b")
    _recorder(server, "/b", seen)
    send_request("PUT", f"http://127.0.0.1:{server.port}/a", local_policy(), body=Body.json({"k": "v"}))
    assert seen["/b"].method == "PUT"
    assert seen["/b"].get_data() == b'{"k": "v"}'
    assert seen["/b"].headers["Content-Type"] == "application/json"


def test_too_many_redirects(server: HTTPServer) -> None:
    server.expect_request("/loop").respond_with_data("", status=302, headers={"Location": "/loop"})
    with pytest.raises(RequestFailed, match="too many redirects"):
        send_request("GET", f"http://127.0.0.1:{server.port}/loop", local_policy(max_redirects=3))
    assert len(server.log) == 4  # the request and three redirects


def test_a_3xx_without_location_is_the_answer(server: HTTPServer) -> None:
    server.expect_request("/nm").respond_with_data("not modified", status=304)
    server.expect_request("/r").respond_with_data("moved, but where?", status=302)
    assert send_request("GET", f"http://127.0.0.1:{server.port}/nm", local_policy()).status == 304
    result = send_request("GET", f"http://127.0.0.1:{server.port}/r", local_policy())
    assert (result.status, result.body) == (302, "moved, but where?")


# -- limits and transport failures ----------------------------------------------------------------------------


def test_a_body_over_the_limit_fails_declared_or_streamed(server: HTTPServer) -> None:
    server.expect_request("/declared").respond_with_data(b"x" * 1000)
    server.expect_request("/streamed").respond_with_response(Response(iter([b"x" * 60] * 5)))
    server.expect_request("/fits").respond_with_data(b"x" * 100)
    policy = local_policy(max_response_bytes=100)
    for path in ("/declared", "/streamed"):
        with pytest.raises(RequestFailed, match="larger than the limit of 100 bytes"):
            send_request("GET", f"http://127.0.0.1:{server.port}{path}", policy)
    assert send_request("GET", f"http://127.0.0.1:{server.port}/fits", policy).content == b"x" * 100


def test_a_compressed_body_is_limited_by_its_decoded_size(server: HTTPServer) -> None:
    bomb = gzip.compress(b"\0" * 100_000)
    assert len(bomb) < 1000
    server.expect_request("/bomb").respond_with_data(bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(RequestFailed, match="larger than the limit of 1000 bytes"):
        send_request("GET", f"http://127.0.0.1:{server.port}/bomb", local_policy(max_response_bytes=1000))


def test_too_many_headers_and_too_many_header_bytes(server: HTTPServer) -> None:
    server.expect_request("/many").respond_with_data("x", headers={f"X-H{i}": "v" for i in range(20)})
    server.expect_request("/big").respond_with_data("x", headers={"X-Big": "v" * 2000})
    with pytest.raises(RequestFailed, match=r"header fields, more than the limit of 10"):
        send_request("GET", f"http://127.0.0.1:{server.port}/many", local_policy(max_header_count=10))
    with pytest.raises(RequestFailed, match=r"response headers from .* bytes, more than the limit of 1000"):
        send_request("GET", f"http://127.0.0.1:{server.port}/big", local_policy(max_header_bytes=1000))
    assert send_request("GET", f"http://127.0.0.1:{server.port}/many", local_policy()).status == 200


def test_a_slow_server_times_out_as_retryable(server: HTTPServer) -> None:
    release = threading.Event()
    server.expect_request("/slow").respond_with_handler(held_until(release))
    try:
        with pytest.raises(RetryableError, match=r"GET http://127\.0\.0\.1:\d+ timed out after 0\.2 s") as info:
            send_request("GET", f"http://127.0.0.1:{server.port}/slow", local_policy(read_timeout=0.2))
        assert info.value.retry_after is None
    finally:
        release.set()


def test_a_refused_connection_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(RetryableError, match=rf"GET http://127\.0\.0\.1:{port} failed: cannot connect"):
        send_request("GET", f"http://127.0.0.1:{port}/", local_policy())


# -- TLS: SNI and the certificate check keep the name ----------------------------------------------------------


def _certificate(tmp: Path, name: str) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # fixed dates: valid whatever today is (until 2100)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_text(pem)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_path.write_bytes(key_bytes)
    return cert_path, key_path, pem


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HTTPServer, ssl.SSLContext]]:
    cert, key, pem = _certificate(tmp_path_factory.mktemp("tls"), "api.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = HTTPServer(host="127.0.0.1", port=0, ssl_context=context, threaded=True)
    server.start()
    try:
        yield server, ssl.create_default_context(cadata=pem)
    finally:
        server.clear()
        server.stop()


def test_https_sends_the_name_as_sni_and_checks_the_certificate_against_it(
    tls_server: tuple[HTTPServer, ssl.SSLContext], sockets: SocketGuard
) -> None:
    server, trust = tls_server
    seen: list[Request] = []
    server.expect_request("/secure").respond_with_handler(recorder(seen, Response("secret stuff")))
    resolver = static_resolver({"api.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]})
    policy = HttpPolicy(allow_hosts=frozenset({"api.test", "other.test"}), resolve=resolver)
    result = send_request("GET", f"https://api.test:{server.port}/secure", policy, verify=trust)
    assert (result.status, result.body) == (200, "secret stuff")
    assert seen[0].headers["Host"] == f"api.test:{server.port}"
    assert sockets.attempts == [("127.0.0.1", server.port)]
    # The certificate names api.test only: the same address under another name must fail, and not be retried.
    with pytest.raises(RequestFailed, match="TLS certificate check failed") as info:
        send_request("GET", f"https://other.test:{server.port}/secure", policy, verify=trust)
    assert not isinstance(info.value, RetryableError)
    assert len(seen) == 1
