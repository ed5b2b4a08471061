"""The credentials vault on moto DynamoDB: create / list / get / delete per type, validation naming the field,
tenancy, the start-time check matrix, run-time resolution (users' and platform credentials), and that nothing
stored holds a secret in plain text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from pydantic import Field

from agentflow.blocks.http import SendAuthenticatedWebRequestBlock
from agentflow.blocks.sdk import Block, BlockError, BlockSchema, BlockSchemaOutput
from agentflow.clock import iso_at
from agentflow.config import Settings
from agentflow.credentials.crypto import DecryptionError, KmsKeyring, LocalKeyring, keyring_for, seal
from agentflow.credentials.models import (
    APIKeyCredentials,
    CredentialsField,
    CredentialsMetaInput,
    CredentialType,
    HostScopedCredentials,
    UserPasswordCredentials,
)
from agentflow.credentials.platform import BY_PROVIDER
from agentflow.credentials.validation import CredentialInputError, NewCredential
from agentflow.credentials.vault import CredentialVault
from agentflow.errors import ConfigurationError
from agentflow.events import RecordingPublisher
from agentflow.graph import Graph, Node, ValidGraph
from agentflow.runtime import build_runtime
from agentflow.store import CredentialMeta, Store
from tests.support.clock import FakeClock

OPENAI_SYSTEM_ID = BY_PROVIDER["openai"].id
OLLAMA_SYSTEM_ID = BY_PROVIDER["ollama"].id
API_KEY = "sk-alice-secret-0123456789"
PASSWORD = "hunter2-alice-password"
TOKEN = "Bearer alice-token-abcdef"
OLLAMA_URL = "http://127.0.0.1:11434/v1"


# -- test-only blocks (never registered)


class LlmLikeBlock(Block):
    """Takes an api_key of one of several providers, selected by its `model` (AutoGPT's discriminator)."""

    id = "00000000-0000-4000-8000-00000000c001"

    class Input(BlockSchema):
        model: str = Field(default="gpt-x")
        credentials: CredentialsMetaInput = Field(
            json_schema_extra={
                "credentials_provider": ["openai", "anthropic", "ollama"],
                "credentials_types": ["api_key"],
                "discriminator": "model",
                "discriminator_mapping": {"gpt-x": "openai", "claude-x": "anthropic", "llama-x": "ollama"},
            }
        )

    class Output(BlockSchemaOutput):
        response: str = Field()


class BasicAuthBlock(Block):
    id = "00000000-0000-4000-8000-00000000c002"

    class Input(BlockSchema):
        credentials: CredentialsMetaInput = CredentialsField("jira", [CredentialType.USER_PASSWORD])

    class Output(BlockSchemaOutput):
        result: str = Field()


class OptionalKeyBlock(Block):
    id = "00000000-0000-4000-8000-00000000c003"

    class Input(BlockSchema):
        search_credentials: CredentialsMetaInput | None = Field(
            default=None, json_schema_extra={"credentials_provider": ["jina"], "credentials_types": ["api_key"]}
        )

    class Output(BlockSchemaOutput):
        result: str = Field()


class GraphOf(ValidGraph):
    """A ValidGraph of the test-only blocks above (the registry does not know them)."""

    def __init__(self, nodes: Mapping[str, tuple[type[Block], dict[str, Any]]]) -> None:
        self.graph = Graph(
            nodes=[Node(id=nid, block_id=block.id, input_default=inputs) for nid, (block, inputs) in nodes.items()]
        )
        self.nodes = {n.id: n for n in self.graph.nodes}
        self.blocks = {nid: block for nid, (block, _) in nodes.items()}


# -- fixtures


@pytest.fixture
def store(moto_table: tuple[Any, str], clock: FakeClock) -> Store:
    client, table = moto_table
    return Store(client, table, clock=clock)


@pytest.fixture
def env() -> dict[str, str]:
    return {}


@pytest.fixture
def vault(store: Store, tmp_path: Path, env: dict[str, str]) -> CredentialVault:
    return CredentialVault(store, LocalKeyring(tmp_path / "credentials.key"), env=env)


def api_key(provider: str = "openai", **extra: Any) -> NewCredential:
    return NewCredential(provider=provider, title="my key", api_key=API_KEY, **extra)


def user_password() -> NewCredential:
    return NewCredential(provider="jira", type="user_password", username="alice", password=PASSWORD)


def host_scoped(host: str = "api.example.com") -> NewCredential:
    return NewCredential(provider="http", type="host_scoped", host=host, headers={"Authorization": TOKEN})


def meta_of(vault: CredentialVault, user: str, new: NewCredential) -> dict[str, str]:
    meta = vault.create(user, new)
    return {"id": meta.credential_id, "provider": meta.provider, "type": meta.type}


# -- create, list, get, delete


@pytest.mark.parametrize("new", [api_key(), user_password(), host_scoped("*.Example.com.")], ids=lambda n: n.type)
def test_create_list_get_delete_per_type(vault: CredentialVault, clock: FakeClock, new: NewCredential) -> None:
    meta = vault.create("alice", new)
    assert meta.user_id == "alice" and meta.provider == new.provider and meta.type == new.type
    assert meta.created_at == iso_at(clock.now)
    assert meta.host == ("*.example.com" if new.type == "host_scoped" else None)  # normalized
    assert vault.list("alice") == [meta]
    assert vault.get("alice", meta.credential_id) == meta
    assert vault.delete("alice", meta.credential_id) is True
    assert vault.get("alice", meta.credential_id) is None
    assert vault.list("alice") == []
    assert vault.delete("alice", meta.credential_id) is False


def test_list_is_oldest_first_and_per_user(vault: CredentialVault, clock: FakeClock) -> None:
    first = vault.create("alice", api_key())
    clock.now += 5
    second = vault.create("alice", host_scoped())
    vault.create("bob", user_password())
    assert [m.credential_id for m in vault.list("alice")] == [first.credential_id, second.credential_id]
    assert [m.provider for m in vault.list("bob")] == ["jira"]


def test_another_users_credential_is_invisible(vault: CredentialVault) -> None:
    meta = vault.create("alice", api_key())
    assert vault.get("bob", meta.credential_id) is None
    assert vault.delete("bob", meta.credential_id) is False
    assert vault.list("bob") == []
    assert vault.get("alice", meta.credential_id) == meta  # untouched


def test_ids_are_fresh_uuids_never_platform_ids(vault: CredentialVault) -> None:
    ids = {vault.create("alice", api_key()).credential_id for _ in range(5)}
    assert len(ids) == 5
    assert not ids & {p.id for p in BY_PROVIDER.values()}


def test_nothing_stored_holds_a_secret(vault: CredentialVault, moto_table: tuple[Any, str]) -> None:
    for new in (api_key(), user_password(), host_scoped()):
        vault.create("alice", new)
    client, table = moto_table
    items = client.scan(TableName=table)["Items"]
    assert len(items) == 3
    dumped = json.dumps(items)
    for secret in (API_KEY, PASSWORD, TOKEN, "alice-token"):
        assert secret not in dumped
    assert all(set(i["sealed"]["M"]) == {"key_kind", "key_id", "wrapped_key", "nonce", "ciphertext"} for i in items)


def test_reprs_do_not_show_secrets(vault: CredentialVault) -> None:
    new = host_scoped()
    assert TOKEN not in repr(new) and API_KEY not in repr(api_key())
    meta = vault.create("alice", new)
    assert TOKEN not in repr(meta)


# -- validation: every problem names its field, none quotes a secret


@pytest.mark.parametrize(
    ("new", "field", "words"),
    [
        (api_key(provider="OpenAI"), "provider", "lowercase"),
        (api_key(provider="a" * 65), "provider", "1-64"),
        (NewCredential(provider="openai", title="t" * 201, api_key=API_KEY), "title", "at most 200"),
        (
            NewCredential(provider="openai", type="oauth2", api_key=API_KEY),
            "type",
            "api_key, user_password, host_scoped",
        ),
        (NewCredential(provider="openai"), "api_key", "required"),
        (NewCredential(provider="openai", api_key=""), "api_key", "required"),
        (NewCredential(provider="openai", api_key=API_KEY + "\n"), "api_key", "line breaks"),
        (NewCredential(provider="openai", api_key="k" * 9000), "api_key", "too long"),
        (NewCredential(provider="jira", type="user_password", username="alice"), "password", "required"),
        (NewCredential(provider="jira", type="user_password", password=PASSWORD), "username", "required"),
        (NewCredential(provider="jira", type="user_password", username="a:b", password=PASSWORD), "username", "':'"),
        (
            NewCredential(provider="jira", type="user_password", api_key=API_KEY, username="a", password="p"),
            "api_key",
            "not a field",
        ),
        (NewCredential(provider="http", type="host_scoped", headers={"A": TOKEN}), "host", "required"),
        (host_scoped("https://api.example.com"), "host", "no scheme"),
        (host_scoped("api.example.com:8443"), "host", "no scheme, port"),
        (host_scoped("api.example.com/v1"), "host", "or path"),
        (host_scoped("*.com"), "host", "below a top-level domain"),
        (host_scoped("bad_host!.com"), "host", "host name"),
        (NewCredential(provider="http", type="host_scoped", host="a.example.com", headers={}), "headers", "non-empty"),
        (NewCredential(provider="http", type="host_scoped", host="a.example.com"), "headers", "required"),
        (
            NewCredential(provider="http", type="host_scoped", host="x.io", headers={"Bad Name": TOKEN}),
            "headers.Bad Name",
            "header name",
        ),
        (
            NewCredential(provider="http", type="host_scoped", host="x.io", headers={"A": TOKEN + "\r\nX: y"}),
            "headers.A",
            "line breaks",
        ),
        (NewCredential(provider="http", type="host_scoped", host="x.io", headers={"A": ""}), "headers.A", "empty"),
        # base_url: api_key only, and an absolute http(s) URL of a server
        (
            NewCredential(provider="jira", type="user_password", username="a", password="p", base_url=OLLAMA_URL),
            "base_url",
            "is not a field of user_password credentials",
        ),
        (
            NewCredential(provider="http", type="host_scoped", host="x.io", headers={"A": TOKEN}, base_url=OLLAMA_URL),
            "base_url",
            "is not a field of host_scoped credentials",
        ),
        (api_key(base_url="ftp://x"), "base_url", "http or https"),
        (api_key(base_url=f"http://alice:{PASSWORD}@h/v1"), "base_url", "user info"),  # the password is not quoted
        (api_key(base_url="http://u:p@h/v1"), "base_url", "user info"),
        (api_key(base_url="http://h/v1?x=1"), "base_url", "query"),
        (api_key(base_url="http://h/v1?"), "base_url", "query"),
        (api_key(base_url="http://h/v1#f"), "base_url", "fragment"),
        (api_key(base_url="v1"), "base_url", "absolute URL"),
        (api_key(base_url="/v1"), "base_url", "absolute URL"),
        (api_key(base_url="localhost:11434/v1"), "base_url", "absolute URL"),
        (api_key(base_url="http:///v1"), "base_url", "must name a host"),
        (api_key(base_url="http://bad!host/v1"), "base_url", "must name a host"),
        (api_key(base_url="http://[not-v6]/v1"), "base_url", "not a valid URL"),
        (api_key(base_url="http://h:99999/v1"), "base_url", "not a valid URL"),
        (api_key(base_url="http://h/" + "v" * 2040), "base_url", "too long (2049 characters; at most 2048)"),
        (api_key(base_url="http://h/v 1"), "base_url", "whitespace or control"),
        (api_key(base_url="http://h/v1\n"), "base_url", "whitespace or control"),
        (api_key(base_url="http://h/v1\u200b"), "base_url", "whitespace or control"),
        (api_key(base_url=""), "base_url", "non-empty"),
    ],
)
def test_validation_names_the_field(vault: CredentialVault, new: NewCredential, field: str, words: str) -> None:
    with pytest.raises(CredentialInputError) as failed:
        vault.create("alice", new)
    assert field in [name for name, _ in failed.value.problems], failed.value.problems
    message = str(failed.value)
    assert message.startswith("invalid credentials: ") and f"{field}: " in message
    assert words in message, message
    for secret in (API_KEY, PASSWORD, TOKEN):
        assert secret not in message
    assert vault.list("alice") == []


def test_every_problem_is_reported_at_once(vault: CredentialVault) -> None:
    with pytest.raises(CredentialInputError) as failed:
        vault.create("alice", NewCredential(provider="Bad", type="user_password", title="t" * 300))
    assert [name for name, _ in failed.value.problems] == ["provider", "title", "password", "username"]
    with pytest.raises(CredentialInputError) as failed:
        vault.create("alice", NewCredential(provider="openai", base_url="ftp://x"))
    assert [name for name, _ in failed.value.problems] == ["api_key", "base_url"]


def test_base_url_is_optional_and_only_named_when_given(vault: CredentialVault) -> None:
    with pytest.raises(CredentialInputError) as failed:
        vault.create("alice", NewCredential(provider="openai"))
    assert [name for name, _ in failed.value.problems] == ["api_key"]  # not required with the key
    with pytest.raises(CredentialInputError) as failed:
        vault.create("alice", api_key(username="alice"))
    assert failed.value.problems == [
        ("username", "is not a field of api_key credentials (they take api_key, optional base_url)")
    ]
    assert vault.create("alice", api_key()).base_url is None


# -- base_url: an api_key credential's own server


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (OLLAMA_URL, OLLAMA_URL),
        (OLLAMA_URL + "/", OLLAMA_URL),  # the SDKs append paths: no trailing '/'
        ("https://openrouter.ai/api/v1//", "https://openrouter.ai/api/v1"),
        ("http://localhost:8000/", "http://localhost:8000"),
        ("HTTPS://LLM.Example.com/v1", "HTTPS://LLM.Example.com/v1"),  # as given, but for the trailing '/'
        ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
        ("http://vllm_server:8000/v1", "http://vllm_server:8000/v1"),  # a compose service name
    ],
)
def test_base_url_round_trips_normalized(
    vault: CredentialVault, moto_table: tuple[Any, str], given: str, stored: str
) -> None:
    meta = vault.create("alice", api_key(base_url=given))
    assert meta.base_url == stored
    assert vault.list("alice") == [meta] and vault.get("alice", meta.credential_id) == meta
    client, table = moto_table
    [item] = client.scan(TableName=table)["Items"]
    assert item["base_url"] == {"S": stored}  # in the clear: not a secret
    reference = {"id": meta.credential_id, "provider": meta.provider, "type": meta.type}
    key = vault.resolve_node("alice", LlmLikeBlock, {"credentials": reference})["credentials"]
    assert isinstance(key, APIKeyCredentials)
    assert key.base_url == stored and key.api_key.get_secret_value() == API_KEY
    assert key.secrets() == [API_KEY]  # the URL is not scrubbed from outputs


