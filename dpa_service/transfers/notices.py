"""Prior written notice of a transfer outside the EU/EEA (obligation iv of the standard DPA's clause 9)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import FieldError, InvalidInput, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.transfers.models import TransferNotice, TransferNoticeCreate, TransferNoticePublic


async def create_notice(
    db: Database, actor: Actor, principal: Principal, data: TransferNoticeCreate
) -> TransferNoticePublic:
    tenant_id = principal.tenant_id
    if tenant_id is None:
        raise PermissionDenied("Transfer notices are given by a Subscriber.")
    errors = []
    country = registry.country(data.destination_country)
    if country is not None and country.eea:
        errors.append(FieldError("destination_country", f"{country.name} is in the EU/EEA: no prior notice is needed"))
    if data.planned_date < utcnow().date():
        errors.append(FieldError("planned_date", "is in the past: notice must be given before the transfer"))
    if errors:
        raise InvalidInput("The notice cannot be accepted.", errors)
    async with db.transaction(principal.scope) as session:
        return await _record(session, actor, principal, tenant_id, data)


async def _record(
    session: AsyncSession, actor: Actor, principal: Principal, tenant_id: uuid.UUID, data: TransferNoticeCreate
) -> TransferNoticePublic:
    notice = TransferNotice(tenant_id=tenant_id, created_by=principal.user_id, **data.model_dump(mode="python"))
    session.add(notice)
    await session.flush()
    await audit.record(
        session,
        actor,
        "transfer_notice.given",
        "transfer_notice",
        notice.id,
        tenant_id=notice.tenant_id,
        data={
            "destination": notice.destination_country,
            "recipient": notice.recipient,
            "mechanism": notice.mechanism,
            "planned_date": notice.planned_date.isoformat(),
        },
    )
    return TransferNoticePublic.model_validate(notice, from_attributes=True)


async def list_notices(
    db: Database, principal: Principal, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[TransferNoticePublic]:
    query = select(TransferNotice).order_by(col(TransferNotice.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(TransferNotice.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(TransferNotice.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
    return page_of(
        rows, limit, lambda n: TransferNoticePublic.model_validate(n, from_attributes=True), lambda n: str(n.id)
    )
