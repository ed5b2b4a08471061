"""Platform ("system") credentials (README, "Credentials"): AutoGPT's fixed-id API keys, one per LLM provider, whose
secret is the platform's own (an environment variable). A node may name one by its fixed id, or name none: then its
block's provider's platform key is used when the platform has one. Ollama's is always there (a local model server
needs no key). Users never own these ids: theirs are uuid4s the vault makes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from agentflow.credentials.models import APIKeyCredentials, CredentialsSpec

if TYPE_CHECKING:
    from agentflow.blocks.sdk import Block


@dataclass(frozen=True)
class PlatformCredential:
    id: str
    provider: str
    title: str
    env: str | None  # the variable holding the platform's key; None: always present, with `fixed_key`
    fixed_key: str = ""

    def secret(self, env: Mapping[str, str]) -> str | None:
        if self.env is None:
            return self.fixed_key
        return env.get(self.env) or None


# AutoGPT's ids (integrations/credentials_store.py), so exported graphs naming them keep working.
PLATFORM_CREDENTIALS: tuple[PlatformCredential, ...] = (
    PlatformCredential("53c25cb8-e3ee-465c-a4d1-e75a4c899c2a", "openai", "Use Credits for OpenAI", "OPENAI_API_KEY"),
    PlatformCredential(
        "24e5d942-d9e3-4798-8151-90143ee55629", "anthropic", "Use Credits for Anthropic", "ANTHROPIC_API_KEY"
    ),
    PlatformCredential("4ec22295-8f97-4dd1-b42b-2c6957a02545", "groq", "Use Credits for Groq", "GROQ_API_KEY"),
    PlatformCredential(
        "b5a0e27d-0c98-4df3-a4b9-10193e1f3c40", "open_router", "Use Credits for Open Router", "OPEN_ROUTER_API_KEY"
    ),
    PlatformCredential("aad82a89-9794-4ebb-977f-d736aa5260a3", "aiml_api", "Use Credits for AI/ML", "AIML_API_KEY"),
    PlatformCredential(
        "d44045af-1c33-4833-9e19-752313214de2", "llama_api", "Use Credits for Llama API", "LLAMA_API_KEY"
    ),
    PlatformCredential("c4e6d1a0-3b5f-4789-a8e2-9b123456789f", "v0", "Use Credits for v0", "V0_API_KEY"),
    PlatformCredential(
        "744fdc56-071a-4761-b5a5-0af0ce10a2b5", "ollama", "Use Credits for Ollama", None, fixed_key="FAKE_API_KEY"
    ),
)
BY_ID: Mapping[str, PlatformCredential] = {p.id: p for p in PLATFORM_CREDENTIALS}
BY_PROVIDER: Mapping[str, PlatformCredential] = {p.provider: p for p in PLATFORM_CREDENTIALS}


def is_platform_id(credential_id: str) -> bool:
    return credential_id in BY_ID


def _credentials(platform: PlatformCredential, env: Mapping[str, str]) -> APIKeyCredentials | None:
    secret = platform.secret(env)
    if secret is None:
        return None
    return APIKeyCredentials(
        id=platform.id, provider=platform.provider, title=platform.title, api_key=SecretStr(secret)
    )


def platform_credentials(credential_id: str, env: Mapping[str, str]) -> APIKeyCredentials | None:
    """The system credential with this id, when the platform has its secret (else None: unknown, as in AutoGPT)."""
    platform = BY_ID.get(credential_id)
    return None if platform is None else _credentials(platform, env)


def default_credentials(provider: str | None, env: Mapping[str, str]) -> APIKeyCredentials | None:
    """The platform's key for a provider, when it has one."""
    platform = BY_PROVIDER.get(provider or "")
    return None if platform is None else _credentials(platform, env)


def pin_provider(block: type[Block], spec: CredentialsSpec, inputs: Mapping[str, Any]) -> str | None:
    """The one provider a credentials pin is for, given the node's inputs: its only accepted provider, else the
    provider its discriminator input selects (AutoGPT's `discriminator` + `discriminator_mapping`, e.g. the LLM
    blocks' `model`). None when that cannot be told."""
    if len(spec.providers) == 1:
        return next(iter(spec.providers))
    field = block.Input.model_fields.get(spec.pin)
    extra = field.json_schema_extra if field is not None and isinstance(field.json_schema_extra, Mapping) else {}
    discriminator, mapping = extra.get("discriminator"), extra.get("discriminator_mapping")
    if not isinstance(discriminator, str) or not isinstance(mapping, Mapping):
        return None
    selector = inputs.get(discriminator)
    if selector is None:
        selector_field = block.Input.model_fields.get(discriminator)
        selector = None if selector_field is None else selector_field.get_default()
    key = getattr(selector, "value", selector)  # an enum member (LlmModel) maps by its value
    selected = mapping.get(key) if isinstance(key, str) else None
    return selected if isinstance(selected, str) and selected in spec.providers else None
