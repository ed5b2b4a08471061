"""What a user may create as a credential (README, "Credentials"): per type, the fields it needs and their shape.
Every problem names its field; no message ever quotes a secret (only names, lengths and rules)."""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from agentflow.credentials.models import CredentialType
from agentflow.errors import InvalidInput

PROVIDER_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")
HOST_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")  # an RFC 9110 token
MAX_TITLE = 200
MAX_SECRET = 8192  # characters of one secret value: an item stays far below DynamoDB's 400 KB
MAX_HEADERS = 50
MAX_BASE_URL = 2048
BASE_URL_SCHEMES = frozenset({"http", "https"})
BASE_URL_EXAMPLE = "http://127.0.0.1:11434/v1"
HOST_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$")
ALLOWED_TYPES = tuple(t.value for t in CredentialType)
TYPE_FIELDS: Mapping[CredentialType, frozenset[str]] = {
    CredentialType.API_KEY: frozenset({"api_key"}),
    CredentialType.USER_PASSWORD: frozenset({"username", "password"}),
    CredentialType.HOST_SCOPED: frozenset({"host", "headers"}),
}
# Fields a type accepts but does not require (kept apart: every field of TYPE_FIELDS is a required secret).
OPTIONAL_FIELDS: Mapping[CredentialType, frozenset[str]] = {
    CredentialType.API_KEY: frozenset({"base_url"}),
    CredentialType.USER_PASSWORD: frozenset(),
    CredentialType.HOST_SCOPED: frozenset(),
}

Secret = SecretStr | str


def reveal(value: Secret | None) -> str | None:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


@dataclass(frozen=True)
class NewCredential:
    """A credential a user asks to create. Secret fields are kept out of its repr."""

    provider: str
    type: str = CredentialType.API_KEY.value
    title: str | None = None
    api_key: Secret | None = field(default=None, repr=False)
    username: Secret | None = field(default=None, repr=False)
    password: Secret | None = field(default=None, repr=False)
    host: str | None = None
    headers: Mapping[str, Secret] | None = field(default=None, repr=False)
    # api_key only: the user's own OpenAI-compatible server. Not a secret, but out of the repr: until it is checked
    # it may hold one (`user:pass@`).
    base_url: str | None = field(default=None, repr=False)

    def given(self) -> frozenset[str]:
        """The type-specific fields that were given."""
        values = {"api_key": self.api_key, "username": self.username, "password": self.password}
        values["base_url"] = self.base_url
        named = {name for name, value in values.items() if value is not None}
        return frozenset(
            named | ({"host"} if self.host is not None else set()) | ({"headers"} if self.headers else set())
        )