def test_without_base_url_nothing_is_stored_for_it(vault: CredentialVault, moto_table: tuple[Any, str]) -> None:
    meta = meta_of(vault, "alice", api_key())
    client, table = moto_table
    [item] = client.scan(TableName=table)["Items"]
    assert "base_url" not in item
    key = vault.resolve_node("alice", LlmLikeBlock, {"credentials": meta})["credentials"]
    assert isinstance(key, APIKeyCredentials) and key.base_url is None


def set_attribute(moto_table: tuple[Any, str], credential_id: str, name: str, value: str | None) -> None:
    """Someone with table access changes (or, with None, removes) one attribute of alice's credential."""
    client, table = moto_table
    key = {"PK": {"S": "USER#alice"}, "SK": {"S": f"CRED#{credential_id}"}}
    if value is None:
        client.update_item(
            TableName=table, Key=key, UpdateExpression="REMOVE #a", ExpressionAttributeNames={"#a": name}
        )
        return
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #a = :v",
        ExpressionAttributeNames={"#a": name},
        ExpressionAttributeValues={":v": {"S": value}},
    )


@pytest.mark.parametrize(
    ("created_with", "changed_to"),
    [
        (OLLAMA_URL, "http://evil.example.net/v1"),  # the key would be sent elsewhere
        (OLLAMA_URL, None),  # the key would go to the provider's default API instead
        (None, "http://evil.example.net/v1"),  # added to a credential made without one
    ],
    ids=["changed", "removed", "added"],
)
def test_changed_base_url_metadata_is_refused(
    vault: CredentialVault, moto_table: tuple[Any, str], created_with: str | None, changed_to: str | None
) -> None:
    meta = meta_of(vault, "alice", api_key(base_url=created_with))
    set_attribute(moto_table, meta["id"], "base_url", changed_to)
    sealed = vault.store.get_credential("alice", meta["id"])
    assert sealed is not None and sealed.meta.base_url == changed_to
    with pytest.raises(DecryptionError, match="metadata does not match"):
        vault.decrypt(sealed)
    with pytest.raises(BlockError, match=r"cannot be decrypted: .*metadata does not match"):
        vault.resolve_node("alice", LlmLikeBlock, {"credentials": meta})


