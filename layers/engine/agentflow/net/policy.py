"""What the HTTP blocks may reach, and the limits of one request: one frozen value the engine builds from its
settings and hands to blocks through `BlockContext.http`. Tests inject `resolve` (name resolution) so no test
ever depends on, or reaches, a real DNS server."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

Resolver = Callable[[str, int], Sequence[str]]  # (host, port) -> IP addresses as text


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `getaddrinfo` gives for the host (IPv4 first, duplicates dropped)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [str(info[4][0]) for info in infos]
    ordered = sorted(dict.fromkeys(addresses), key=lambda a: ":" in a)
    return ordered


@dataclass(frozen=True)
class HttpPolicy:
    allow_hosts: frozenset[str] = frozenset()  # AGENTFLOW_HTTP_ALLOW_HOSTS: names or addresses the guard lets by
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_response_bytes: int = 1_000_000
    max_header_count: int = 100
    max_header_bytes: int = 65_536
    max_redirects: int = 10
    resolve: Resolver = field(default=system_resolver, compare=False)
