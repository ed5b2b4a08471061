"""Envelope encryption of credential secrets: the local keyring (a 0600 key file) and the KMS keyring (moto, in
process), round trips, and the failures that must be loud: another context, changed bytes, another key."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from agentflow.credentials.crypto import (
    DecryptionError,
    Envelope,
    Keyring,
    KmsKeyring,
    LocalKeyring,
    keyring_for,
    seal,
    unseal,
)
from agentflow.errors import ConfigurationError

SECRET = b'{"api_key":"sk-very-secret-value-123"}'
CONTEXT = {"user_id": "alice", "credential_id": "c-1"}


@pytest.fixture
def kms_keyring() -> Iterator[KmsKeyring]:
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        key_id = client.create_key(Description="agentflow credentials (test)")["KeyMetadata"]["KeyId"]
        yield KmsKeyring(client, key_id)


@pytest.fixture
def local_keyring(tmp_path: Path) -> LocalKeyring:
    return LocalKeyring(tmp_path / "data" / "credentials.key")


@pytest.fixture(params=["local", "kms"])
def keyring(request: pytest.FixtureRequest) -> Keyring:
    name = "local_keyring" if request.param == "local" else "kms_keyring"
    found: Keyring = request.getfixturevalue(name)
    return found


def flipped(data: bytes, index: int = -1) -> bytes:
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def test_round_trip(keyring: Keyring) -> None:
    envelope = seal(keyring, CONTEXT, SECRET)
    assert unseal(keyring, envelope, CONTEXT) == SECRET
    stored = Envelope.from_attributes(envelope.to_attributes())
    assert stored == envelope
    assert unseal(keyring, stored, dict(CONTEXT)) == SECRET


def test_every_envelope_has_its_own_data_key_and_nonce(keyring: Keyring) -> None:
    first, second = seal(keyring, CONTEXT, SECRET), seal(keyring, CONTEXT, SECRET)
    assert first.nonce != second.nonce
    assert first.wrapped_key != second.wrapped_key
    assert first.ciphertext != second.ciphertext
    assert len(first.nonce) == 12


def test_the_stored_envelope_never_holds_the_secret(keyring: Keyring) -> None:
    attributes = seal(keyring, CONTEXT, SECRET).to_attributes()
    assert set(attributes) == {"key_kind", "key_id", "wrapped_key", "nonce", "ciphertext"}
    text = repr(attributes)
    assert "sk-very-secret" not in text
    envelope = Envelope.from_attributes(attributes)
    assert b"sk-very-secret" not in envelope.ciphertext + envelope.wrapped_key


@pytest.mark.parametrize(
    "other", [{"user_id": "bob", "credential_id": "c-1"}, {"user_id": "alice", "credential_id": "c-2"}]
)
def test_another_context_fails(keyring: Keyring, other: dict[str, str]) -> None:
    envelope = seal(keyring, CONTEXT, SECRET)
    with pytest.raises(DecryptionError) as failed:
        unseal(keyring, envelope, other)
    assert "sk-very-secret" not in str(failed.value)


@pytest.mark.parametrize("part", ["ciphertext", "nonce", "wrapped_key"])
def test_changed_bytes_fail(keyring: Keyring, part: str) -> None:
    envelope = seal(keyring, CONTEXT, SECRET)
    tampered = replace(envelope, **{part: flipped(getattr(envelope, part))})
    with pytest.raises(DecryptionError):
        unseal(keyring, tampered, CONTEXT)


def test_a_malformed_blob_fails_clearly() -> None:
    with pytest.raises(DecryptionError, match="malformed"):
        Envelope.from_attributes(
            {"key_kind": "local", "key_id": "x", "nonce": "!!", "ciphertext": "", "wrapped_key": ""}
        )
    with pytest.raises(DecryptionError, match="malformed"):
        Envelope.from_attributes({"key_kind": "local"})


def test_the_key_file_is_created_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "credentials.key"
    first = LocalKeyring(path)
    envelope = seal(first, CONTEXT, SECRET)
    assert path.is_file()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    key = path.read_bytes()
    again = LocalKeyring(path)  # another process, later: the same key
    assert unseal(again, envelope, CONTEXT) == SECRET
    assert path.read_bytes() == key
    assert [p.name for p in path.parent.iterdir()] == ["credentials.key"]  # no temporary file left


def test_another_key_file_fails_naming_the_key(tmp_path: Path) -> None:
    envelope = seal(LocalKeyring(tmp_path / "a.key"), CONTEXT, SECRET)
    with pytest.raises(DecryptionError, match="encrypted with local key local:"):
        unseal(LocalKeyring(tmp_path / "b.key"), envelope, CONTEXT)


def test_a_key_file_of_the_wrong_size_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "credentials.key"
    path.write_bytes(b"short")
    with pytest.raises(ConfigurationError, match="AGENTFLOW_CREDENTIALS_KEY_FILE"):
        seal(LocalKeyring(path), CONTEXT, SECRET)


def test_a_local_envelope_does_not_open_with_kms(local_keyring: LocalKeyring, kms_keyring: KmsKeyring) -> None:
    envelope = seal(local_keyring, CONTEXT, SECRET)
    with pytest.raises(DecryptionError, match="local key, but this deployment's keyring is kms"):
        unseal(kms_keyring, envelope, CONTEXT)


def test_kms_binds_the_data_key_to_the_context(kms_keyring: KmsKeyring) -> None:
    envelope = seal(kms_keyring, CONTEXT, SECRET)
    assert envelope.key_kind == "kms"
    assert envelope.key_id.startswith("arn:aws:kms:")
    with pytest.raises(DecryptionError, match="InvalidCiphertextException"):
        kms_keyring.unwrap(envelope.wrapped_key, envelope.key_id, {"user_id": "bob", "credential_id": "c-1"})


def test_the_keyring_is_chosen_from_the_settings(tmp_path: Path) -> None:
    def no_kms() -> None:
        raise AssertionError("the KMS client must not be made when a key file is set")

    chosen = keyring_for(str(tmp_path / "k"), "some-key", no_kms)  # type: ignore[arg-type]
    assert isinstance(chosen, LocalKeyring)
    with mock_aws():
        client = boto3.client("kms", region_name="us-east-1")
        assert isinstance(keyring_for("", "alias/x", lambda: client), KmsKeyring)
    with pytest.raises(ConfigurationError) as missing:
        keyring_for("", "", no_kms)  # type: ignore[arg-type]
    assert "AGENTFLOW_CREDENTIALS_KEY_ID" in str(missing.value)
    assert "AGENTFLOW_CREDENTIALS_KEY_FILE" in str(missing.value)