def test_an_item_stored_before_base_url_existed_still_decrypts(
    vault: CredentialVault, moto_table: tuple[Any, str]
) -> None:
    """The earlier payload had no `base_url` key at all, and the item no such attribute: both read as None."""
    credential_id = "0c3e4a5b-6d7e-4f80-9a1b-2c3d4e5f6a7b"
    plaintext = json.dumps({"v": 1, "provider": "openai", "type": "api_key", "host": None, "api_key": API_KEY})
    context = {"user_id": "alice", "credential_id": credential_id}
    envelope = seal(vault.keyring(), context, plaintext.encode())
    old = CredentialMeta(credential_id=credential_id, user_id="alice", provider="openai", type="api_key", title="old")
    vault.store.put_credential(old, envelope.to_attributes())
    client, table = moto_table
    [item] = client.scan(TableName=table)["Items"]
    assert "base_url" not in item
    sealed = vault.store.get_credential("alice", credential_id)
    assert sealed is not None and sealed.meta.base_url is None
    key = vault.decrypt(sealed)
    assert isinstance(key, APIKeyCredentials)
    assert key.base_url is None and key.api_key.get_secret_value() == API_KEY and key.title == "old"


def test_base_url_is_not_in_a_new_credentials_repr() -> None:
    """A base URL is not a secret, but until it is checked it may carry one (`user:pass@`)."""
    assert PASSWORD not in repr(api_key(base_url=f"http://alice:{PASSWORD}@h/v1"))


