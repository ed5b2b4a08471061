"""The SSRF guard (docs/architecture.md, "Outbound requests"): canonicalise a URL, resolve its host once, and
refuse it unless every address is public.

AutoGPT's request safety (`validate_url_host`) is the model: http/https only, an IDNA host name, and every
resolved address outside the blocked networks, IPv4-mapped IPv6 checked as the IPv4 it maps to. The addresses
returned are the only ones the client may connect to, so a second lookup (DNS rebinding) cannot change them.
Hosts in `HttpPolicy.allow_hosts` (AGENTFLOW_HTTP_ALLOW_HOSTS) skip the address checks, as an operator's choice.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

from agentflow.errors import AgentflowError, RetryableError
from agentflow.net.policy import HttpPolicy

__all__ = ["RequestFailed", "RequestRefused", "Target", "address_problem", "canonical_url", "check_url"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_SETTING = "AGENTFLOW_HTTP_ALLOW_HOSTS"
SCHEMES = {"http": 80, "https": 443}
_HOST_NAME = re.compile(r"^[A-Za-z0-9.-]+$")
_METADATA = ipaddress.ip_address("169.254.169.254")

# The networks AutoGPT blocks, each with what it is, so a refusal says why. Checked before the stdlib properties.
_BLOCKED: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(net), what)
    for net, what in (
        ("0.0.0.0/8", "a 'this network' address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol assignment address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("fc00::/7", "a unique local (private) address"),
        ("fe80::/10", "a link-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
# Anything else the stdlib knows is not a public unicast address (documentation ranges, Teredo, ::/8, ...).
_PROPERTIES = (
    ("is_unspecified", "the unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a non-public address"),
    ("is_reserved", "a reserved address"),
    ("is_site_local", "a site-local address"),
)


class RequestFailed(AgentflowError):
    """An outbound request that cannot succeed as asked (bad URL, too many redirects, a limit): not retried. The
    engine fails the node with its message, as it does for any error a block raises."""


class RequestRefused(RequestFailed):
    """The guard refused the URL (scheme, host or address): nothing was sent."""


@dataclass(frozen=True)
class Target:
    """A checked URL: `addresses` (in connection order) are the only ones the client may connect to."""

    url: str  # canonical: IDNA host, quoted path
    scheme: str
    host: str  # lower-case IDNA name, or an IP address without brackets
    port: int
    addresses: tuple[str, ...]

    @property
    def origin(self) -> str:
        """`scheme://host[:port]`: what error messages show (never the user info, path or query: they may hold
        secrets)."""
        return origin_of(self.scheme, self.host, self.port)


def origin_of(scheme: str, host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" if SCHEMES.get(scheme) == port else f"{scheme}://{shown}:{port}"


def _ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _idna(host: str) -> str:
    if _ip(host) is not None:
        return host
    try:
        encoded = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise RequestRefused(f"invalid host name {host!r}") from None
    if not _HOST_NAME.match(encoded):
        raise RequestRefused(f"invalid host name {host!r}: only letters, digits, '.' and '-' are allowed")
    return encoded


def canonical_url(url: str) -> str:
    """AutoGPT's canonical form: spaces and `/` stripped at both ends, `\\` -> `/`, `http://` when no scheme,
    the host IDNA-encoded and the path percent-quoted. Raises RequestRefused for another scheme or a bad host."""
    text = url.strip("/ ").replace("\\", "/")
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise RequestRefused(f"URL scheme '{scheme}' is not allowed: only http and https are")
    if not parts.hostname:
        raise RequestRefused("the URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise RequestRefused("the URL has an invalid port") from None
    host = _idna(parts.hostname)
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if "@" in parts.netloc:
        netloc = f"{parts.netloc.rpartition('@')[0]}@{netloc}"
    return urlunsplit((scheme, netloc, quote(parts.path, safe="/%:@"), parts.query, parts.fragment))


def address_problem(address: str) -> str | None:
    """Why the client must not connect to this address (e.g. "a private address (10.0.0.0/8)"), or None."""
    ip = _ip(address)
    if ip is None:
        return "not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is not None:  # ::ffff:a.b.c.d and 6to4 reach the IPv4 address: judge that one
            inner = address_problem(str(embedded))
            return None if inner is None else f"an IPv6 form of {embedded}, {inner}"
    if ip == _METADATA:
        return "the cloud metadata address (169.254.0.0/16, link-local)"
    for network, what in _BLOCKED:
        if ip.version == network.version and ip in network:
            return f"{what} ({network})"
    for prop, what in _PROPERTIES:
        if getattr(ip, prop, False):
            return what
    return None


def _resolve(host: str, port: int, policy: HttpPolicy, origin: str) -> tuple[str, ...]:
    if _ip(host) is not None:
        return (host,)  # a literal is checked as it is, never looked up
    try:
        found = tuple(dict.fromkeys(str(a) for a in policy.resolve(host, port)))
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:  # the resolver is busy or unreachable: worth another attempt
            raise RetryableError(f"cannot resolve {origin} right now: {exc.strerror or exc}") from exc
        raise RequestFailed(f"cannot resolve {origin}: {exc.strerror or exc}") from exc
    except OSError as exc:
        raise RetryableError(f"cannot resolve {origin}: {exc}") from exc
    if not found:
        raise RequestFailed(f"cannot resolve {origin}: no addresses")
    return found


def _allowed(policy: HttpPolicy) -> frozenset[str]:
    return frozenset(entry.strip().strip("[]").lower().rstrip(".") for entry in policy.allow_hosts)


def check_url(url: str, policy: HttpPolicy) -> Target:
    """Canonicalise, resolve once and check every address. Raises RequestRefused naming the URL's origin, the
    refused address and why; RequestFailed or RetryableError when the host cannot be resolved."""
    canonical = canonical_url(url)
    parts = urlsplit(canonical)
    scheme, host = parts.scheme, parts.hostname or ""
    port = parts.port or SCHEMES[scheme]
    origin = origin_of(scheme, host, port)
    addresses = _resolve(host, port, policy, origin)
    allowed = _allowed(policy)
    if host.rstrip(".") not in allowed:
        for address in addresses:
            problem = None if address.lower() in allowed else address_problem(address)
            if problem is not None:
                what = f"{address} is {problem}" if address == host else f"{host} resolves to {address}, {problem}"
                raise RequestRefused(f"refused {origin}: {what}; add the host to {ALLOW_SETTING} to allow it")
    return Target(url=canonical, scheme=scheme, host=host, port=port, addresses=addresses)
