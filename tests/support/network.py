"""Network helpers for tests of outbound HTTP: a socket guard that fails any connection leaving the loopback
network, a resolver with fixed answers (no real DNS), and a local HTTP server on 127.0.0.1.

    from tests.support.network import guard_sockets, static_resolver

    with guard_sockets() as guard:
        ...  # any connect() outside 127.0.0.0/8 and ::1 raises ForbiddenConnection
    assert guard.attempts == [("127.0.0.1", port)]
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

__all__ = [
    "ForbiddenConnection",
    "SocketGuard",
    "StaticResolver",
    "guard_sockets",
    "held_until",
    "local_http_server",
    "recorder",
    "settle",
    "static_resolver",
]


class ForbiddenConnection(AssertionError):
    """A test tried to reach an address outside the loopback network (or to look up a real name)."""


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class SocketGuard:
    """What was attempted while the guard was on. `violations` lists what was refused, even when the code under
    test swallowed the ForbiddenConnection, so a fixture can still fail the test."""

    attempts: list[tuple[str, int]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def check(self, address: Any, *, record: bool = True) -> None:
        if not isinstance(address, tuple):  # AF_UNIX paths and the like stay on this machine
            return
        host, port = str(address[0]), int(address[1])
        if record:
            self.attempts.append((host, port))
        if not _is_loopback(host):
            self.violations.append(f"connect to {host}:{port}")
            raise ForbiddenConnection(f"test tried to connect to {host}:{port}, outside 127.0.0.0/8 and ::1")

    def check_lookup(self, host: Any) -> None:
        text = host.decode() if isinstance(host, bytes) else str(host)
        if host is None or _is_loopback(text) or _is_literal(text):
            return
        self.violations.append(f"DNS lookup of {text}")
        raise ForbiddenConnection(f"test tried a real DNS lookup of {text!r}: inject a resolver")

    def connected_to(self, prefix: str) -> list[tuple[str, int]]:
        return [attempt for attempt in self.attempts if attempt[0].startswith(prefix)]


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


@contextmanager
def guard_sockets() -> Iterator[SocketGuard]:
    """Patch `socket.socket.connect`/`connect_ex`, `socket.create_connection` and `socket.getaddrinfo` for the
    block: loopback connections go through (and are recorded), everything else raises ForbiddenConnection."""
    guard = SocketGuard()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create, real_getaddrinfo = socket.create_connection, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        guard.check(address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        guard.check(address)
        return real_connect_ex(sock, address)

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        guard.check(address, record=False)  # its own connect() records the attempt
        return real_create(address, *args, **kwargs)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        guard.check_lookup(host)
        return real_getaddrinfo(host, *args, **kwargs)

    patches: dict[str, tuple[Any, Any]] = {
        "connect": (socket.socket, connect),
        "connect_ex": (socket.socket, connect_ex),
        "create_connection": (socket, create_connection),
        "getaddrinfo": (socket, getaddrinfo),
    }
    saved = {name: getattr(owner, name) for name, (owner, _) in patches.items()}
    for name, (owner, replacement) in patches.items():
        setattr(owner, name, replacement)
    try:
        yield guard
    finally:
        for name, (owner, _) in patches.items():
            setattr(owner, name, saved[name])


class StaticResolver:
    """A `resolve` for HttpPolicy with fixed answers; `calls` records each (host, port) it was asked."""

    def __init__(self, mapping: Mapping[str, Sequence[str]]) -> None:
        self.table = {name.lower(): list(addresses) for name, addresses in mapping.items()}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        try:
            return list(self.table[host.lower()])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


def static_resolver(mapping: Mapping[str, Sequence[str]]) -> StaticResolver:
    """Fixed answers, e.g. {"evil.test": ["10.0.0.1"]}, names compared without case. An unknown name fails as
    getaddrinfo does (socket.gaierror, EAI_NONAME): no real DNS server is ever asked."""
    return StaticResolver(mapping)


@contextmanager
def local_http_server() -> Iterator[HTTPServer]:
    """A threaded pytest-httpserver on 127.0.0.1 (a free port), for one module: a slow handler then never holds up
    the next test. Call `server.clear()` between tests."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        server.clear()
        if server.is_running():
            server.stop()


Handler = Callable[[Request], Response]


def settle(server: HTTPServer, quiet_for: float = 0.05, limit: float = 10.0) -> None:
    """Wait until no request of a test is still being answered (a handler it released may still be finishing),
    so the next test sharing the server sees only its own requests in `server.log`."""
    deadline = time.monotonic() + limit
    seen, quiet_since = len(server.log), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < quiet_for:
        time.sleep(0.02)
        if len(server.log) != seen:
            seen, quiet_since = len(server.log), time.monotonic()


def recorder(seen: list[Request], answer: Response | None = None) -> Handler:
    """A handler that appends each request to `seen` and answers `answer` (default: 200 "ok")."""

    def handle(request: Request) -> Response:
        seen.append(request)
        return answer if answer is not None else Response("ok")

    return handle


def held_until(release: threading.Event, answer: Response | None = None) -> Handler:
    """A slow server: the answer waits until the test sets `release` (at most 10 s, so a failed test cannot hang)."""

    def handle(request: Request) -> Response:
        release.wait(10)
        return answer if answer is not None else Response("late")

    return handle