# -- the keyring, made on first use


def test_without_a_key_setting_creating_fails_naming_both_variables(store: Store) -> None:
    vault = CredentialVault(store, lambda: keyring_for("", "", boto3.client), env={})  # type: ignore[arg-type]
    assert vault.list("alice") == []  # metadata needs no key
    with pytest.raises(ConfigurationError) as failed:
        vault.create("alice", api_key())
    assert "AGENTFLOW_CREDENTIALS_KEY_ID" in str(failed.value) and "AGENTFLOW_CREDENTIALS_KEY_FILE" in str(failed.value)


def test_a_kms_keyring_round_trips_through_the_store(store: Store) -> None:
    kms = boto3.client("kms", region_name="us-east-1")  # moto: the moto_table fixture's mock is active
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    vault = CredentialVault(store, KmsKeyring(kms, key_id), env={})
    meta = meta_of(vault, "alice", api_key())
    resolved = vault.resolve_node("alice", LlmLikeBlock, {"credentials": meta})
    assert resolved["credentials"].secrets() == [API_KEY]


def test_the_runtime_builds_a_vault_from_the_settings(moto_table: tuple[Any, str], tmp_path: Path) -> None:
    client, table = moto_table
    environment = {"TABLE_NAME": table, "EVENT_BUS_NAME": "bus", "AGENTFLOW_CREDENTIALS_KEY_FILE": str(tmp_path / "k")}
    settings = Settings.from_env(environment)
    assert (settings.credentials_key_file, settings.credentials_key_id) == (str(tmp_path / "k"), "")
    runtime = build_runtime(settings, dynamodb=client, publisher=RecordingPublisher(), clock=FakeClock())
    assert runtime.vault() is runtime.engine.credentials
    runtime.vault().create("alice", api_key())
    assert (tmp_path / "k").is_file()
    kms_settings = Settings.from_env(
        {**environment, "AGENTFLOW_CREDENTIALS_KEY_FILE": "", "AGENTFLOW_CREDENTIALS_KEY_ID": "alias/x"}
    )
    assert kms_settings.credentials_key_id == "alias/x"


