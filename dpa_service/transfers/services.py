"""The transfer register: per-tenant transfers, the mechanism catalogue and the as-of assessment.

No transfer is ever deleted: it is end-dated, and every change is audited with its old and new values. The
modules beside this one keep invalidations (`invalidations`), Subscribers' prior notices (`notices`) and what an
executed DPA implies (`reactions`); `listing_problem` is what the sub-processor list checks a new entry with.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.exceptions import InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.transfers.assessment import TransferFacts, assess, listing_problem
from dpa_service.transfers.models import (
    AssessmentItem,
    ImporterKind,
    MechanismInvalidation,
    MechanismPublic,
    Transfer,
    TransferCreate,
    TransferNotice,
    TransferPublic,
    TransferUpdate,
)

__all__ = ["listing_problem"]


def public(transfer: Any) -> TransferPublic:
    return TransferPublic.model_validate(transfer, from_attributes=True)


def facts_of(transfer: Transfer) -> TransferFacts:
    return TransferFacts(
        transfer.destination_country,
        transfer.mechanism,
        transfer.start_date,
        transfer.end_date,
        transfer.importer_certified,
        origin=transfer.origin or "eea",
        instrument_date=transfer.instrument_date,
        importer=transfer.importer,
        tia_reference=transfer.tia_reference,
        certification=transfer.importer_certification,
        systematic=transfer.importer_kind in {ImporterKind.PROCESSOR.value, ImporterKind.SUBPROCESSOR.value},
    )


async def create_transfer(db: Database, actor: Actor, principal: Principal, data: TransferCreate) -> TransferPublic:
    if principal.tenant_id is None:
        raise PermissionDenied("Transfers are recorded by the Subscriber that makes them.")
    async with db.transaction(principal.scope) as session:
        values = data.model_dump(mode="python", exclude={"importer_certification"})
        values["instrument_date"] = data.instrument_date or data.start_date
        certification = data.importer_certification
        transfer = Transfer(
            tenant_id=principal.tenant_id,
            created_by=principal.user_id,
            importer_certification=certification.model_dump(mode="json") if certification else None,
            **values,
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
                "origin": transfer.origin,
                "start_date": transfer.start_date.isoformat(),
                "instrument_date": transfer.instrument_date.isoformat() if transfer.instrument_date else None,
                "importer_certification": transfer.importer_certification,
            },
        )
        return public(transfer)


async def _transfer(session: AsyncSession, transfer_id: uuid.UUID, *, lock: bool = False) -> Transfer:
    query = select(Transfer).where(col(Transfer.id) == transfer_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(Transfer.tenant_id) == tenant)
    transfer = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if transfer is None:
        raise NotFound("Transfer not found.")
    return transfer


async def get_transfer(db: Database, principal: Principal, transfer_id: uuid.UUID) -> TransferPublic:
    async with db.transaction(principal.scope, write=False) as session:
        return public(await _transfer(session, transfer_id))


async def list_transfers(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    mechanism: str | None,
    cursor: str | None,
    limit: int,
) -> Page[TransferPublic]:
    query = select(Transfer).order_by(col(Transfer.id)).limit(limit + 1)
    if mechanism:
        query = query.where(col(Transfer.mechanism) == mechanism)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Transfer.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(Transfer.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, public, lambda t: str(t.id))


async def update_transfer(
    db: Database, actor: Actor, principal: Principal, transfer_id: uuid.UUID, patch: TransferUpdate
) -> TransferPublic:
    async with db.transaction(principal.scope) as session:
        transfer = await _transfer(session, transfer_id, lock=True)
        await _apply_patch(session, actor, transfer, patch)
        return public(transfer)


async def _apply_patch(session: AsyncSession, actor: Actor, transfer: Transfer, patch: TransferUpdate) -> None:
    changes: dict[str, Any] = {}
    for field in sorted(patch.model_fields_set):
        new = getattr(patch, field)
        if new is None and field in {"mechanism", "data_categories", "origin", "instrument_date"}:
            raise InvalidInput.field(field, "cannot be removed")
        if field == "importer_certification" and new is not None:
            new = new.model_dump(mode="json")
        if field == "origin" and new is not None:
            new = str(new.value if hasattr(new, "value") else new)
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


async def invalidation_dates(session: AsyncSession) -> dict[str, date]:
    """The earliest recorded invalidation date of each mechanism."""
    rows = await session.execute(
        select(col(MechanismInvalidation.code), func.min(col(MechanismInvalidation.invalid_from))).group_by(
            col(MechanismInvalidation.code)
        )
    )
    return {code: day for code, day in rows.all()}


async def invalidations(db: Database, scope: Scope) -> dict[str, date]:
    """The earliest recorded invalidation date of each mechanism (for other domains' checks)."""
    async with db.transaction(scope, write=False) as session:
        return await invalidation_dates(session)


async def assessment(
    db: Database, principal: Principal, as_of: date, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[AssessmentItem]:
    """Every transfer active on `as_of`, with its verdict."""
    query = (
        select(Transfer)
        .where(
            col(Transfer.start_date) <= as_of, (col(Transfer.end_date).is_(None)) | (col(Transfer.end_date) >= as_of)
        )
        .order_by(col(Transfer.id))
        .limit(limit + 1)
    )
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Transfer.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(Transfer.tenant_id) == tenant)
        known = await invalidation_dates(session)
        rows = (await session.execute(query)).scalars().all()
    items = [_assessed(transfer, as_of, known) for transfer in rows]
    return page_of(items, limit, lambda item: item, lambda item: str(item.transfer_id))


def _assessed(transfer: Transfer, as_of: date, known: dict[str, date]) -> AssessmentItem:
    verdict = assess(facts_of(transfer), as_of, known)
    return AssessmentItem(
        transfer_id=transfer.id,
        tenant_id=transfer.tenant_id,
        importer=transfer.importer,
        destination_country=transfer.destination_country,
        mechanism=transfer.mechanism,
        origin=transfer.origin or "eea",
        valid=verdict.valid,
        reason=verdict.reason,
        suggested_mechanisms=list(verdict.suggested),
        risks=list(verdict.risks),
    )


def mechanism_catalogue(invalid: dict[str, date]) -> Page[MechanismPublic]:
    items = [
        MechanismPublic(
            code=m.code,
            name=m.name,
            jurisdiction=m.jurisdiction,
            kind=m.kind,
            valid_from=m.valid_from,
            valid_until=m.valid_until,
            legal_reference=m.legal_reference,
            requires_certified_importer=m.requires_certified_importer,
            destinations=list(m.destinations),
            successors=list(m.successors),
            risk_note=m.risk_note or None,
            invalidated_from=invalid.get(m.code),
            regimes=sorted(m.regimes),
            dpa_selectable=m.dpa_selectable,
            sources=dict(m.regimes[registry.PRIMARY_REGIME[m.jurisdiction]].sources),
        )
        for m in registry.mechanisms().values()
    ]
    return Page[MechanismPublic](items=items, next_cursor=None)


async def catalogue(db: Database, principal: Principal) -> Page[MechanismPublic]:
    """The mechanism catalogue, each with the date it was recorded invalid, if it was."""
    return mechanism_catalogue(await invalidations(db, principal.scope))


async def current_transfers(
    db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID], as_of: date
) -> dict[uuid.UUID, list[TransferPublic]]:
    """The transfers of each of `tenant_ids` not ended by `as_of` (current and planned), oldest first, in one query
    for the whole batch (the records of processing export)."""
    if not tenant_ids:
        return {}
    query = (
        select(Transfer)
        .where(
            col(Transfer.tenant_id).in_(list(tenant_ids)),
            (col(Transfer.end_date).is_(None)) | (col(Transfer.end_date) >= as_of),
        )
        .order_by(col(Transfer.tenant_id), col(Transfer.start_date), col(Transfer.id))
    )
    found: dict[uuid.UUID, list[TransferPublic]] = {}
    async with db.transaction(scope, write=False) as session:
        for transfer in (await session.execute(query)).scalars():
            found.setdefault(transfer.tenant_id, []).append(public(transfer))
    return found


