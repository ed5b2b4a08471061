"""Envelope encryption of credential secrets (README, "Credentials"). Each secret is encrypted with its own fresh
256-bit data key (AES-GCM, a random 96-bit nonce, the encryption context as associated data); only the data key,
wrapped by a `Keyring`, is stored beside the ciphertext:

- `KmsKeyring` (deployed): KMS GenerateDataKey / Decrypt with the encryption context, so IAM can let the API only
  create credentials (kms:GenerateDataKey) and the node executor only read them (kms:Decrypt);
- `LocalKeyring` (the local stack): a 32-byte master key in a 0600 file of the local data folder.

The encryption context (`user_id`, `credential_id`) binds a ciphertext to its owner and id: decrypting it under
another context fails, as does any change to the stored bytes. Error messages never include key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from agentflow.errors import AgentflowError, ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the 96-bit nonce AES-GCM is specified for
KEY_ID_ENV = "AGENTFLOW_CREDENTIALS_KEY_ID"
KEY_FILE_ENV = "AGENTFLOW_CREDENTIALS_KEY_FILE"

EncryptionContext = Mapping[str, str]


class DecryptionError(AgentflowError):
    """A stored secret cannot be decrypted: another key, another context (owner or id), or changed bytes."""


def _aad(context: EncryptionContext) -> bytes:
    """The context as associated data: canonical JSON, so the same context always gives the same bytes."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Envelope:
    """What is stored of one encrypted secret: never the secret, never an unwrapped key."""

    key_kind: str  # "kms" or "local": which keyring wrapped the data key
    key_id: str  # the KMS key's ARN, or the local master key's fingerprint
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    def to_attributes(self) -> dict[str, str]:
        encode = base64.b64encode
        return {
            "key_kind": self.key_kind,
            "key_id": self.key_id,
            "wrapped_key": encode(self.wrapped_key).decode(),
            "nonce": encode(self.nonce).decode(),
            "ciphertext": encode(self.ciphertext).decode(),
        }

    @staticmethod
    def from_attributes(attributes: Mapping[str, object]) -> Envelope:
        try:
            return Envelope(
                key_kind=str(attributes["key_kind"]),
                key_id=str(attributes["key_id"]),
                wrapped_key=base64.b64decode(str(attributes["wrapped_key"]), validate=True),
                nonce=base64.b64decode(str(attributes["nonce"]), validate=True),
                ciphertext=base64.b64decode(str(attributes["ciphertext"]), validate=True),
            )
        except (KeyError, binascii.Error, ValueError) as exc:
            raise DecryptionError("the stored credential is malformed (its encrypted blob is incomplete)") from exc


class Keyring(Protocol):
    """Makes and unwraps data keys, bound to an encryption context."""

    kind: str

    def new_data_key(self, context: EncryptionContext) -> tuple[bytes, bytes, str]:
        """(plaintext data key, wrapped data key, id of the wrapping key)."""
        ...

    def unwrap(self, wrapped: bytes, key_id: str, context: EncryptionContext) -> bytes:
        """The plaintext data key; DecryptionError when the context or the wrapped bytes are not the original."""
        ...


class KmsKeyring:
    """Data keys from KMS (GenerateDataKey), unwrapped by KMS (Decrypt), both under the encryption context."""

    kind = "kms"

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    def new_data_key(self, context: EncryptionContext) -> tuple[bytes, bytes, str]:
        response = self.client.generate_data_key(KeyId=self.key_id, KeySpec="AES_256", EncryptionContext=dict(context))
        return response["Plaintext"], response["CiphertextBlob"], response["KeyId"]

    def unwrap(self, wrapped: bytes, key_id: str, context: EncryptionContext) -> bytes:
        try:
            response = self.client.decrypt(CiphertextBlob=wrapped, KeyId=key_id, EncryptionContext=dict(context))
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("InvalidCiphertextException", "IncorrectKeyException", "NotFoundException"):
                raise DecryptionError(
                    f"KMS refused to decrypt the credential's data key ({code}): another key or another "
                    "encryption context (owner, id), or the stored bytes were changed"
                ) from None
            raise
        return response["Plaintext"]