# -- check_graph: the start-time matrix (metadata only)


def problems_of(vault: CredentialVault, user: str, block: type[Block], inputs: dict[str, Any]) -> list[tuple[str, str]]:
    graph = GraphOf({"n1": (block, inputs)})
    return [(p.pin or "", p.message) for p in vault.check_graph(user, graph)]


def test_valid_credentials_of_each_type_pass(vault: CredentialVault) -> None:
    assert problems_of(vault, "alice", LlmLikeBlock, {"credentials": meta_of(vault, "alice", api_key())}) == []
    assert problems_of(vault, "alice", BasicAuthBlock, {"credentials": meta_of(vault, "alice", user_password())}) == []
    http = {"url": "https://api.example.com/x", "credentials": meta_of(vault, "alice", host_scoped())}
    assert problems_of(vault, "alice", SendAuthenticatedWebRequestBlock, http) == []


@pytest.mark.parametrize("value", [None, {}, {"id": "", "provider": "jira", "type": "user_password"}])
def test_missing_required_credentials(vault: CredentialVault, value: Any) -> None:
    inputs = {} if value is None else {"credentials": value}
    assert problems_of(vault, "alice", BasicAuthBlock, inputs) == [("credentials", "credentials are required")]


def test_missing_optional_credentials_pass(vault: CredentialVault) -> None:
    assert problems_of(vault, "alice", OptionalKeyBlock, {}) == []
    graph = GraphOf({"n1": (BasicAuthBlock, {})})
    graph.nodes["n1"].metadata["credentials_optional"] = True
    assert vault.check_graph("alice", graph) == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("some-id", "expected an object"),
        ({"provider": "jira", "type": "user_password", "id": 5}, "id: Input should be a valid string"),
        ({"id": "x", "type": "user_password"}, "provider: Field required"),
    ],
)
def test_malformed_credentials(vault: CredentialVault, value: Any, words: str) -> None:
    [(pin, message)] = problems_of(vault, "alice", BasicAuthBlock, {"credentials": value})
    assert pin == "credentials" and message.startswith("invalid credentials: ") and words in message, message


