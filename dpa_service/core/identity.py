"""Who is calling and what they may do: roles, the authenticated principal, and the actor the audit log records.

Framework-free: HTTP turns a request into a `Principal` (dpa_service.http.auth), the CLI and scheduled jobs act as
`Actor.system(...)`, and services take both as plain values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from dpa_service.core.db import Scope


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MEMBER = "member"
    LEGAL = "legal"
    SALES = "sales"
    PLATFORM_ADMIN = "platform_admin"


STAFF_ROLES = frozenset({Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN})


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    tenant_id: uuid.UUID | None
    role: Role
    email: str
    name: str
    api_key_id: uuid.UUID | None
    """The key the caller presented, or that a web session was opened with; None for an e-mail sign-in."""

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
    def of(cls, principal: Principal, *, ip: str | None = None, user_agent: str | None = None) -> Actor:
        return cls(
            user_id=principal.user_id,
            role=principal.role.value,
            tenant_id=principal.tenant_id,
            ip=ip,
            user_agent=(user_agent or "")[:500] or None,
        )
