"""What other domains read of each tenant's DPAs, a page or every tenant at a time, in one query each: where a
tenant stands (sales' report), the template of its executed DPA (inquiry fan-outs), its executed DPA itself (the
records of processing export)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements.models import Agreement, AgreementPublic, AgreementStatus
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Principal


@dataclass(frozen=True)
class TenantDpa:
    """Where a tenant stands: `executed` (with the executed agreement), `in_progress` (one on its way) or `none`."""

    status: str
    agreement_id: uuid.UUID | None = None
    template: str | None = None


_IN_PROGRESS = {s.value for s in AgreementStatus} - {"executed", "voided", "superseded"}


async def dpa_status(db: Database, principal: Principal, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, TenantDpa]:
    """Each tenant's DPA status for staff reports (sales), in one query for the whole page of tenants."""
    wanted = [AgreementStatus.EXECUTED.value, *_IN_PROGRESS]
    query = (
        select(
            col(Agreement.tenant_id),
            col(Agreement.id),
            col(Agreement.status),
            col(Agreement.template_key),
            col(Agreement.template_version),
        )
        .where(col(Agreement.tenant_id).in_(tenant_ids), col(Agreement.status).in_(wanted))
        .order_by(col(Agreement.id))
    )
    found = {tenant_id: TenantDpa("none") for tenant_id in tenant_ids}
    async with db.transaction(principal.scope, write=False) as session:
        for tenant_id, agreement_id, status, key, number in (await session.execute(query)).all():
            template = f"{key} v{number}"
            if status == AgreementStatus.EXECUTED:
                found[tenant_id] = TenantDpa("executed", agreement_id, template)
            elif found[tenant_id].status == "none":
                found[tenant_id] = TenantDpa("in_progress", agreement_id, template)
    return found


async def executed_templates(
    db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID] | None = None
) -> dict[uuid.UUID, uuid.UUID]:
    """The template version of each tenant's executed (current) DPA, by tenant: every tenant that has one, or only
    those of `tenant_ids`. One query, for fan-outs to "every tenant with an executed DPA"."""
    query = select(col(Agreement.tenant_id), col(Agreement.template_id)).where(
        col(Agreement.status) == AgreementStatus.EXECUTED.value
    )
    if tenant_ids is not None:
        query = query.where(col(Agreement.tenant_id).in_(tenant_ids))
    async with db.transaction(scope, write=False) as session:
        return {tenant_id: template_id for tenant_id, template_id in (await session.execute(query)).all()}


async def executed_agreements(
    db: Database, scope: Scope, *, tenant_id: uuid.UUID | None, after_tenant: uuid.UUID | None, limit: int
) -> list[AgreementPublic]:
    """The executed (current) DPA of each tenant, ordered by tenant id, at most `limit`, from the tenant after
    `after_tenant` (keyset paging: the records of processing export walks every tenant's this way). Executing a DPA
    supersedes the tenant's previous one, so there is at most one per tenant; `tenant_id` narrows to one tenant."""
    query = (
        select(Agreement)
        .where(col(Agreement.status) == AgreementStatus.EXECUTED.value)
        .order_by(col(Agreement.tenant_id), col(Agreement.executed_at).desc())
        .limit(limit)
    )
    if tenant_id is not None:
        query = query.where(col(Agreement.tenant_id) == tenant_id)
    if after_tenant is not None:
        query = query.where(col(Agreement.tenant_id) > after_tenant)
    async with db.transaction(scope, write=False) as session:
        rows = (await session.execute(query)).scalars().all()
    return [AgreementPublic.model_validate(agreement, from_attributes=True) for agreement in rows]
