"""Subscribers (tenants) and their profiles. Callers pass a session inside one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import FieldError, InvalidInput, NotFound
from dpa_service.core.identity import Actor, Role
from dpa_service.tenants.models import (
    REQUIRED_PROFILE_FIELDS,
    Tenant,
    TenantBase,
    TenantCreate,
    TenantCreated,
    TenantPublic,
    TenantUpdate,
)
from dpa_service.users.services import add_user


async def create_tenant(session: AsyncSession, actor: Actor, data: TenantCreate) -> TenantCreated:
    """A new Subscriber, its first user (the `owner`) and that user's API key."""
    tenant = Tenant.model_validate(data.model_dump(include=set(TenantBase.model_fields)))
    session.add(tenant)
    await session.flush()
    owner, api_key, key = await add_user(
        session, tenant_id=tenant.id, email=data.admin_email, name=data.admin_name, role=Role.OWNER
    )
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
            "api_key_prefix": api_key.prefix,
        },
    )
    return TenantCreated(
        **TenantPublic.model_validate(tenant, from_attributes=True).model_dump(),
        admin_user_id=owner.id,
        admin_api_key=key,
    )


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("Tenant not found.")
    return tenant


async def list_tenants(session: AsyncSession, *, after: uuid.UUID | None, limit: int) -> Sequence[Tenant]:
    query = select(Tenant).order_by(Tenant.id).limit(limit + 1)
    if after is not None:
        query = query.where(Tenant.id > after)
    return (await session.execute(query)).scalars().all()


async def update_profile(session: AsyncSession, actor: Actor, tenant_id: uuid.UUID, patch: TenantUpdate) -> Tenant:
    """Apply a JSON merge patch to the profile; every change is audited with its old and new value."""
    cleared = [f for f in REQUIRED_PROFILE_FIELDS if f in patch.model_fields_set and getattr(patch, f) is None]
    if cleared:
        raise InvalidInput(
            "Required profile fields cannot be removed.",
            [FieldError(f, "is required and cannot be null") for f in cleared],
        )
    tenant = await session.get(Tenant, tenant_id, with_for_update=True)
    if tenant is None:
        raise NotFound("Tenant not found.")
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
    return tenant


async def names(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names of the given tenants (for reports)."""
    if not tenant_ids:
        return {}
    rows = await session.execute(select(Tenant.id, Tenant.name).where(Tenant.id.in_(tenant_ids)))
    return {tenant_id: name for tenant_id, name in rows.all()}
