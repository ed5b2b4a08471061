"""What the local stack's AWS JSON endpoints share (the event bus's PutEvents, the queues' SQS API): a threaded
HTTP server that can end its idle keep-alive connections on stop, and a request body read within a size limit."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["KeepAliveServer", "read_limited_body"]


class KeepAliveServer(ThreadingHTTPServer):
    request_queue_size = socket.SOMAXCONN  # a burst of clients must not be refused
    daemon_threads = False  # server_close() joins the request threads, so stop() leaves none behind
    block_on_close = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections, whose threads would otherwise wait for another request."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)


def read_limited_body(handler: BaseHTTPRequestHandler, max_bytes: int) -> bytes | None:
    """The request body, or None when it has no valid length or is over `max_bytes` (then it is not read, and
    the connection is closed after the answer: it cannot be reused)."""
    try:
        length = int(handler.headers.get("Content-Length") or 0)
    except ValueError:
        length = -1
    if length < 0 or length > max_bytes:
        handler.close_connection = True
        return None
    return handler.rfile.read(length)
