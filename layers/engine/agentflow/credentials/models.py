"""Credentials as AutoGPT models them (README, "Credentials"): what a node stores (`CredentialsMetaInput`: an id and
its provider and type, never a secret), what a block receives at run time (the typed credentials, secrets held as
`SecretStr` so no repr or log line shows them), and how a block declares the credentials it accepts
(`CredentialsField`)."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from agentflow.blocks.sdk import Block


class CredentialType(StrEnum):
    API_KEY = "api_key"
    USER_PASSWORD = "user_password"
    HOST_SCOPED = "host_scoped"


class CredentialsMetaInput(BaseModel):
    """The value of a node's `credentials` input: which of the user's credentials to use."""

    model_config = ConfigDict(extra="ignore")

    id: str
    provider: str
    type: str
    title: str | None = None


class _Credentials(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    provider: str
    title: str | None = None

    def secrets(self) -> list[str]:
        """Every secret value, for the engine to scrub from what a block returns."""
        raise NotImplementedError


class APIKeyCredentials(_Credentials):
    """A key, and optionally the base URL of the provider's API to call with it (a user's own OpenAI-compatible
    server: Ollama, vLLM...); None means the SDK's default. The URL is not a secret: `secrets()` leaves it out."""

    type: CredentialType = CredentialType.API_KEY
    api_key: SecretStr
    base_url: str | None = None

    def auth_header(self) -> str:
        return f"Bearer {self.api_key.get_secret_value()}"

    def secrets(self) -> list[str]:
        return [self.api_key.get_secret_value()]


class UserPasswordCredentials(_Credentials):
    type: CredentialType = CredentialType.USER_PASSWORD
    username: SecretStr
    password: SecretStr

    def auth_header(self) -> str:
        pair = f"{self.username.get_secret_value()}:{self.password.get_secret_value()}"
        return "Basic " + base64.b64encode(pair.encode()).decode()

    def secrets(self) -> list[str]:
        basic = self.auth_header().removeprefix("Basic ")
        return [self.username.get_secret_value(), self.password.get_secret_value(), basic]


class HostScopedCredentials(_Credentials):
    """Headers sent only to one host (`api.example.com`) or a domain and its subdomains (`*.example.com`)."""

    type: CredentialType = CredentialType.HOST_SCOPED
    host: str
    headers: Mapping[str, SecretStr] = Field(default_factory=dict)

    def matches_url(self, url: str) -> bool:
        """AutoGPT's rule: the URL's host name (port and scheme ignored) equals `host`, or for `*.domain`, is the
        domain or one of its subdomains. A `host` with a scheme or a port never matches."""
        if "://" in self.host or ":" in self.host:
            return False
        hostname = (urlsplit(url if "://" in url else f"http://{url}").hostname or "").lower().rstrip(".")
        pattern = self.host.lower().rstrip(".")
        if pattern.startswith("*."):
            domain = pattern[2:]
            return hostname == domain or hostname.endswith("." + domain)
        return hostname == pattern

    def header_values(self) -> dict[str, str]:
        return {name: value.get_secret_value() for name, value in self.headers.items()}

    def auth_header(self) -> str:
        return self.header_values().get("Authorization", "")

    def secrets(self) -> list[str]:
        """Each header value, and its token without a scheme (`Bearer <token>`): a server may quote either."""
        values = list(self.header_values().values())
        return values + [token for v in values if (token := v.partition(" ")[2].strip())]


Credentials = APIKeyCredentials | UserPasswordCredentials | HostScopedCredentials

CREDENTIAL_CLASSES: Mapping[CredentialType, type[_Credentials]] = {
    CredentialType.API_KEY: APIKeyCredentials,
    CredentialType.USER_PASSWORD: UserPasswordCredentials,
    CredentialType.HOST_SCOPED: HostScopedCredentials,
}


def CredentialsField(
    providers: str | Sequence[str],
    types: Iterable[CredentialType],
    *,
    description: str = "",
    discriminator: str | None = None,
) -> Any:
    """A block input that takes a `CredentialsMetaInput`; its JSON schema names the accepted providers and types
    (AutoGPT's `credentials_provider` and `credentials_types`)."""
    provider_list = [providers] if isinstance(providers, str) else list(providers)
    extra: dict[str, Any] = {
        "credentials_provider": provider_list,
        "credentials_types": [t.value for t in types],
    }
    if discriminator is not None:
        extra["discriminator"] = discriminator
    return Field(description=description, json_schema_extra=extra)


@dataclass(frozen=True)
class CredentialsSpec:
    """One credentials input of a block: its pin, and what it accepts."""

    pin: str
    providers: frozenset[str]
    types: frozenset[str]
    required: bool

    def accepts(self, provider: str, credential_type: str) -> bool:
        return provider in self.providers and credential_type in self.types


def credential_fields(block: type[Block]) -> dict[str, CredentialsSpec]:
    """The block's credentials inputs (AutoGPT: fields named `credentials` or `*_credentials`)."""
    specs: dict[str, CredentialsSpec] = {}
    for name, field in block.Input.model_fields.items():
        if name != "credentials" and not name.endswith("_credentials"):
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, Mapping) else {}
        providers = extra.get("credentials_provider") or []
        types = extra.get("credentials_types") or []
        specs[name] = CredentialsSpec(
            pin=name,
            providers=frozenset(str(p) for p in providers),  # type: ignore[union-attr]
            types=frozenset(str(t) for t in types),  # type: ignore[union-attr]
            required=field.is_required(),
        )
    return specs