@dataclass(frozen=True)
class NoticedTransfer:
    """A transfer outside the EU/EEA a Subscriber recorded, and the day it first gave notice naming that transfer's
    destination and recipient."""

    transfer_id: uuid.UUID
    tenant_id: uuid.UUID
    importer: str
    destination_country: str
    start_date: date
    first_notice_on: date | None


def same_recipient(name: str) -> str:
    """A recipient's name as notices and transfers are matched by: case and runs of whitespace do not count
    ("Acme  inc." is "ACME Inc."), anything else does."""
    return " ".join(name.split()).casefold()


async def prior_notice_facts(db: Database, scope: Scope, tenant_ids: Collection[uuid.UUID]) -> list[NoticedTransfer]:
    """For the obligations ledger (`transfer_prior_notice`): each tenant's own transfers outside the EU/EEA, each with
    its first transfer notice naming the same destination and the same recipient (the notice's `recipient`, the
    transfer's `importer`, compared by `same_recipient`): clause 9.5 of the standard DPA has the notice identify the
    destination, the recipient and the mechanism, so a notice for one recipient in a country does not cover another
    one there. Left out: the transfers an executed DPA implies (`source` "dpa") and transfers to the processor
    itself, which the DPA, naming the processor and its safeguards, already covers. Two queries whatever the number
    of tenants."""
    if not tenant_ids:
        return []
    eea = [c.code for c in registry.countries().values() if c.eea]
    transfers = (
        select(Transfer)
        .where(
            col(Transfer.tenant_id).in_(tenant_ids),
            col(Transfer.source) != "dpa",
            col(Transfer.importer_kind) != ImporterKind.PROCESSOR.value,
            col(Transfer.destination_country).not_in(eea),
        )
        .order_by(col(Transfer.tenant_id), col(Transfer.start_date), col(Transfer.id))
    )
    n = TransferNotice
    first_notices = (
        select(col(n.tenant_id), col(n.destination_country), col(n.recipient), func.min(n.created_at))
        .where(col(n.tenant_id).in_(tenant_ids))
        .group_by(col(n.tenant_id), col(n.destination_country), col(n.recipient))
    )
    async with db.transaction(scope, write=False) as session:
        rows = (await session.execute(transfers)).scalars().all()
        notices = (await session.execute(first_notices)).all()
    # Spellings that differ only in case or spacing are one recipient: the earliest notice of any of them counts.
    noticed: dict[tuple[uuid.UUID, str, str], date] = {}
    for tenant, country, recipient, first in notices:
        key, day = (tenant, country, same_recipient(recipient)), _day_of(first)
        if day is not None and (key not in noticed or day < noticed[key]):
            noticed[key] = day
    return [
        NoticedTransfer(
            t.id,
            t.tenant_id,
            t.importer,
            t.destination_country,
            t.start_date,
            noticed.get((t.tenant_id, t.destination_country, same_recipient(t.importer))),
        )
        for t in rows
    ]


def _day_of(moment: Any) -> date | None:
    """A notice's creation day (UTC); SQLite returns an aggregate's datetime as text."""
    if moment is None:
        return None
    return moment.date() if hasattr(moment, "date") else date.fromisoformat(str(moment)[:10])
