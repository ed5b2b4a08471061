"""Users' credentials: one item each in the user's partition (PK `USER#<user_id>`, SK `CRED#<credential_id>`),
holding metadata in the clear (id, provider, type, title, host, base_url) and the secret only as an encrypted blob
(`agentflow.credentials.crypto.Envelope` attributes), which the store treats as opaque strings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from agentflow import keys
from agentflow.errors import Conflict
from agentflow.store.dynamo import Expr, Table, error_code, serialize

SEALED = "sealed"  # the attribute holding the encrypted blob


@dataclass(frozen=True)
class CredentialMeta:
    """What may be shown of a credential: everything but its secret."""

    credential_id: str
    user_id: str
    provider: str
    type: str
    title: str | None = None
    created_at: str | None = None
    host: str | None = None  # host_scoped only: where its headers may be sent
    base_url: str | None = None  # api_key only: the provider API's base URL, when not the SDK's default

    @staticmethod
    def from_item(item: Mapping[str, Any]) -> CredentialMeta:
        title, host, base_url = item.get("title"), item.get("host"), item.get("base_url")
        return CredentialMeta(
            credential_id=str(item["credential_id"]),
            user_id=str(item["user_id"]),
            provider=str(item["provider"]),
            type=str(item["credential_type"]),
            title=None if title is None else str(title),
            created_at=None if item.get("created_at") is None else str(item["created_at"]),
            host=None if host is None else str(host),
            base_url=None if base_url is None else str(base_url),  # None too on items stored before it existed
        )


@dataclass(frozen=True)
class SealedCredential:
    """A credential as stored: its metadata and its encrypted blob (never decrypted by the store)."""

    meta: CredentialMeta
    sealed: Mapping[str, str]


class CredentialItems(Table):
    def put_credential(self, meta: CredentialMeta, sealed: Mapping[str, str]) -> CredentialMeta:
        """Store a new credential, stamped with the store's clock; Conflict when its id is taken."""
        stored = replace(meta, created_at=self._now())
        attributes: dict[str, Any] = {
            "credential_id": stored.credential_id,
            "user_id": stored.user_id,
            "provider": stored.provider,
            "credential_type": stored.type,
            "title": stored.title,
            "host": stored.host,
            "base_url": stored.base_url,
            "created_at": stored.created_at,
            SEALED: dict(sealed),
        }
        item = self._key(keys.user_pk(stored.user_id), keys.credential_sk(stored.credential_id)) | {
            name: serialize(value) for name, value in attributes.items() if value is not None
        }
        try:
            self._call("put_item", TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(PK)")
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                raise Conflict(f"credential {stored.credential_id} already exists") from None
            raise
        return stored

    def get_credential(self, user_id: str, credential_id: str) -> SealedCredential | None:
        """The user's credential (None when there is none, or it is another user's: the key carries the user)."""
        item = self._get(keys.user_pk(user_id), keys.credential_sk(credential_id))
        if item is None or item.get("user_id") != user_id:
            return None
        sealed = item.get(SEALED) or {}
        return SealedCredential(CredentialMeta.from_item(item), {str(k): str(v) for k, v in sealed.items()})

    def list_credentials(self, user_id: str) -> list[CredentialMeta]:
        """The user's credentials, oldest first (metadata only)."""
        items = self._query(keys.user_pk(user_id), keys.CREDENTIAL_PREFIX)
        found = [CredentialMeta.from_item(i) for i in items if i.get("user_id") == user_id]
        return sorted(found, key=lambda m: (m.created_at or "", m.credential_id))

    def delete_credential(self, user_id: str, credential_id: str) -> bool:
        """Delete the user's credential; False when there was none (or it is not theirs)."""
        expr = Expr()
        condition = f"attribute_exists({expr.n('PK')}) AND {expr.n('user_id')} = {expr.v(user_id)}"
        return self._delete_if(keys.user_pk(user_id), keys.credential_sk(credential_id), condition, expr)
