"""Breach notices (obligation i of clause 9): a Subscriber tells the processor of a personal data breach within
72 hours of becoming aware of it, adds information in phases, and legal acknowledges.

The clock: Art. 33(1) GDPR has the controller notify the supervisory authority "without undue delay and, where
feasible, not later than 72 hours after having become aware of it"; clause 9.2 of the standard DPA
(`obligations.yaml`: `breach_notice_72h`, `within_hours_of_awareness`, 72) mirrors that deadline toward the
processor, so `deadline_at = became_aware_at + 72 h` and a notice is `late` when it is reported after it. Art. 33(4)
lets the information come "in phases without undue further delay": updates are append-only rows, shown in order,
and may follow the acknowledgement.

Legal is told at once: the report is one outbox message, written in the same transaction, that e-mails the
processor's legal staff and sends `breach_notice.reported` to the tenant's webhook endpoints; its dedupe key names
the notice, so a replayed request tells nobody twice. Updates and the acknowledgement are told the same way
(`breach_notice.updated` to legal, `breach_notice.acknowledged` to the tenant's owners and admins).

A tenant with no executed DPA may still report: the duty to tell the processor of a breach affecting the Service is
also owed under the main agreement, and a processor that hears of a breach must be able to record it whatever the
state of the paperwork.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations.breaches_models import (
    BreachNoticeCreate,
    BreachNoticeDetail,
    BreachNoticePublic,
    BreachNoticeUpdateCreate,
    BreachNoticeUpdatePublic,
)
from dpa_service.obligations.models import BreachNotice, BreachNoticeStatus, BreachNoticeUpdate
from dpa_service.tenants import services as tenants

# Art. 33(1) GDPR ("not later than 72 hours after having become aware of it"), as clause 9.2 of the DPA applies it.
DEADLINE = timedelta(hours=72)
# Art. 99(2) GDPR: the Regulation "shall apply from 25 May 2018". No breach notice under it (nor under a DPA made
# for it) can run from an awareness before that day: an earlier one is a typing slip, refused (422).
GDPR_APPLIES_FROM = datetime(2018, 5, 25, tzinfo=UTC)

REPORTED = "breach_notice.reported"
UPDATED = "breach_notice.updated"
ACKNOWLEDGED = "breach_notice.acknowledged"
STATUSES = tuple(status.value for status in BreachNoticeStatus)


def _to_the_second(moment: datetime) -> datetime:
    """Times are kept to the second, as the API writes them (`2026-01-31T12:00:00Z`): a report made in the very
    second the 72 hours end is on time, not late by the microseconds the request took."""
    return as_utc(moment).replace(microsecond=0)


def deadline_of(became_aware_at: datetime) -> datetime:
    return _to_the_second(became_aware_at) + DEADLINE


def lateness(notice: BreachNoticePublic | BreachNotice) -> str:
    """How late a notice was, as people say it ("3 h 12 min"); "" when on time."""
    if not notice.late:
        return ""
    minutes = int((as_utc(notice.reported_at) - as_utc(notice.deadline_at)).total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours = f"{rest // 60} h" if days or rest >= 60 else ""
    return " ".join(part for part in (f"{days} d" if days else "", hours, f"{rest % 60} min") if part)


async def report(
    db: Database, actor: Actor, principal: Principal, data: BreachNoticeCreate, *, base_url: str = ""
) -> BreachNoticeDetail:
    """Record a Subscriber's breach notice, stamp its deadline and lateness, audit it and tell legal at once.

    Owners and admins report (the controller's guard); a member of staff cannot report for a tenant."""
    tenant_id = principal.tenant_id
    if tenant_id is None or principal.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied("A breach notice is given by a Subscriber's owner or admin.")
    now = utcnow()
    if data.became_aware_at > now:
        raise InvalidInput.field(
            "became_aware_at",
            f"is in the future (it is now {rfc3339(_to_the_second(now))}): give when you became aware",
        )
    if data.became_aware_at < GDPR_APPLIES_FROM:
        raise InvalidInput.field(
            "became_aware_at",
            f"is before {GDPR_APPLIES_FROM.date()}, when the GDPR began to apply (Art. 99(2)): check the year",
        )
    reported_at, deadline_at = _to_the_second(now), deadline_of(data.became_aware_at)
    name = (await tenants.names(db, principal.scope, [tenant_id])).get(tenant_id, str(tenant_id))
    async with db.transaction(principal.scope) as session:
        notice = BreachNotice(
            tenant_id=tenant_id,
            became_aware_at=_to_the_second(data.became_aware_at),
            reported_at=reported_at,
            deadline_at=deadline_at,
            late=reported_at > deadline_at,
            description=data.description,
            data_categories=list(data.data_categories),
            subjects_estimate=data.subjects_estimate,
            records_estimate=data.records_estimate,
            consequences=data.consequences,
            measures=data.measures,
            contact_email=data.contact_email,
            reported_by=principal.user_id,
        )
        session.add(notice)
        await session.flush()
        facts = _facts(notice)
        await audit.record(session, actor, REPORTED, "breach_notice", notice.id, tenant_id=tenant_id, data=facts)
        mail = _reported_mail(notice, name, principal, f"{base_url}/staff/breach-notices/{notice.id}")
        await enqueue_many(session, REPORTED, [(tenant_id, f"{REPORTED}:{notice.id}", {**facts, **mail})])
        return _detail(notice, [])


async def add_update(
    db: Database,
    actor: Actor,
    principal: Principal,
    notice_id: uuid.UUID,
    data: BreachNoticeUpdateCreate,
    *,
    base_url: str = "",
) -> BreachNoticeUpdatePublic:
    """Information given in phases (Art. 33(4) GDPR): appended, audited and sent to legal; allowed after the
    acknowledgement too. Only the reporting tenant's owners and admins add it."""
    if principal.tenant_id is None or principal.role not in (Role.OWNER, Role.ADMIN):
        raise PermissionDenied(
            "Updates to a breach notice come from the owners and admins of the tenant that reported it."
        )
    name = (await tenants.names(db, principal.scope, [principal.tenant_id])).get(principal.tenant_id, "")
    async with db.transaction(principal.scope) as session:
        notice = await _find(session, principal, notice_id)
        update = BreachNoticeUpdate(
            tenant_id=notice.tenant_id, breach_notice_id=notice.id, text=data.text, created_by=principal.user_id
        )
        session.add(update)
        await session.flush()
        await audit.record(session, actor, UPDATED, "breach_notice", notice.id, tenant_id=notice.tenant_id,
                           data={"update_id": str(update.id), "characters": len(update.text)})  # fmt: skip
        page = f"{base_url}/staff/breach-notices/{notice.id}"
        payload = {
            "breach_notice_id": str(notice.id),
            "update_id": str(update.id),
            "created_at": rfc3339(update.created_at),
            "email_staff": Role.LEGAL.value,
            "subject": f"Breach notice update from {name}",
            "text": f"{name} added information to its breach notice of {rfc3339(notice.reported_at)}:\n\n"
            f"{update.text}\n\nThe notice and all its updates: {page}\n",
        }
        await enqueue_many(session, UPDATED, [(notice.tenant_id, f"{UPDATED}:{update.id}", payload)])
        return BreachNoticeUpdatePublic.model_validate(update, from_attributes=True)


async def acknowledge(
    db: Database, actor: Actor, principal: Principal, notice_id: uuid.UUID, *, base_url: str = ""
) -> BreachNoticeDetail:
    """Legal acknowledges a notice (once: a second time is 409); audited in the tenant's chain with legal as the
    actor, and the tenant's owners and admins are told."""
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Legal acknowledges breach notices.")
    async with db.transaction(principal.scope) as session:
        notice = await _find(session, principal, notice_id, lock=True)
        if notice.status == BreachNoticeStatus.ACKNOWLEDGED.value:
            when = rfc3339(notice.acknowledged_at) if notice.acknowledged_at else "before"
            raise Conflict(f"This breach notice was already acknowledged ({when}).")
        notice.status = BreachNoticeStatus.ACKNOWLEDGED.value
        notice.acknowledged_at, notice.acknowledged_by = utcnow(), principal.user_id
        facts = {"breach_notice_id": str(notice.id), "status": notice.status,
                 "acknowledged_at": rfc3339(notice.acknowledged_at), "late": notice.late}  # fmt: skip
        await audit.record(session, actor, ACKNOWLEDGED, "breach_notice", notice.id, tenant_id=notice.tenant_id,
                           data=facts)  # fmt: skip
        mail = {
            "subject": "The processor acknowledged your breach notice",
            "text": f"The processor's legal team acknowledged your breach notice of {rfc3339(notice.reported_at)}.\n"
            f"You can add information as you learn more: {base_url}/app/breach-notices/{notice.id}\n",
        }
        await enqueue_many(
            session, ACKNOWLEDGED, [(notice.tenant_id, f"{ACKNOWLEDGED}:{notice.id}", {**facts, **mail})]
        )
        return _detail(notice, await _updates(session, notice.id))


async def get_notice(db: Database, principal: Principal, notice_id: uuid.UUID) -> BreachNoticeDetail:
    """One notice with its updates in order: a Subscriber's own, or any for legal."""
    async with db.transaction(principal.scope, write=False) as session:
        notice = await _find(session, principal, notice_id)
        return _detail(notice, await _updates(session, notice.id))


async def list_notices(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[BreachNoticePublic]:
    """A Subscriber's own notices, or every tenant's for legal (`tenant_id` narrows); oldest first, paged."""
    if status is not None and status not in STATUSES:
        raise InvalidInput.field("status", f"must be one of: {', '.join(STATUSES)}")
    query = select(BreachNotice).order_by(col(BreachNotice.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(BreachNotice.id) > after)
    if status is not None:
        query = query.where(col(BreachNotice.status) == status)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(BreachNotice.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, _public, lambda notice: str(notice.id))


async def _find(
    session: AsyncSession, principal: Principal, notice_id: uuid.UUID, *, lock: bool = False
) -> BreachNotice:
    notice = await session.get(BreachNotice, notice_id, with_for_update=lock)
    if notice is None or (principal.tenant_id is not None and notice.tenant_id != principal.tenant_id):
        raise NotFound("Breach notice not found.")
    return notice


async def _updates(session: AsyncSession, notice_id: uuid.UUID) -> list[BreachNoticeUpdate]:
    query = (
        select(BreachNoticeUpdate)
        .where(col(BreachNoticeUpdate.breach_notice_id) == notice_id)
        .order_by(col(BreachNoticeUpdate.created_at), col(BreachNoticeUpdate.id))
    )
    return list((await session.execute(query)).scalars())


def _public(notice: BreachNotice) -> BreachNoticePublic:
    return BreachNoticePublic.model_validate(notice, from_attributes=True)


def _detail(notice: BreachNotice, updates: list[BreachNoticeUpdate]) -> BreachNoticeDetail:
    return BreachNoticeDetail(
        **_public(notice).model_dump(),
        updates=[BreachNoticeUpdatePublic.model_validate(u, from_attributes=True) for u in updates],
    )


def _facts(notice: BreachNotice) -> dict[str, Any]:
    """What the audit event and the webhook say of a new notice (the free text stays in the notice itself)."""
    return {
        "breach_notice_id": str(notice.id),
        "status": notice.status,
        "became_aware_at": rfc3339(notice.became_aware_at),
        "reported_at": rfc3339(notice.reported_at),
        "deadline_at": rfc3339(notice.deadline_at),
        "late": notice.late,
        "data_categories": notice.data_categories,
        "subjects_estimate": notice.subjects_estimate,
        "records_estimate": notice.records_estimate,
    }


def _reported_mail(notice: BreachNotice, tenant_name: str, reporter: Principal, page: str) -> dict[str, Any]:
    """The e-mail to legal: everything reported, and where to acknowledge it."""
    timing = f"LATE by {lateness(notice)}" if notice.late else "on time"
    estimate = str(notice.records_estimate) if notice.records_estimate is not None else "not given"
    text = (
        f"{tenant_name} reported a personal data breach (clause 9.2 of the DPA; Art. 33 GDPR).\n\n"
        f"Became aware: {rfc3339(notice.became_aware_at)}\n"
        f"Reported: {rfc3339(notice.reported_at)}\n"
        f"72-hour deadline: {rfc3339(notice.deadline_at)} ({timing})\n"
        f"Data categories: {', '.join(notice.data_categories)}\n"
        f"Data subjects (estimate): {notice.subjects_estimate}\n"
        f"Records (estimate): {estimate}\n\n"
        f"What happened:\n{notice.description}\n\n"
        f"Likely consequences:\n{notice.consequences or 'not given'}\n\n"
        f"Measures taken or proposed:\n{notice.measures}\n\n"
        f"Reported by: {reporter.name} <{reporter.email}>; contact: {notice.contact_email or reporter.email}\n\n"
        f"Acknowledge it at {page}\n"
    )
    late = " (after the 72-hour deadline)" if notice.late else ""
    return {"email_staff": Role.LEGAL.value, "subject": f"Breach notice from {tenant_name}{late}", "text": text}
