"""HTTP serving for the local API Gateway: keep-alive connections, bodies (sized or chunked), a clean stop.

Any method token is routed (API Gateway routes any), an oversized body is refused with 413 before it is read
(also on `Expect: 100-continue`), and `stop()` can close every connection and join every request thread.
What a request gets is up to the gateway (`LocalApiGateway._answer`); this module only moves bytes.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from agentflow_local.gateway_events import GatewayResponse, _gateway_error, _Request

logger = logging.getLogger(__name__)

KEEPALIVE_TIMEOUT = 60.0  # an idle keep-alive connection is closed after this many seconds
LINGER_SECONDS = 2.0  # how long a refused body is drained before its connection closes


class _Gateway(Protocol):
    """What the HTTP server serves (the LocalApiGateway)."""

    max_body_bytes: int

    def _answer(self, request: _Request) -> GatewayResponse:
        """Route one request and answer it; never raises."""
        ...


class _GatewayHTTPServer(ThreadingHTTPServer):
    """Tracks connections (idle or busy) and request threads, so stop() can close and join every one of them."""

    daemon_threads = False
    block_on_close = False  # stop() joins the request threads itself, with a deadline
    request_queue_size = socket.SOMAXCONN  # socketserver's default backlog of 5 drops bursts of new clients

    def __init__(self, address: tuple[str, int], gateway: _Gateway) -> None:
        self.gateway = gateway
        self.stopping = False
        self._cond = threading.Condition()
        self._connections: dict[socket.socket, bool] = {}  # connection -> busy with a request
        self._request_threads: set[threading.Thread] = set()
        self._thread_count = 0
        super().__init__(address, _GatewayRequestHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._cond:
            self._connections[request] = False
            self._thread_count += 1
            thread = threading.Thread(
                target=self._serve_connection,
                args=(request, client_address),
                name=f"local-api-request-{self._thread_count}",
                daemon=self.daemon_threads,
            )
            self._request_threads.add(thread)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._cond:
                self._request_threads.discard(threading.current_thread())

    def shutdown_request(self, request: Any) -> None:
        with self._cond:
            self._connections.pop(request, None)
            self._cond.notify_all()
        super().shutdown_request(request)

    def set_busy(self, connection: socket.socket, busy: bool) -> None:
        with self._cond:
            if connection in self._connections:
                self._connections[connection] = busy
            self._cond.notify_all()

    def request_threads(self) -> list[threading.Thread]:
        with self._cond:
            return list(self._request_threads)

    def _close(self, only_idle: bool) -> None:
        with self._cond:
            connections = [c for c, busy in self._connections.items() if not (only_idle and busy)]
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def close_idle_connections(self) -> None:
        """End keep-alive connections waiting for a next request, whose threads would otherwise wait on."""
        self._close(only_idle=True)

    def close_all_connections(self) -> None:
        self._close(only_idle=False)

    def wait_quiet(self, timeout: float) -> bool:
        """Wait until no connection is busy with a request; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not any(self._connections.values()), timeout)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Never print to stderr nor let a connection's failure reach the server loop.
        logger.debug("local api gateway: connection from %s failed", client_address, exc_info=True)


class _GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _GatewayHTTPServer
    timeout = KEEPALIVE_TIMEOUT
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    _linger = False  # set when a body was refused unread: drain it before closing

    def handle_one_request(self) -> None:
        """One request of any method (API Gateway routes any method token), then back to idle."""
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            self.server.set_busy(self.connection, True)
            if not self.parse_request():  # an error was answered already
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True
        finally:
            self.server.set_busy(self.connection, False)
            if self.server.stopping:
                self.close_connection = True

    def handle_expect_100(self) -> bool:
        # Refuse an oversized body before the client sends it.
        length = self._content_length()
        if length is not None and length > self.server.gateway.max_body_bytes:
            self._too_large()
            return False
        return super().handle_expect_100()

    def _content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return -1
        return length if length >= 0 else -1

    def _too_large(self) -> None:
        error = _gateway_error(413, "Request Entity Too Large", str(uuid.uuid4()), "RequestTooLargeException")
        self.close_connection = True  # the body is not read: the connection cannot be reused
        self._linger = True
        self._write(error)

    def finish(self) -> None:
        super().finish()
        if self._linger:
            self._drain_unread()

    def _drain_unread(self) -> None:
        """Read and drop what the client still sends, for a while, before closing.

        Closing a socket with unread data sends a reset, which can destroy the 413 before the client reads it
        (the client is often still sending the body it was refused).
        """
        deadline = time.monotonic() + LINGER_SECONDS
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65536):
                    break

    def _bad_request(self) -> None:
        error = _gateway_error(400, "Bad Request", str(uuid.uuid4()), "BadRequestException")
        self.close_connection = True
        self._write(error)

    def _read_chunked(self, limit: int) -> bytes | None:
        """A chunked body; None (and 413 answered) when it grows over the limit. Raises ValueError when malformed."""
        chunks: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise ValueError("bad chunk size line")
            chunk_size = int(line.split(b";", 1)[0].strip(), 16)
            if chunk_size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers are dropped
                return b"".join(chunks)
            size += chunk_size
            if size > limit:
                self._too_large()
                return None
            chunk = self.rfile.read(chunk_size)
            if len(chunk) != chunk_size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("truncated chunk")
            chunks.append(chunk)

    def _read_body(self) -> bytes | None:
        """The request body; None when an error (400 or 413) was answered instead."""
        limit = self.server.gateway.max_body_bytes
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            try:
                return self._read_chunked(limit)
            except ValueError:
                self._bad_request()
                return None
        length = self._content_length()
        if length is None:
            return b""
        if length < 0:
            self._bad_request()
            return None
        if length > limit:
            self._too_large()
            return None
        body = self.rfile.read(length)
        if len(body) != length:  # the client went away mid-body
            self.close_connection = True
            return None
        return body

    def _dispatch(self) -> None:
        started = time.monotonic()
        body = self._read_body()
        if body is None:
            return
        request = _Request(
            method=self.command,
            target=self.path,
            headers=list(self.headers.items()),
            body=body,
            source_ip=str(self.client_address[0]),
            protocol=self.request_version,
        )
        response = self.server.gateway._answer(request)
        self._write(response)
        logger.info(
            "%s %s -> %d (%.0f ms)", self.command, self.path, response.status, (time.monotonic() - started) * 1000
        )

    def _write(self, response: GatewayResponse) -> None:
        self.send_response_only(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Date", formatdate(usegmt=True))
        self.send_header("Content-Length", str(len(response.body)))
        if self.close_connection or self.server.stopping:
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("local api gateway http: " + format, *args)