def test_unknown_and_another_users_ids_get_the_same_message(vault: CredentialVault) -> None:
    bobs = meta_of(vault, "bob", user_password())
    unknown = {**bobs, "id": "00000000-0000-4000-8000-000000000000"}
    [(_, for_bobs)] = problems_of(vault, "alice", BasicAuthBlock, {"credentials": bobs})
    [(_, for_unknown)] = problems_of(vault, "alice", BasicAuthBlock, {"credentials": unknown})
    assert for_bobs == f"unknown credentials #{bobs['id']}"
    assert for_unknown == f"unknown credentials #{unknown['id']}"
    assert for_bobs.replace(bobs["id"], "<id>") == for_unknown.replace(unknown["id"], "<id>")
    assert problems_of(vault, "bob", BasicAuthBlock, {"credentials": bobs}) == []


def test_a_provider_or_type_the_block_does_not_take(vault: CredentialVault) -> None:
    wrong_provider = meta_of(vault, "alice", api_key(provider="jina"))
    [(_, message)] = problems_of(vault, "alice", LlmLikeBlock, {"credentials": wrong_provider})
    assert message.startswith("invalid credentials: type/provider mismatch") and "jina" in message
    wrong_type = meta_of(vault, "alice", host_scoped())
    [(_, message)] = problems_of(vault, "alice", BasicAuthBlock, {"credentials": wrong_type})
    assert message.startswith("invalid credentials: type/provider mismatch") and "host_scoped" in message


