"""Invalidated mechanisms: recording that one stops being valid (e.g. the EU-US Privacy Shield, CJEU C-311/18,
16 July 2020), telling every relying tenant, and the report of who relies on it and who has moved."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import MechanismInvalidated, reactions
from dpa_service.core.exceptions import NotFound
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import decode_id_cursor, encode_cursor
from dpa_service.notifications.outbox import enqueue_many, first_queued_at
from dpa_service.tenants import services as tenants
from dpa_service.transfers.models import (
    AffectedReport,
    AffectedTenant,
    InvalidationCreate,
    InvalidationPublic,
    MechanismInvalidation,
    Transfer,
)
from dpa_service.transfers.services import invalidation_dates

INVALIDATED_TOPIC = "transfer.mechanism_invalidated"


@dataclass(frozen=True)
class AffectedPage:
    invalid_from: date | None
    items: list[dict[str, Any]]
    more: bool
    tenants: int


async def record_invalidation(db: Database, actor: Actor, code: str, data: InvalidationCreate) -> InvalidationPublic:
    """Record that `code` stops being valid from a date; notify every tenant relying on it, once each."""
    if code not in registry.mechanisms():
        raise NotFound("Unknown transfer mechanism.")
    async with db.transaction(Scope.system()) as session:
        invalidation = await _record(session, actor, code, data)
        # Other domains react in this transaction (contracts relying on the mechanism turn `outdated`); transfers
        # imports none of them.
        await reactions.publish(db, MechanismInvalidated(actor, code, invalidation.invalid_from, invalidation.id))
        return InvalidationPublic.model_validate(invalidation, from_attributes=True)


async def _record(session: AsyncSession, actor: Actor, code: str, data: InvalidationCreate) -> MechanismInvalidation:
    # Count first, so the record (append-only) is written once, complete.
    affected = (
        await session.execute(
            select(col(Transfer.tenant_id), func.count())
            .where(
                col(Transfer.mechanism) == code,
                (col(Transfer.end_date).is_(None)) | (col(Transfer.end_date) >= data.invalid_from),
            )
            .group_by(col(Transfer.tenant_id))
        )
    ).all()
    invalidation = MechanismInvalidation(
        id=new_id(),
        code=code,
        invalid_from=data.invalid_from,
        reason=data.reason,
        legal_reference=data.legal_reference,
        recorded_by=actor.user_id,
        affected_tenants=len(affected),
        affected_transfers=sum(count for _, count in affected),
    )
    session.add(invalidation)
    await session.flush()
    payload = {
        "mechanism": code,
        "name": registry.mechanisms()[code].name,
        "invalid_from": data.invalid_from.isoformat(),
        "reason": data.reason,
        "legal_reference": data.legal_reference,
        "invalidation_id": str(invalidation.id),
    }
    await enqueue_many(
        session,
        INVALIDATED_TOPIC,
        (
            (tenant_id, f"{INVALIDATED_TOPIC}:{invalidation.id}:{tenant_id}", {**payload, "transfers": count})
            for tenant_id, count in affected
        ),
    )
    await audit.record(
        session,
        actor,
        "transfer_mechanism.invalidated",
        "transfer_mechanism",
        code,
        tenant_id=None,
        data={
            **payload,
            "affected_tenants": invalidation.affected_tenants,
            "affected_transfers": invalidation.affected_transfers,
        },
    )
    return invalidation


async def _affected(
    db: Database, session: AsyncSession, code: str, *, after: uuid.UUID | None, limit: int
) -> AffectedPage:
    """Tenants and transfers relying on `code` from its invalidation date (or today), with remediation status."""
    mechanism = registry.mechanisms().get(code)
    if mechanism is None:
        raise NotFound("Unknown transfer mechanism.")
    known = await invalidation_dates(session)
    cut = min([d for d in (known.get(code), mechanism.valid_until) if d is not None], default=None)
    since = cut or utcnow().date()
    relying = (col(Transfer.mechanism) == code) & (
        (col(Transfer.end_date).is_(None)) | (col(Transfer.end_date) >= since)
    )
    tenants_query = (
        select(col(Transfer.tenant_id))
        .where(relying)
        .group_by(col(Transfer.tenant_id))
        .order_by(col(Transfer.tenant_id))
    )
    if after:
        tenants_query = tenants_query.having(col(Transfer.tenant_id) > after)
    tenant_ids = list((await session.execute(tenants_query.limit(limit + 1))).scalars())
    page = tenant_ids[:limit]
    transfers = (
        (await session.execute(select(Transfer).where(relying, col(Transfer.tenant_id).in_(page)))).scalars().all()
    )
    # A transfer is remediated when it ended before the cut, or a transfer to the same importer and country
    # under another mechanism has taken over.
    others = (
        await session.execute(
            select(col(Transfer.tenant_id), col(Transfer.importer), col(Transfer.destination_country)).where(
                col(Transfer.tenant_id).in_(page),
                col(Transfer.mechanism) != code,
                (col(Transfer.end_date).is_(None)) | (col(Transfer.end_date) >= since),
            )
        )
    ).all()
    replaced = {(t, i, c) for t, i, c in others}
    notified = await first_queued_at(session, INVALIDATED_TOPIC, page, where=("mechanism", code))
    names = await tenants.names(db, Scope.system(), page)
    by_tenant: dict[uuid.UUID, list[dict[str, Any]]] = defaultdict(list)
    for transfer in transfers:
        if transfer.end_date is not None and cut is not None and transfer.end_date < cut:
            status = "ended"
        elif (transfer.tenant_id, transfer.importer, transfer.destination_country) in replaced:
            status = "replaced"
        else:
            status = "open"
        by_tenant[transfer.tenant_id].append(
            {
                "transfer_id": transfer.id,
                "importer": transfer.importer,
                "destination_country": transfer.destination_country,
                "end_date": transfer.end_date,
                "remediation": status,
            }
        )
    items = [
        {
            "tenant_id": tid,
            "tenant_name": names.get(tid, ""),
            "notified_at": notified.get(tid),
            "remediation": "open" if any(t["remediation"] == "open" for t in by_tenant[tid]) else "remediated",
            "transfers": by_tenant[tid],
        }
        for tid in page
    ]
    totals = (await session.execute(select(func.count(func.distinct(Transfer.tenant_id))).where(relying))).scalar_one()
    return AffectedPage(cut, items, len(tenant_ids) > limit, totals)


async def affected(db: Database, principal: Principal, code: str, *, cursor: str | None, limit: int) -> AffectedReport:
    """Tenants and transfers relying on `code` from its invalidation date (or today), with remediation status."""
    async with db.transaction(principal.scope, write=False) as session:
        result = await _affected(db, session, code, after=decode_id_cursor(cursor), limit=limit)
    return AffectedReport(
        code=code,
        invalid_from=result.invalid_from,
        items=[AffectedTenant.model_validate(item) for item in result.items],
        tenants=result.tenants,
        open=sum(item["remediation"] == "open" for item in result.items),
        next_cursor=encode_cursor(str(result.items[-1]["tenant_id"])) if result.more and result.items else None,
    )
