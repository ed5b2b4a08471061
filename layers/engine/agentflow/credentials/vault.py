"""The credentials vault (README, "Credentials"): users create, list and delete their credentials; the engine checks
a graph's credential inputs when it starts (metadata only) and gets one node's decrypted credentials when it runs.
It is the `CredentialsPort` the executor calls. Secrets are encrypted before they reach the store
(`agentflow.credentials.crypto`), and no message here quotes one."""

from __future__ import annotations

import builtins
import json
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

from pydantic import SecretStr, ValidationError

from agentflow.blocks.sdk import BlockError
from agentflow.credentials.crypto import DecryptionError, Envelope, Keyring, seal, unseal
from agentflow.credentials.models import (
    APIKeyCredentials,
    Credentials,
    CredentialsMetaInput,
    CredentialsSpec,
    CredentialType,
    HostScopedCredentials,
    UserPasswordCredentials,
    credential_fields,
)
from agentflow.credentials.platform import BY_ID, default_credentials, pin_provider, platform_credentials
from agentflow.credentials.validation import NewCredential, validate_new
from agentflow.graph import Node, Problem
from agentflow.store import CredentialMeta, SealedCredential, Store

if TYPE_CHECKING:
    from agentflow.blocks.sdk import Block
    from agentflow.credentials.port import CredentialsPort
    from agentflow.graph import ValidGraph

KeyringFactory = Callable[[], Keyring]
PAYLOAD_VERSION = 1


def _context(user_id: str, credential_id: str) -> dict[str, str]:
    return {"user_id": user_id, "credential_id": credential_id}


def _malformed(value: Any) -> str | None:
    """Why a node's credentials value is not a CredentialsMetaInput, or None (with no secret: it holds none)."""
    if not isinstance(value, Mapping):
        return f"expected an object {{id, provider, type, title?}}, got {type(value).__name__}"
    try:
        CredentialsMetaInput.model_validate(value)
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
    return None


