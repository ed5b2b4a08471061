"""API keys: random, shown once, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

from agentflow.store import Store

KEY_PREFIX = "af_"
USER_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(store: Store, user_id: str, name: str = "default") -> str:
    """Create a key for `user_id`; the key itself is returned once and never stored."""
    if not USER_ID_PATTERN.match(user_id):
        raise ValueError(
            f"invalid user {user_id!r}: use 1-64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    store.put_api_key(hash_key(key), user_id, name)
    return key


def user_for_key(store: Store, key: str | None) -> str | None:
    """The user a key belongs to, or None when it is missing, unknown or revoked."""
    if not key or len(key) > 256:
        return None
    item = store.get_api_key(hash_key(key))
    if item is None or item.get("status") != "active":
        return None
    return str(item["user_id"])
