"""The processor's written inquiries and the Subscriber's answers (obligation ii, clause 9.3 of the standard DPA).

Clause 9.3 has the Subscriber answer "promptly and in good faith" any written inquiry about the processing (asking
for instructions, the documented instructions of GDPR Art. 28(3)(a), for confirmation of one the processor
questions, Art. 28(3) last subparagraph, or for what it needs to answer a data subject or an authority) by the due
date the inquiry states: "no earlier than ten (10) Business Days after the inquiry is sent".

* Legal asks one tenant, a list, or every tenant with an executed DPA: one `Inquiry` row per tenant sharing a
  `batch_id`, one `inquiry.asked` event in each tenant's audit chain and one in the platform chain, and one notice
  per tenant through the outbox (e-mail to its owners and admins, an `inquiry.asked` webhook), all written in
  batches in one transaction.
* The due date defaults to, and may not be earlier than, the DPA's minimum for the tenants asked: 10 Business
  Days by the standard template (`inquiries_recipients`). The clause's "except in urgent cases" is not offered:
  urgency is for the processor to argue case by case with the Subscriber, and a shorter date set here would be one
  the Subscriber never agreed to; legal can still ask, with the standard date, and say in the question why an
  earlier answer would help. Nor may it be later than the end of the same day a year after asking: the clause
  wants a date that "shall be reasonable", and `due_at` years away would leave the inquiry open for ever.
* Status is derived, never stored: `answered` once a response exists, `overdue` past `due_at` unanswered, else
  `open`. Answers are append-only and audited, and accepted after the due date too (the inquiry becomes answered;
  `answered_at` against `due_at` shows the lateness).
* Reminders and overdue notices: `inquiries_notices`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_cursor, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations.business_days import end_of_day
from dpa_service.obligations.inquiries_models import (
    InquiryAnswerCreate,
    InquiryAnswerPublic,
    InquiryBatchCreated,
    InquiryCreate,
    InquiryPublic,
)
from dpa_service.obligations.inquiries_notices import ASKED_TOPIC, notice_payload
from dpa_service.obligations.inquiries_recipients import minimum_due_at, recipients_of
from dpa_service.obligations.models import Inquiry, InquiryResponse, InquiryStatus
from dpa_service.obligations.timefields import one_year_after

WRITE_BATCH = 1000  # rows per bulk statement


def latest_due_at(asked_at: datetime) -> datetime:
    """The latest due date legal may set: the end of the same day a year after asking. Clause 9.3 has the date
    "be reasonable"; the processor asks so that it can act on the answer, and a year is the outer edge of that."""
    return end_of_day(one_year_after(asked_at.astimezone(UTC).date()))


T = TypeVar("T")


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# --- Status --------------------------------------------------------------------------------------------------


def status_of(inquiry: Inquiry, now: datetime) -> InquiryStatus:
    if inquiry.answered_at is not None:
        return InquiryStatus.ANSWERED
    return InquiryStatus.OVERDUE if as_utc(inquiry.due_at) < now else InquiryStatus.OPEN


def _status_condition(status: InquiryStatus, now: datetime) -> ColumnElement[bool]:
    unanswered = col(Inquiry.answered_at).is_(None)
    if status == InquiryStatus.ANSWERED:
        return col(Inquiry.answered_at).is_not(None)
    if status == InquiryStatus.OVERDUE:
        return unanswered & (col(Inquiry.due_at) < now)
    return unanswered & (col(Inquiry.due_at) >= now)


def _late(answered_at: datetime | None, due_at: datetime) -> bool:
    return answered_at is not None and as_utc(answered_at) > as_utc(due_at)


def public(inquiry: Inquiry, answers: Sequence[InquiryResponse], now: datetime) -> InquiryPublic:
    return InquiryPublic(
        id=inquiry.id,
        tenant_id=inquiry.tenant_id,
        batch_id=inquiry.batch_id,
        question=inquiry.question,
        asked_at=inquiry.asked_at,
        due_at=inquiry.due_at,
        status=status_of(inquiry, now).value,
        answered_at=inquiry.answered_at,
        late=_late(inquiry.answered_at, inquiry.due_at),
        reminded_at=inquiry.reminded_at,
        overdue_notified_at=inquiry.overdue_notified_at,
        answers=[
            InquiryAnswerPublic(
                id=answer.id,
                answer=answer.answer,
                answered_by=answer.answered_by,
                answered_at=answer.answered_at,
                late=_late(answer.answered_at, inquiry.due_at),
            )
            for answer in answers
        ],
    )


async def ask(db: Database, actor: Actor, principal: Principal, data: InquiryCreate) -> InquiryBatchCreated:
    """Legal asks each recipient the question, due no earlier than the DPA allows (clause 9.3)."""
    if principal.tenant_id is not None:
        raise PermissionDenied("Inquiries are asked by the processor's legal team.")
    scope = principal.scope
    asked_at = utcnow()
    recipients = await recipients_of(db, scope, data.tenant_ids)
    minimum = await minimum_due_at(db, scope, recipients, asked_at)
    if data.due_at is not None and as_utc(data.due_at) < minimum:
        raise InvalidInput.field(
            "due_at",
            f"must be no earlier than {rfc3339(minimum)}: the DPA allows no less than its Business Days (clause 9.3) "
            "after the inquiry is sent, counting public holidays in the processor's and each tenant's country",
        )
    if data.due_at is not None and as_utc(data.due_at) > (latest := latest_due_at(asked_at)):
        raise InvalidInput.field(
            "due_at",
            f"must be no later than {rfc3339(latest)}: clause 9.3 asks for a reasonable date, and an answer due more "
            "than a year after the question is not one",
        )
    due_at = as_utc(data.due_at) if data.due_at is not None else minimum
    batch_id = new_id()
    rows: list[dict[str, Any]] = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "batch_id": batch_id,
            "question": data.question,
            "asked_by": principal.user_id,
            "asked_at": asked_at,
            "due_at": due_at,
        }
        for tenant_id in recipients.tenant_ids
    ]
    async with db.transaction(scope) as session:
        for chunk in _chunks(rows, WRITE_BATCH):
            await session.execute(insert(Inquiry), list(chunk))
            await enqueue_many(
                session,
                ASKED_TOPIC,
                (
                    (row["tenant_id"], f"{ASKED_TOPIC}:{row['id']}", notice_payload(ASKED_TOPIC, row["id"], batch_id,
                                                                             data.question, due_at))
                    for row in chunk
                ),
            )  # fmt: skip
            await audit.record_many(
                session,
                actor,
                "inquiry.asked",
                "inquiry",
                [
                    (row["tenant_id"], row["id"], {"batch_id": str(batch_id), "due_at": rfc3339(due_at),
                                                   "question": data.question})
                    for row in chunk
                ],
            )  # fmt: skip
        await audit.record(
            session,
            actor,
            "inquiry.asked",
            "inquiry_batch",
            batch_id,
            tenant_id=None,
            data={
                "recipients": "all" if data.tenant_ids == "all" else "list",
                "count": len(rows),
                "due_at": rfc3339(due_at),
                "minimum_due_at": rfc3339(minimum),
                "question": data.question,
            },
        )
    return InquiryBatchCreated(ids=[row["id"] for row in rows], count=len(rows), batch_id=batch_id, due_at=due_at)


# --- Reading -------------------------------------------------------------------------------------------------


async def _answers(session: AsyncSession, inquiry_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[InquiryResponse]]:
    found: dict[uuid.UUID, list[InquiryResponse]] = {inquiry_id: [] for inquiry_id in inquiry_ids}
    if not inquiry_ids:
        return found
    query = (
        select(InquiryResponse)
        .where(col(InquiryResponse.inquiry_id).in_(inquiry_ids))
        .order_by(col(InquiryResponse.answered_at), col(InquiryResponse.id))
    )
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(InquiryResponse.tenant_id) == tenant)
    for answer in (await session.execute(query)).scalars():
        found[answer.inquiry_id].append(answer)
    return found


async def _find(session: AsyncSession, inquiry_id: uuid.UUID, *, lock: bool = False) -> Inquiry:
    """Within the session's tenant scope: another tenant's inquiry is simply not found."""
    query = select(Inquiry).where(col(Inquiry.id) == inquiry_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(Inquiry.tenant_id) == tenant)
    if lock:
        query = query.with_for_update()
    inquiry = (await session.execute(query)).scalar_one_or_none()
    if inquiry is None:
        raise NotFound("Inquiry not found.")
    return inquiry


async def get_inquiry(db: Database, principal: Principal, inquiry_id: uuid.UUID) -> InquiryPublic:
    async with db.transaction(principal.scope, write=False) as session:
        inquiry = await _find(session, inquiry_id)
        answers = await _answers(session, [inquiry.id])
    return public(inquiry, answers[inquiry.id], utcnow())


async def list_inquiries(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    status: InquiryStatus | None,
    batch_id: uuid.UUID | None = None,
    cursor: str | None,
    limit: int,
) -> Page[InquiryPublic]:
    """Newest first: a Subscriber's own; legal's every tenant's, or `tenant_id`'s; `status` and `batch_id`
    narrow."""
    now = utcnow()
    query = select(Inquiry).order_by(col(Inquiry.id).desc()).limit(limit + 1)
    if (before := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Inquiry.id) < before)
    if status is not None:
        query = query.where(_status_condition(status, now))
    if batch_id is not None:
        query = query.where(col(Inquiry.batch_id) == batch_id)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(Inquiry.tenant_id) == tenant)
        rows = list((await session.execute(query)).scalars())
        answers = await _answers(session, [inquiry.id for inquiry in rows[:limit]])
    return page_of(rows, limit, lambda inquiry: public(inquiry, answers[inquiry.id], now), lambda i: str(i.id))


def _due_cursor(inquiry: Inquiry) -> str:
    return f"{as_utc(inquiry.due_at).isoformat()}|{inquiry.id}"  # to the microsecond: the keyset compares it


def _after_due(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    raw = decode_cursor(cursor)
    if raw is None:
        return None
    try:
        due, inquiry_id = raw.split("|", 1)
        return as_utc(datetime.fromisoformat(due)), uuid.UUID(inquiry_id)
    except ValueError as exc:
        raise InvalidInput.field("cursor", "is not a cursor this service issued") from exc


async def list_unanswered(db: Database, principal: Principal, *, cursor: str | None, limit: int) -> Page[InquiryPublic]:
    """The caller's unanswered inquiries, soonest due first, so the overdue ones (due before now) come first, then
    the open ones; paged by (due date, id)."""
    now = utcnow()
    query = (
        select(Inquiry)
        .where(col(Inquiry.answered_at).is_(None))
        .order_by(col(Inquiry.due_at), col(Inquiry.id))
        .limit(limit + 1)
    )
    if (after := _after_due(cursor)) is not None:
        due, inquiry_id = after
        query = query.where(
            (col(Inquiry.due_at) > due) | ((col(Inquiry.due_at) == due) & (col(Inquiry.id) > inquiry_id))
        )
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session)) is not None:
            query = query.where(col(Inquiry.tenant_id) == tenant)
        rows = list((await session.execute(query)).scalars())
        answers = await _answers(session, [inquiry.id for inquiry in rows[:limit]])
    return page_of(rows, limit, lambda inquiry: public(inquiry, answers[inquiry.id], now), _due_cursor)


# --- Answering -----------------------------------------------------------------------------------------------


async def answer(
    db: Database, actor: Actor, principal: Principal, inquiry_id: uuid.UUID, data: InquiryAnswerCreate
) -> InquiryPublic:
    """An owner or admin answers for its tenant (append-only); the first answer makes the inquiry `answered`,
    late or not."""
    if principal.tenant_id is None:
        raise PermissionDenied("Inquiries are answered by the Subscriber.")
    async with db.transaction(principal.scope) as session:
        inquiry = await _find(session, inquiry_id, lock=True)
        now = utcnow()
        response = InquiryResponse(
            tenant_id=inquiry.tenant_id,
            inquiry_id=inquiry.id,
            answer=data.answer,
            answered_by=principal.user_id,
            answered_at=now,
        )
        session.add(response)
        first = inquiry.answered_at is None
        if first:
            inquiry.answered_at = now
        await session.flush()
        await audit.record(
            session,
            actor,
            "inquiry.answered",
            "inquiry",
            inquiry.id,
            tenant_id=inquiry.tenant_id,
            data={
                "response_id": str(response.id),
                "batch_id": str(inquiry.batch_id),
                "due_at": rfc3339(inquiry.due_at),
                "late": _late(now, inquiry.due_at),
                "first_answer": first,
                "answer": data.answer,
            },
        )
        answers = await _answers(session, [inquiry.id])
    return public(inquiry, answers[inquiry.id], now)