class CredentialVault:
    """Users' credentials over the store, encrypted with the keyring (made on first use by `keyring`, when it is
    a factory: only creating or resolving a credential needs it). `env` holds the platform's own keys."""

    def __init__(self, store: Store, keyring: Keyring | KeyringFactory, env: Mapping[str, str] | None = None) -> None:
        self.store = store
        given_keyring = hasattr(keyring, "new_data_key")  # else a factory, called on first use
        self._keyring: Keyring | None = cast("Keyring", keyring) if given_keyring else None
        self._factory: KeyringFactory | None = None if given_keyring else cast("KeyringFactory", keyring)
        self.env: Mapping[str, str] = os.environ if env is None else env
        self._lock = threading.Lock()

    def keyring(self) -> Keyring:
        with self._lock:
            if self._keyring is None:
                assert self._factory is not None
                self._keyring = self._factory()  # ConfigurationError naming the settings when there is none
            return self._keyring

    # -- users' credentials

    def create(self, user_id: str, new: NewCredential) -> CredentialMeta:
        """Check, encrypt and store a new credential; returns its metadata (never its secret)."""
        valid = validate_new(new)
        credential_id = str(uuid.uuid4())  # ours, so never a platform credential's fixed id
        # what the metadata says, sealed with the secret so that a changed item is refused (decrypt)
        payload: dict[str, Any] = {"v": PAYLOAD_VERSION, "provider": new.provider, "type": valid.type.value}
        payload |= {"host": valid.host, "base_url": valid.base_url}
        plaintext = json.dumps({**payload, **valid.secret}, separators=(",", ":")).encode()
        envelope = seal(self.keyring(), _context(user_id, credential_id), plaintext)
        meta = CredentialMeta(
            credential_id=credential_id,
            user_id=user_id,
            provider=new.provider,
            type=valid.type.value,
            title=new.title,
            host=valid.host,
            base_url=valid.base_url,
        )
        return self.store.put_credential(meta, envelope.to_attributes())

    def list(self, user_id: str) -> list[CredentialMeta]:
        return self.store.list_credentials(user_id)

    def get(self, user_id: str, credential_id: str) -> CredentialMeta | None:
        found = self.store.get_credential(user_id, credential_id)
        return None if found is None else found.meta

    def delete(self, user_id: str, credential_id: str) -> bool:
        return self.store.delete_credential(user_id, credential_id)

    def decrypt(self, sealed: SealedCredential) -> Credentials:
        """The typed credentials of a stored item; DecryptionError when its blob does not open or does not match
        its metadata (a changed provider, type, host or base URL is refused, not trusted: a base URL pointed
        elsewhere would send the key there). An item stored before base URLs existed has none on either side."""
        meta = sealed.meta
        plaintext = unseal(
            self.keyring(), Envelope.from_attributes(sealed.sealed), _context(meta.user_id, meta.credential_id)
        )
        secret = json.loads(plaintext)
        sealed_meta = (secret.get("provider"), secret.get("type"), secret.get("host"), secret.get("base_url"))
        if sealed_meta != (meta.provider, meta.type, meta.host, meta.base_url):
            raise DecryptionError(f"credentials #{meta.credential_id}: the stored metadata does not match the secret")
        common: dict[str, Any] = {"id": meta.credential_id, "provider": meta.provider, "title": meta.title}
        if meta.type == CredentialType.API_KEY:
            return APIKeyCredentials(**common, api_key=SecretStr(secret["api_key"]), base_url=meta.base_url)
        if meta.type == CredentialType.USER_PASSWORD:
            return UserPasswordCredentials(
                **common, username=SecretStr(secret["username"]), password=SecretStr(secret["password"])
            )
        headers = {name: SecretStr(value) for name, value in secret["headers"].items()}
        return HostScopedCredentials(**common, host=str(meta.host), headers=headers)

    # -- the engine's port

    def _known(
        self, user_id: str, credential_id: str, cache: dict[str, tuple[str, str] | None]
    ) -> tuple[str, str] | None:
        """(provider, type) of a credential the user may name: their own, or an available platform one."""
        if credential_id not in cache:
            if credential_id in BY_ID:  # known even where its key is not set (the API's functions hold none)
                cache[credential_id] = (BY_ID[credential_id].provider, CredentialType.API_KEY.value)
            else:
                found = self.store.get_credential(user_id, credential_id)
                cache[credential_id] = None if found is None else (found.meta.provider, found.meta.type)
        return cache[credential_id]

    def _pin_problem(
        self, user_id: str, node: Node, block: type[Block], spec: CredentialsSpec, cache: dict[str, Any]
    ) -> str | None:
        value = node.input_default.get(spec.pin)
        if value is None or (isinstance(value, Mapping) and not value.get("id")):
            optional = not spec.required or bool(node.metadata.get("credentials_optional"))
            if optional or default_credentials(pin_provider(block, spec, node.input_default), self.env):
                return None
            return "credentials are required"
        if (reason := _malformed(value)) is not None:
            return f"invalid credentials: {reason}"
        meta = CredentialsMetaInput.model_validate(value)
        if not spec.accepts(meta.provider, meta.type):
            return (
                f"invalid credentials: type/provider mismatch: the block takes {'/'.join(sorted(spec.types))} "
                f"credentials of {', '.join(sorted(spec.providers))}, not {meta.type} of {meta.provider}"
            )
        known = self._known(user_id, meta.id, cache)
        if known is None:
            return f"unknown credentials #{meta.id}"  # also another user's: the same answer
        if known != (meta.provider, meta.type):
            return (
                f"invalid credentials: type/provider mismatch: credentials #{meta.id} are {known[1]} of {known[0]}, "
                f"the node says {meta.type} of {meta.provider}"
            )
        return None

    def check_graph(self, user_id: str, graph: ValidGraph) -> builtins.list[Problem]:  # `list` is a method here
        problems: builtins.list[Problem] = []
        cache: dict[str, Any] = {}
        for node in graph.graph.nodes:
            block = graph.block(node.id)
            for pin, spec in credential_fields(block).items():
                message = self._pin_problem(user_id, node, block, spec, cache)
                if message is not None:
                    problems.append(Problem(message, node.id, pin))
        return problems

    def _resolve_pin(
        self, user_id: str, block: type[Block], spec: CredentialsSpec, inputs: Mapping[str, Any]
    ) -> Credentials | None:
        value = inputs.get(spec.pin)
        credential_id = value.get("id") if isinstance(value, Mapping) else getattr(value, "id", None)
        if not credential_id:
            return default_credentials(pin_provider(block, spec, inputs), self.env)
        credential_id = str(credential_id)
        if credential_id in BY_ID:
            found: Credentials | None = platform_credentials(credential_id, self.env)
            if found is None:
                variable = BY_ID[credential_id].env
                raise BlockError(
                    f"input {spec.pin!r}: the platform credentials #{credential_id} ({BY_ID[credential_id].title}) "
                    f"have no key in this deployment: set {variable}, or name a credential of your own"
                )
        else:
            sealed = self.store.get_credential(user_id, credential_id)
            try:
                found = None if sealed is None else self.decrypt(sealed)
            except DecryptionError as exc:  # permanent: fail the node, naming the pin (never retry it)
                raise BlockError(
                    f"input {spec.pin!r}: credentials #{credential_id} cannot be decrypted: {exc}"
                ) from None
        if found is None:
            if not spec.required:
                return None  # an optional input runs without, as AutoGPT does
            raise BlockError(f"input {spec.pin!r}: credentials #{credential_id} are gone (deleted, or unknown)")
        if not spec.accepts(found.provider, found.type.value):
            raise BlockError(
                f"input {spec.pin!r}: credentials #{credential_id} are not of a type/provider the block takes"
            )
        return found

    def resolve_node(self, user_id: str, block: type[Block], inputs: Mapping[str, Any]) -> dict[str, Credentials]:
        resolved: dict[str, Credentials] = {}
        for pin, spec in credential_fields(block).items():
            found = self._resolve_pin(user_id, block, spec, inputs)
            if found is not None:
                resolved[pin] = found
        return resolved


def _satisfies(vault: CredentialVault) -> CredentialsPort:
    return vault  # mypy: the vault is what the engine calls