def test_a_node_that_misstates_the_stored_provider_or_type(vault: CredentialVault) -> None:
    stored = meta_of(vault, "alice", api_key(provider="openai"))
    claimed = {**stored, "provider": "anthropic"}  # accepted by the block, but not what is stored
    [(_, message)] = problems_of(vault, "alice", LlmLikeBlock, {"credentials": claimed})
    assert message == (
        f"invalid credentials: type/provider mismatch: credentials #{stored['id']} are api_key of openai, "
        "the node says api_key of anthropic"
    )
    jira = meta_of(vault, "alice", api_key(provider="jira"))
    [(_, message)] = problems_of(vault, "alice", BasicAuthBlock, {"credentials": {**jira, "type": "user_password"}})
    assert "type/provider mismatch" in message and "api_key of jira" in message


def test_a_system_id_is_known_at_start_and_needs_its_key_to_run(vault: CredentialVault, env: dict[str, str]) -> None:
    # Deployed, the start check runs where no platform key is (ApiFunction): the key is needed when the node runs.
    system = {"id": OPENAI_SYSTEM_ID, "provider": "openai", "type": "api_key"}
    assert problems_of(vault, "alice", LlmLikeBlock, {"credentials": system}) == []
    with pytest.raises(BlockError, match="have no key in this deployment: set OPENAI_API_KEY"):
        vault.resolve_node("alice", LlmLikeBlock, {"credentials": system})
    env["OPENAI_API_KEY"] = "sk-platform"
    resolved = vault.resolve_node("alice", LlmLikeBlock, {"credentials": system})["credentials"]
    assert resolved.secrets() == ["sk-platform"]
    assert problems_of(vault, "alice", LlmLikeBlock, {"credentials": system}) == []
    [(_, message)] = problems_of(vault, "alice", LlmLikeBlock, {"credentials": {**system, "provider": "anthropic"}})
    assert "type/provider mismatch" in message


def test_no_credentials_pass_when_the_platform_has_the_providers_key(
    vault: CredentialVault, env: dict[str, str]
) -> None:
    claude = {"model": "claude-x"}
    assert problems_of(vault, "alice", LlmLikeBlock, claude) == [("credentials", "credentials are required")]
    env["OPENAI_API_KEY"] = "sk-platform"  # another provider's key does not help
    assert problems_of(vault, "alice", LlmLikeBlock, claude) == [("credentials", "credentials are required")]
    assert problems_of(vault, "alice", LlmLikeBlock, {}) == []  # the default model is openai's
    env["ANTHROPIC_API_KEY"] = "sk-ant-platform"
    assert problems_of(vault, "alice", LlmLikeBlock, claude) == []
    assert problems_of(vault, "alice", LlmLikeBlock, {"model": "llama-x"}) == []  # ollama's is always there


def test_problems_name_every_node(vault: CredentialVault) -> None:
    graph = GraphOf({"a": (BasicAuthBlock, {}), "b": (OptionalKeyBlock, {}), "c": (BasicAuthBlock, {})})
    assert [(p.node_id, p.pin) for p in vault.check_graph("alice", graph)] == [
        ("a", "credentials"),
        ("c", "credentials"),
    ]


# -- resolve_node: the secrets of one node execution


def test_resolve_returns_decrypted_typed_credentials(vault: CredentialVault) -> None:
    key = vault.resolve_node("alice", LlmLikeBlock, {"credentials": meta_of(vault, "alice", api_key())})["credentials"]
    assert isinstance(key, APIKeyCredentials) and key.api_key.get_secret_value() == API_KEY
    assert key.title == "my key" and key.auth_header() == f"Bearer {API_KEY}"
    basic = vault.resolve_node("alice", BasicAuthBlock, {"credentials": meta_of(vault, "alice", user_password())})
    login = basic["credentials"]
    assert isinstance(login, UserPasswordCredentials)
    assert (login.username.get_secret_value(), login.password.get_secret_value()) == ("alice", PASSWORD)
    meta = CredentialsMetaInput.model_validate(meta_of(vault, "alice", host_scoped("*.example.com")))
    http = vault.resolve_node(
        "alice", SendAuthenticatedWebRequestBlock, {"url": "https://a.example.com", "credentials": meta}
    )
    scoped = http["credentials"]
    assert isinstance(scoped, HostScopedCredentials) and scoped.host == "*.example.com"
    assert scoped.header_values() == {"Authorization": TOKEN} and scoped.matches_url("https://a.example.com/x")
    assert API_KEY not in repr(key) and PASSWORD not in repr(login) and TOKEN not in repr(scoped)


