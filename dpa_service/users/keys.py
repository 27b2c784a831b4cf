"""API keys: how they look, how they are stored, and the one query that turns a presented key into a principal.

A key is `dpa_` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, so a leaked database holds
no usable key; the first 12 characters are kept as a prefix that support can see.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import bindparam, select
from sqlmodel import col

from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import AuthenticationError
from dpa_service.core.identity import Principal, Role
from dpa_service.users.models import ApiKey, User

KEY_PREFIX = "dpa_"
PREFIX_LENGTH = 12


def generate_api_key() -> tuple[str, str, str]:
    """A new key as (key, prefix, sha256 hex)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:PREFIX_LENGTH], hash_api_key(key)


def hash_api_key(key: str) -> str:
    # The key carries 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


# Built once: this runs on every request.
_PRINCIPAL_BY_KEY_HASH = (
    select(col(User.id), col(User.tenant_id), col(User.role), col(User.email), col(User.name), col(ApiKey.id))
    .join(User, col(User.id) == ApiKey.user_id)
    .where(col(ApiKey.key_hash) == bindparam("key_hash"), col(ApiKey.revoked_at).is_(None))
)


async def authenticate(db: Database, key: str) -> Principal:
    """Resolve a presented key to its principal with one indexed select, or raise AuthenticationError."""
    if not key.startswith(KEY_PREFIX) or len(key) > 100:
        raise AuthenticationError("The API key is not valid.")
    # Before a principal is known there is no tenant: this one lookup runs in the system scope.
    async with db.read_connection(Scope.system()) as conn:
        row = (await conn.execute(_PRINCIPAL_BY_KEY_HASH, {"key_hash": hash_api_key(key)})).one_or_none()
    if row is None:
        raise AuthenticationError("The API key is not valid or has been revoked.")
    user_id, tenant_id, role, email, name, key_id = row
    return Principal(user_id, tenant_id, Role(role), email, name, key_id)
