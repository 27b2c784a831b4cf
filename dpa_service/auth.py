"""Who is calling: API keys, principals, the actor recorded in the audit log, and role guards.

An API key is `dpa_` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored, so a leaked
database holds no usable key; the first 12 characters are kept as a prefix that support can see. Revocation
is checked on every request (nothing is cached), so a revoked key is refused on its next use.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from sqlalchemy import bindparam, select

from dpa_service.db import Database, Scope
from dpa_service.exceptions import AuthenticationError, PermissionDenied
from dpa_service.users.models import STAFF_ROLES, ApiKey, Role, User

KEY_PREFIX = "dpa_"
PREFIX_LENGTH = 12


def generate_api_key() -> tuple[str, str, str]:
    """A new key as (key, prefix, sha256 hex)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, key[:PREFIX_LENGTH], hash_api_key(key)


def hash_api_key(key: str) -> str:
    # The key carries 256 random bits, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: Role
    email: str
    name: str
    api_key_id: uuid.UUID

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def scope(self) -> Scope:
        """Subscribers see their own tenant; staff work across tenants (README: "Staff across tenants")."""
        if self.tenant_id is not None:
            return Scope.tenant(self.tenant_id)
        return Scope(cross_tenant=True)


@dataclass(frozen=True)
class Actor:
    """Who did something and from where: what the audit log records."""

    user_id: uuid.UUID | None
    role: str | None
    tenant_id: uuid.UUID | None
    ip: str | None = None
    user_agent: str | None = None

    @classmethod
    def system(cls, via: str = "cli") -> Actor:
        return cls(user_id=None, role=None, tenant_id=None, ip=None, user_agent=f"dpa {via}")

    @classmethod
    def from_connection(cls, connection: ASGIConnection) -> Actor:
        principal: Principal = connection.user
        return cls(
            user_id=principal.user_id,
            role=principal.role.value,
            tenant_id=principal.tenant_id,
            ip=connection.client.host if connection.client else None,
            user_agent=(connection.headers.get("user-agent") or "")[:500] or None,
        )


# Built once: this runs on every request.
_PRINCIPAL_BY_KEY_HASH = (
    select(User.id, User.tenant_id, User.role, User.email, User.name, ApiKey.id)
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.key_hash == bindparam("key_hash"), ApiKey.revoked_at.is_(None))
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


class ApiKeyAuthenticationMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise AuthenticationError("Send an API key as 'Authorization: Bearer <key>'.")
        principal = await authenticate(connection.app.state.db, key.strip())
        return AuthenticationResult(user=principal, auth=principal.api_key_id)


def require_roles(*roles: Role):
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        if connection.user.role not in allowed:
            raise PermissionDenied(f"This action needs one of the roles: {', '.join(sorted(allowed))}.")

    guard.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    return guard


subscriber_only = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER)
subscriber_admin = require_roles(Role.OWNER, Role.ADMIN)
staff_only = require_roles(Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN)
platform_admin_only = require_roles(Role.PLATFORM_ADMIN)
