"""Subscribers (tenants) and their profiles; each public function is one transaction (see core.db)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import FieldError, InvalidInput, NotFound
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.tenants.models import (
    REQUIRED_PROFILE_FIELDS,
    Tenant,
    TenantBase,
    TenantCreate,
    TenantCreated,
    TenantPublic,
    TenantUpdate,
)
from dpa_service.users import services as users


def public(tenant: Tenant) -> TenantPublic:
    return TenantPublic.model_validate(tenant, from_attributes=True)


async def create_tenant(
    db: Database, actor: Actor, data: TenantCreate, confirmations: users.ConfirmationMails | None = None
) -> TenantCreated:
    """A new Subscriber, its first user (the `owner`) and that user's API key; with `confirmations`, a link to
    confirm the owner's address. An `admin_email` another account uses is 409 naming it."""
    async with db.transaction(Scope.system()) as session:
        tenant = Tenant.model_validate(data.model_dump(include=set(TenantBase.model_fields)))
        session.add(tenant)
        await session.flush()
        owner = await users.add_user(
            db, Scope.system(), tenant_id=tenant.id, email=data.admin_email, name=data.admin_name, role=Role.OWNER,
            confirmations=confirmations, email_field="admin_email",
        )  # fmt: skip
        await audit.record(
            session,
            actor,
            "tenant.created",
            "tenant",
            tenant.id,
            tenant_id=tenant.id,
            data={
                "name": tenant.name,
                "legal_name": tenant.legal_name,
                "country": tenant.country,
                "owner_user_id": str(owner.id),
                "owner_email": owner.email,
                "api_key_prefix": owner.api_key_prefix,
                "owner_verification_sent": confirmations is not None,
            },
        )
        return TenantCreated(**public(tenant).model_dump(), admin_user_id=owner.id, admin_api_key=owner.api_key)


async def _tenant(session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False) -> Tenant:
    tenant = await session.get(Tenant, tenant_id, with_for_update=lock)
    if tenant is None:
        raise NotFound("Tenant not found.")
    return tenant


async def get_tenant(db: Database, scope: Scope, tenant_id: uuid.UUID) -> TenantPublic:
    """A tenant's profile (another tenant's is not found: row-level scope)."""
    async with db.transaction(scope, write=False) as session:
        return public(await _tenant(session, tenant_id))


async def own_tenant(db: Database, principal: Principal) -> TenantPublic:
    if principal.tenant_id is None:
        raise NotFound("Tenant not found.")
    return await get_tenant(db, principal.scope, principal.tenant_id)


async def list_tenants(
    db: Database, principal: Principal, *, cursor: str | None, limit: int, name: str | None = None
) -> Page[TenantPublic]:
    """Tenants oldest first; `name` keeps those whose name or legal name contains it (any case)."""
    query = select(Tenant).order_by(col(Tenant.id)).limit(limit + 1)
    if name and name.strip():
        text = name.strip()
        query = query.where(
            or_(
                col(Tenant.name).icontains(text, autoescape=True),
                col(Tenant.legal_name).icontains(text, autoescape=True),
            )
        )
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Tenant.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, public, lambda t: str(t.id))


async def update_profile(db: Database, actor: Actor, principal: Principal, patch: TenantUpdate) -> TenantPublic:
    """Apply a JSON merge patch to the caller's profile; every change is audited with its old and new value."""
    cleared = [f for f in REQUIRED_PROFILE_FIELDS if f in patch.model_fields_set and getattr(patch, f) is None]
    if cleared:
        raise InvalidInput(
            "Required profile fields cannot be removed.",
            [FieldError(f, "is required and cannot be null") for f in cleared],
        )
    if principal.tenant_id is None:
        raise NotFound("Tenant not found.")
    async with db.transaction(principal.scope) as session:
        tenant = await _tenant(session, principal.tenant_id, lock=True)
        changes: dict[str, Any] = {}
        for field in sorted(patch.model_fields_set):
            old, new = getattr(tenant, field), getattr(patch, field)
            if old != new:
                changes[field] = {"from": old, "to": new}
                setattr(tenant, field, new)
        if changes:
            tenant.updated_at = utcnow()
            await audit.record(
                session,
                actor,
                "tenant.profile_updated",
                "tenant",
                tenant.id,
                tenant_id=tenant.id,
                data={"changes": changes},
            )
        return public(tenant)


async def names(db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of the given tenants (for reports)."""
    if not tenant_ids:
        return {}
    async with db.transaction(scope, write=False) as session:
        rows = await session.execute(select(col(Tenant.id), col(Tenant.name)).where(col(Tenant.id).in_(tenant_ids)))
        return {tenant_id: name for tenant_id, name in rows.all()}


async def countries(db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each given tenant's country of establishment (ISO code), for those that exist: fan-outs check their
    recipients with it and count Business Days in it."""
    if not tenant_ids:
        return {}
    async with db.transaction(scope, write=False) as session:
        rows = await session.execute(select(col(Tenant.id), col(Tenant.country)).where(col(Tenant.id).in_(tenant_ids)))
        return {tenant_id: country for tenant_id, country in rows.all()}


async def all_ids(db: Database) -> list[uuid.UUID]:
    """Every tenant's id, oldest first (the CLI's audit verification walks them)."""
    async with db.transaction(Scope.system(), write=False) as session:
        return list((await session.execute(select(col(Tenant.id)).order_by(col(Tenant.id)))).scalars())


async def profiles(db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, TenantPublic]:
    """The profiles of the given tenants, in one query (the records of processing export reads them in batches)."""
    if not tenant_ids:
        return {}
    async with db.transaction(scope, write=False) as session:
        rows = await session.execute(select(Tenant).where(col(Tenant.id).in_(list(tenant_ids))))
        return {tenant.id: public(tenant) for tenant in rows.scalars()}
