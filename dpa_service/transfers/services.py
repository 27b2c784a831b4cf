"""The transfer register: per-tenant transfers, as-of assessment, invalidations and Subscribers' notices.

No transfer is ever deleted: it is end-dated, and every change is audited with its old and new values.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import tenant_of
from dpa_service.core.exceptions import FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.notifications.outbox import OutboxMessage, enqueue_many
from dpa_service.tenants import services as tenants
from dpa_service.transfers.assessment import TransferFacts, assess
from dpa_service.transfers.models import (
    AssessmentItem,
    ImporterKind,
    InvalidationCreate,
    MechanismInvalidation,
    Transfer,
    TransferCreate,
    TransferNotice,
    TransferNoticeCreate,
    TransferUpdate,
)

INVALIDATED_TOPIC = "transfer.mechanism_invalidated"


@dataclass(frozen=True)
class AffectedPage:
    invalid_from: date | None
    items: list[dict[str, Any]]
    more: bool
    tenants: int


def facts_of(transfer: Transfer) -> TransferFacts:
    return TransferFacts(
        transfer.destination_country,
        transfer.mechanism,
        transfer.start_date,
        transfer.end_date,
        transfer.importer_certified,
    )


async def create_transfer(session: AsyncSession, actor: Actor, principal: Principal, data: TransferCreate) -> Transfer:
    if principal.tenant_id is None:
        raise PermissionDenied("Transfers are recorded by the Subscriber that makes them.")
    transfer = Transfer(
        tenant_id=principal.tenant_id,
        created_by=principal.user_id,
        **data.model_dump(mode="python"),
    )
    session.add(transfer)
    await session.flush()
    await audit.record(
        session,
        actor,
        "transfer.created",
        "transfer",
        transfer.id,
        tenant_id=transfer.tenant_id,
        data={
            "importer": transfer.importer,
            "destination": transfer.destination_country,
            "mechanism": transfer.mechanism,
            "start_date": transfer.start_date.isoformat(),
        },
    )
    return transfer


async def get_transfer(session: AsyncSession, transfer_id: uuid.UUID, *, lock: bool = False) -> Transfer:
    query = select(Transfer).where(Transfer.id == transfer_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(Transfer.tenant_id == tenant)
    transfer = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if transfer is None:
        raise NotFound("Transfer not found.")
    return transfer


async def list_transfers(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, mechanism: str | None, after: uuid.UUID | None, limit: int
) -> Sequence[Transfer]:
    query = select(Transfer).order_by(Transfer.id).limit(limit + 1)
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(Transfer.tenant_id == tenant)
    if mechanism:
        query = query.where(Transfer.mechanism == mechanism)
    if after:
        query = query.where(Transfer.id > after)
    return (await session.execute(query)).scalars().all()


async def update_transfer(
    session: AsyncSession, actor: Actor, transfer_id: uuid.UUID, patch: TransferUpdate
) -> Transfer:
    transfer = await get_transfer(session, transfer_id, lock=True)
    changes: dict[str, Any] = {}
    for field in sorted(patch.model_fields_set):
        new = getattr(patch, field)
        if new is None and field in {"mechanism", "data_categories"}:
            raise InvalidInput.field(field, "cannot be removed")
        old = getattr(transfer, field)
        if old != new:
            changes[field] = {
                "from": old.isoformat() if isinstance(old, date) else old,
                "to": new.isoformat() if isinstance(new, date) else new,
            }
            setattr(transfer, field, new)
    if transfer.end_date is not None and transfer.end_date < transfer.start_date:
        raise InvalidInput.field("end_date", "must not be before start_date")
    if changes:
        transfer.updated_at = utcnow()
        await audit.record(
            session,
            actor,
            "transfer.updated",
            "transfer",
            transfer.id,
            tenant_id=transfer.tenant_id,
            data={"changes": changes},
        )
    return transfer


async def invalidations(session: AsyncSession) -> dict[str, date]:
    """The earliest recorded invalidation date of each mechanism."""
    rows = await session.execute(
        select(MechanismInvalidation.code, func.min(MechanismInvalidation.invalid_from)).group_by(
            MechanismInvalidation.code
        )
    )
    return {code: day for code, day in rows.all()}


async def assessment(
    session: AsyncSession, as_of: date, *, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> Sequence[AssessmentItem]:
    """Every transfer active on `as_of`, with its verdict (limit + 1 rows: the caller pages)."""
    query = (
        select(Transfer)
        .where(Transfer.start_date <= as_of, (Transfer.end_date.is_(None)) | (Transfer.end_date >= as_of))
        .order_by(Transfer.id)
        .limit(limit + 1)
    )
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(Transfer.tenant_id == tenant)
    if after:
        query = query.where(Transfer.id > after)
    known = await invalidations(session)
    items = []
    for transfer in (await session.execute(query)).scalars():
        verdict = assess(facts_of(transfer), as_of, known)
        items.append(
            AssessmentItem(
                transfer_id=transfer.id,
                tenant_id=transfer.tenant_id,
                importer=transfer.importer,
                destination_country=transfer.destination_country,
                mechanism=transfer.mechanism,
                valid=verdict.valid,
                reason=verdict.reason,
                suggested_mechanisms=list(verdict.suggested),
            )
        )
    return items


async def record_invalidation(
    session: AsyncSession, actor: Actor, code: str, data: InvalidationCreate
) -> MechanismInvalidation:
    """Record that `code` stops being valid from a date; notify every tenant relying on it, once each."""
    if code not in registry.mechanisms():
        raise NotFound("Unknown transfer mechanism.")
    # Count first, so the record (append-only) is written once, complete.
    affected = (
        await session.execute(
            select(Transfer.tenant_id, func.count())
            .where(Transfer.mechanism == code, (Transfer.end_date.is_(None)) | (Transfer.end_date >= data.invalid_from))
            .group_by(Transfer.tenant_id)
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


async def affected(session: AsyncSession, code: str, *, after: uuid.UUID | None, limit: int) -> AffectedPage:
    """Tenants and transfers relying on `code` from its invalidation date (or today), with remediation status."""
    mechanism = registry.mechanisms().get(code)
    if mechanism is None:
        raise NotFound("Unknown transfer mechanism.")
    known = await invalidations(session)
    cut = min([d for d in (known.get(code), mechanism.valid_until) if d is not None], default=None)
    since = cut or utcnow().date()
    relying = (Transfer.mechanism == code) & ((Transfer.end_date.is_(None)) | (Transfer.end_date >= since))
    tenants_query = select(Transfer.tenant_id).where(relying).group_by(Transfer.tenant_id).order_by(Transfer.tenant_id)
    if after:
        tenants_query = tenants_query.having(Transfer.tenant_id > after)
    tenant_ids = list((await session.execute(tenants_query.limit(limit + 1))).scalars())
    page = tenant_ids[:limit]
    transfers = (await session.execute(select(Transfer).where(relying, Transfer.tenant_id.in_(page)))).scalars().all()
    # A transfer is remediated when it ended before the cut, or a transfer to the same importer and country
    # under another mechanism has taken over.
    others = (
        await session.execute(
            select(Transfer.tenant_id, Transfer.importer, Transfer.destination_country).where(
                Transfer.tenant_id.in_(page),
                Transfer.mechanism != code,
                (Transfer.end_date.is_(None)) | (Transfer.end_date >= since),
            )
        )
    ).all()
    replaced = {(t, i, c) for t, i, c in others}
    notified = dict(
        (
            await session.execute(
                select(OutboxMessage.tenant_id, func.min(OutboxMessage.created_at))
                .where(
                    OutboxMessage.topic == INVALIDATED_TOPIC,
                    OutboxMessage.tenant_id.in_(page),
                    OutboxMessage.payload["mechanism"].as_string() == code,
                )
                .group_by(OutboxMessage.tenant_id)
            )
        ).all()
    )
    names = await tenants.names(session, page)
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


async def record_from_dpa(
    session: AsyncSession,
    actor: Actor,
    *,
    tenant_id: uuid.UUID,
    agreement_id: uuid.UUID,
    effective: date,
    subprocessors: list[dict[str, Any]],
    superseded: Sequence[uuid.UUID],
) -> int:
    """The transfers an executed DPA implies: one per authorized sub-processor location outside the EU/EEA.

    The transfers of the agreements it supersedes end the day before it takes effect.
    """
    if superseded:
        for old in (
            await session.execute(
                select(Transfer).where(
                    Transfer.tenant_id == tenant_id, Transfer.agreement_id.in_(superseded), Transfer.end_date.is_(None)
                )
            )
        ).scalars():
            old.end_date, old.updated_at = max(old.start_date, effective - timedelta(days=1)), utcnow()
    created = 0
    for item in subprocessors:
        code = item.get("transfer_mechanism")
        mechanism = registry.mechanisms().get(code or "")
        for location in item.get("locations", []):
            country = registry.country(location)
            if country is None or country.eea or mechanism is None:
                continue
            session.add(
                Transfer(
                    tenant_id=tenant_id,
                    importer=item.get("entity", item["name"]),
                    importer_kind=ImporterKind.SUBPROCESSOR.value,
                    destination_country=location,
                    data_categories=list(item.get("data_categories", [])),
                    mechanism=code,
                    importer_certified=True if mechanism.requires_certified_importer else None,
                    start_date=effective,
                    source="dpa",
                    agreement_id=agreement_id,
                )
            )
            created += 1
    if created or superseded:
        await audit.record(
            session,
            actor,
            "transfer.recorded_from_dpa",
            "agreement",
            agreement_id,
            tenant_id=tenant_id,
            data={"created": created, "ended_from_superseded": [str(a) for a in superseded]},
        )
    return created


async def create_notice(
    session: AsyncSession, actor: Actor, principal: Principal, data: TransferNoticeCreate
) -> TransferNotice:
    if principal.tenant_id is None:
        raise PermissionDenied("Transfer notices are given by a Subscriber.")
    errors = []
    country = registry.country(data.destination_country)
    if country is not None and country.eea:
        errors.append(FieldError("destination_country", f"{country.name} is in the EU/EEA: no prior notice is needed"))
    if data.planned_date < utcnow().date():
        errors.append(FieldError("planned_date", "is in the past: notice must be given before the transfer"))
    if errors:
        raise InvalidInput("The notice cannot be accepted.", errors)
    notice = TransferNotice(
        tenant_id=principal.tenant_id, created_by=principal.user_id, **data.model_dump(mode="python")
    )
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
    return notice


async def list_notices(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, after: uuid.UUID | None, limit: int
) -> Sequence[TransferNotice]:
    query = select(TransferNotice).order_by(TransferNotice.id).limit(limit + 1)
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(TransferNotice.tenant_id == tenant)
    if after:
        query = query.where(TransferNotice.id > after)
    return (await session.execute(query)).scalars().all()