class CredentialInputError(InvalidInput):
    """A credential that cannot be created; `problems` is (field, message) for each thing wrong."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("invalid credentials: " + "; ".join(f"{name}: {message}" for name, message in problems))


@dataclass(frozen=True)
class ValidCredential:
    """A credential that passed: its type, its normalized host (host_scoped), the secret payload to encrypt, and its
    normalized base URL (api_key, when given)."""

    type: CredentialType
    host: str | None
    secret: dict[str, Any] = field(repr=False)
    base_url: str | None = None


def _secret_problem(value: str | None) -> str | None:
    if value is None or value == "":
        return "is required and must not be empty"
    if len(value) > MAX_SECRET:
        return f"is too long ({len(value)} characters; at most {MAX_SECRET})"
    if any(c in value for c in "\r\n\0"):
        return "must not contain line breaks or NUL characters"
    return None


def host_problem(host: str) -> str | None:
    """Why `host` is not a host name or `*.domain` (no scheme, port, path), or None."""
    name = host.lower().rstrip(".")
    if "://" in name or any(c in name for c in ":/?#@ "):
        return "must be a host name or *.domain only (no scheme, port or path), e.g. api.example.com"
    labels = name.removeprefix("*.").split(".")
    if len(name) > 253 or not all(HOST_LABEL.match(label) for label in labels):
        return "must be a host name (letters, digits, '-', dot-separated) or *.domain, e.g. *.example.com"
    if name.startswith("*.") and len(labels) < 2:
        return "a wildcard must name a domain below a top-level domain, e.g. *.example.com"
    return None


def _base_url_host_problem(netloc: str, hostname: str) -> str | None:
    if "[" in netloc:  # a bracketed literal is an IPv6 address, nothing else
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            return "must have a valid IPv6 address between [ and ]"
        return None
    if not HOST_NAME.match(hostname):
        return f"must name a host (letters, digits, '-', '_', '.', or an IP address), e.g. {BASE_URL_EXAMPLE}"
    return None


def base_url_problem(url: str) -> str | None:
    """Why `url` is not an absolute http(s) URL of a server (no user info, query or fragment), or None. The URL is
    never quoted: a malformed one may hold a password (`user:pass@`). Where it points is not checked here: the
    engine's outbound-request guard checks the address at call time."""
    if not isinstance(url, str) or url == "":
        return f"must be a non-empty http or https URL, e.g. {BASE_URL_EXAMPLE} (leave it out for the default)"
    if len(url) > MAX_BASE_URL:
        return f"is too long ({len(url)} characters; at most {MAX_BASE_URL})"
    if any(c.isspace() or unicodedata.category(c).startswith("C") for c in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a port that is not a number in 0-65535
    except ValueError:
        return f"is not a valid URL (check its host and port), e.g. {BASE_URL_EXAMPLE}"
    if not parts.scheme or "://" not in url:  # `v1`, `/v1`, `localhost:11434/v1`
        return f"must be an absolute URL with a scheme and a host, e.g. {BASE_URL_EXAMPLE}"
    if parts.scheme.lower() not in BASE_URL_SCHEMES:
        return "must use the http or https scheme"
    if "@" in parts.netloc:
        return "must not contain user info (user:password@): the key goes in api_key"
    if "?" in url:  # also an empty query ("...?"): a base URL has paths appended to it
        return "must not have a query (?...)"
    if "#" in url:
        return "must not have a fragment (#...)"
    if not parts.hostname:
        return f"must name a host, e.g. {BASE_URL_EXAMPLE}"
    return _base_url_host_problem(parts.netloc, parts.hostname)


def _base_url(new: NewCredential, problems: list[tuple[str, str]]) -> str | None:
    """The normalized base URL (no trailing '/': the SDKs append paths to it), or None when not given or wrong."""
    if new.base_url is None:
        return None
    if (reason := base_url_problem(new.base_url)) is not None:
        problems.append(("base_url", reason))
        return None
    return new.base_url.rstrip("/")


def _common_problems(new: NewCredential) -> list[tuple[str, str]]:
    problems = []
    if not isinstance(new.provider, str) or not PROVIDER_PATTERN.match(new.provider):
        problems.append(("provider", "must be 1-64 lowercase letters, digits or '_', e.g. openai"))
    if new.title is not None and len(new.title) > MAX_TITLE:
        problems.append(("title", f"is too long ({len(new.title)} characters; at most {MAX_TITLE})"))
    return problems


def _host_scoped(new: NewCredential, problems: list[tuple[str, str]]) -> tuple[str | None, dict[str, str]]:
    host = None
    if not new.host:
        problems.append(("host", "is required: the host name (or *.domain) the headers may be sent to"))
    elif (reason := host_problem(new.host)) is not None:
        problems.append(("host", reason))
    else:
        host = new.host.lower().rstrip(".")
    headers: dict[str, str] = {}
    if not new.headers:
        problems.append(("headers", "is required: a non-empty object of header name to value"))
        return host, headers
    if len(new.headers) > MAX_HEADERS:
        problems.append(("headers", f"has {len(new.headers)} headers; at most {MAX_HEADERS}"))
    for name, value in new.headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            problems.append((f"headers.{str(name)[:64]}", "is not a valid header name (an RFC 9110 token)"))
        elif (reason := _secret_problem(reveal(value))) is not None:
            problems.append((f"headers.{name}", f"value {reason}"))
        else:
            headers[name] = reveal(value) or ""
    return host, headers


def _secret_fields(kind: CredentialType, new: NewCredential, problems: list[tuple[str, str]]) -> ValidCredential:
    if kind is CredentialType.HOST_SCOPED:
        host, headers = _host_scoped(new, problems)
        return ValidCredential(kind, host, {"headers": headers})
    secret: dict[str, Any] = {}
    for name in sorted(TYPE_FIELDS[kind]):
        value = reveal(getattr(new, name))
        if (reason := _secret_problem(value)) is not None:
            problems.append((name, reason))
        else:
            secret[name] = value
    if kind is CredentialType.USER_PASSWORD and ":" in str(secret.get("username", "")):
        problems.append(("username", "must not contain ':' (HTTP Basic authentication, RFC 7617)"))
    base_url = _base_url(new, problems) if kind is CredentialType.API_KEY else None
    return ValidCredential(kind, None, secret, base_url)


def validate_new(new: NewCredential) -> ValidCredential:
    """The credential, checked and normalized; CredentialInputError naming every field at fault."""
    problems = _common_problems(new)
    try:
        kind = CredentialType(new.type)
    except ValueError:
        problems.append(
            ("type", f"unknown credential type {str(new.type)[:64]!r}; use one of {', '.join(ALLOWED_TYPES)}")
        )
        raise CredentialInputError(problems) from None
    optional = "".join(f", optional {name}" for name in sorted(OPTIONAL_FIELDS[kind]))
    takes = ", ".join(sorted(TYPE_FIELDS[kind])) + optional
    for extra in sorted(new.given() - TYPE_FIELDS[kind] - OPTIONAL_FIELDS[kind]):
        problems.append((extra, f"is not a field of {kind.value} credentials (they take {takes})"))
    valid = _secret_fields(kind, new, problems)
    if problems:
        raise CredentialInputError(problems)
    return valid