class LocalKeyring:
    """A 32-byte master key in a file (created on first use, mode 0600) wraps each data key with AES-GCM, the
    encryption context as associated data. For the local stack: the file is as secret as the data it protects."""

    kind = "local"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._master: bytes | None = None
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str:
        """The master key's fingerprint (not the key): tells which key file a credential needs."""
        return "local:" + hashlib.sha256(b"agentflow-local-keyring" + self._key()).hexdigest()[:16]

    def _key(self) -> bytes:
        with self._lock:
            if self._master is None:
                self._master = self._load_or_create()
            return self._master

    def _load_or_create(self) -> bytes:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            # Written whole under a temporary name, then linked into place: a concurrent process either wins the
            # link or reads the winner's key, and a crash never leaves a short key file behind.
            temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(secrets.token_bytes(KEY_BYTES))
                os.link(temporary, self.path)
            except FileExistsError:
                pass
            finally:
                temporary.unlink(missing_ok=True)
        master = self.path.read_bytes()
        if len(master) != KEY_BYTES:
            raise ConfigurationError(
                f"{KEY_FILE_ENV}: {self.path} is not a credentials key file ({len(master)} bytes, expected "
                f"{KEY_BYTES}); restore the original file (credentials encrypted with it cannot be read without it)"
            )
        return master

    def new_data_key(self, context: EncryptionContext) -> tuple[bytes, bytes, str]:
        data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        nonce = os.urandom(NONCE_BYTES)
        wrapped = nonce + AESGCM(self._key()).encrypt(nonce, data_key, _aad(context))
        return data_key, wrapped, self.key_id

    def unwrap(self, wrapped: bytes, key_id: str, context: EncryptionContext) -> bytes:
        if key_id != self.key_id:
            raise DecryptionError(
                f"the credential was encrypted with local key {key_id}, but {self.path} holds {self.key_id}"
            )
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        try:
            return AESGCM(self._key()).decrypt(nonce, sealed, _aad(context))
        except InvalidTag:
            raise DecryptionError(
                "cannot unwrap the credential's data key: another encryption context (owner, id), "
                "or the stored bytes were changed"
            ) from None


def seal(keyring: Keyring, context: EncryptionContext, plaintext: bytes) -> Envelope:
    """Encrypt `plaintext` under a fresh data key; only the wrapped key is kept."""
    data_key, wrapped, key_id = keyring.new_data_key(context)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, _aad(context))
    return Envelope(keyring.kind, key_id, wrapped, nonce, ciphertext)


def unseal(keyring: Keyring, envelope: Envelope, context: EncryptionContext) -> bytes:
    """The plaintext of an envelope; DecryptionError on another keyring, another context or changed bytes."""
    if envelope.key_kind != keyring.kind:
        raise DecryptionError(
            f"the credential was encrypted with a {envelope.key_kind} key, but this deployment's keyring is "
            f"{keyring.kind} ({KEY_FILE_ENV} / {KEY_ID_ENV})"
        )
    data_key = keyring.unwrap(envelope.wrapped_key, envelope.key_id, context)
    try:
        return AESGCM(data_key).decrypt(envelope.nonce, envelope.ciphertext, _aad(context))
    except (InvalidTag, ValueError):
        raise DecryptionError(
            "cannot decrypt the credential: another encryption context (owner, id), or the stored bytes were changed"
        ) from None


def keyring_for(key_file: str, key_id: str, kms_client: Callable[[], KMSClient]) -> Keyring:
    """The keyring the settings choose: the key file when set (the local stack), else the KMS key (deployed).
    `kms_client` is called only when KMS is chosen."""
    if key_file:
        return LocalKeyring(Path(key_file))
    if key_id:
        return KmsKeyring(kms_client(), key_id)
    raise ConfigurationError(
        f"no credentials key: set {KEY_ID_ENV} (a KMS key id or ARN; template.yaml sets it when deployed) "
        f"or {KEY_FILE_ENV} (a local key file; the local stack sets it)"
    )