def test_resolve_platform_credentials(vault: CredentialVault, env: dict[str, str]) -> None:
    env["OPENAI_API_KEY"] = "sk-platform"
    named = vault.resolve_node("alice", LlmLikeBlock, {"credentials": {"id": OPENAI_SYSTEM_ID}})["credentials"]
    default = vault.resolve_node("alice", LlmLikeBlock, {"model": "gpt-x"})["credentials"]
    for found in (named, default):
        assert isinstance(found, APIKeyCredentials) and found.id == OPENAI_SYSTEM_ID
        assert found.api_key.get_secret_value() == "sk-platform" and found.title == "Use Credits for OpenAI"
    ollama = vault.resolve_node("alice", LlmLikeBlock, {"model": "llama-x"})["credentials"]
    assert ollama.id == OLLAMA_SYSTEM_ID and ollama.secrets() == ["FAKE_API_KEY"]
    assert vault.resolve_node("alice", LlmLikeBlock, {"model": "claude-x"}) == {}  # no key: runs without


def test_resolve_fails_naming_the_pin_when_a_credential_is_gone(vault: CredentialVault) -> None:
    meta = meta_of(vault, "alice", user_password())
    with pytest.raises(BlockError, match=r"input 'credentials': credentials #.* are gone"):
        vault.resolve_node("bob", BasicAuthBlock, {"credentials": meta})  # another user's: the same as gone
    vault.delete("alice", meta["id"])
    with pytest.raises(BlockError, match="are gone"):
        vault.resolve_node("alice", BasicAuthBlock, {"credentials": meta})
    with pytest.raises(BlockError, match="have no key in this deployment"):
        vault.resolve_node("alice", LlmLikeBlock, {"credentials": {"id": OPENAI_SYSTEM_ID}})  # no platform key
    assert vault.resolve_node("alice", OptionalKeyBlock, {"search_credentials": meta}) == {}  # optional: without


def test_resolve_refuses_a_type_the_block_does_not_take(vault: CredentialVault) -> None:
    meta = meta_of(vault, "alice", api_key(provider="jira"))
    with pytest.raises(BlockError, match="not of a type/provider the block takes"):
        vault.resolve_node("alice", BasicAuthBlock, {"credentials": meta})


def test_changed_metadata_is_refused_not_trusted(vault: CredentialVault, moto_table: tuple[Any, str]) -> None:
    meta = meta_of(vault, "alice", host_scoped("api.example.com"))
    client, table = moto_table
    client.update_item(  # someone with table access points the headers at another host
        TableName=table,
        Key={"PK": {"S": "USER#alice"}, "SK": {"S": f"CRED#{meta['id']}"}},
        UpdateExpression="SET #h = :h",
        ExpressionAttributeNames={"#h": "host"},
        ExpressionAttributeValues={":h": {"S": "evil.example.net"}},
    )
    with pytest.raises(BlockError, match=r"cannot be decrypted: .*metadata does not match"):
        vault.resolve_node(
            "alice", SendAuthenticatedWebRequestBlock, {"url": "https://evil.example.net", "credentials": meta}
        )
    sealed = vault.store.get_credential("alice", meta["id"])
    assert sealed is not None
    with pytest.raises(DecryptionError, match="metadata does not match"):
        vault.decrypt(sealed)


def test_an_item_copied_to_another_user_does_not_decrypt(vault: CredentialVault, moto_table: tuple[Any, str]) -> None:
    meta = meta_of(vault, "alice", api_key())
    client, table = moto_table
    item = client.get_item(TableName=table, Key={"PK": {"S": "USER#alice"}, "SK": {"S": f"CRED#{meta['id']}"}})["Item"]
    client.put_item(TableName=table, Item={**item, "PK": {"S": "USER#mallory"}, "user_id": {"S": "mallory"}})
    with pytest.raises(BlockError, match="cannot be decrypted"):
        vault.resolve_node("mallory", LlmLikeBlock, {"credentials": meta})
