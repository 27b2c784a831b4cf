"""What the Subscriber is told about an inquiry, through the outbox: that it was asked, a reminder in the 48 hours
before its due date, and a notice once it is overdue (e-mail to the tenant's owners and admins, and webhooks).

48 hours rather than 2 Business Days: the same moment for every tenant whatever its holidays, and a single indexed
condition; a reminder that lands on a weekend still arrives before the due date. `send_due_notices` runs in the
server's housekeeping; each reminder and overdue notice goes out once, even with the job run twice at the same
moment on two processes: a conditional UPDATE (`... WHERE reminded_at IS NULL`) claims it, and its outbox key is
unique per inquiry as well. Each is recorded in the tenant's audit chain.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations.models import Inquiry

ASKED_TOPIC = "inquiry.asked"
REMINDER_TOPIC = "inquiry.reminder"
OVERDUE_TOPIC = "inquiry.overdue"
REMIND_BEFORE = timedelta(hours=48)
NOTICE_BATCH = 500  # inquiries claimed per housekeeping transaction


def notice_payload(
    kind: str, inquiry_id: uuid.UUID, batch_id: uuid.UUID, question: str, due_at: datetime
) -> dict[str, Any]:
    """The outbox payload: the webhook's data, and the e-mail's subject and text."""
    processor = registry.processor().get("trading_name") or registry.processor()["legal_name"]
    due = rfc3339(due_at)
    subjects = {
        ASKED_TOPIC: f"{processor} asks: please answer by {due_at.date().isoformat()}",
        REMINDER_TOPIC: f"Reminder: {processor}'s inquiry is due {due_at.date().isoformat()}",
        OVERDUE_TOPIC: f"Overdue: {processor}'s inquiry was due {due_at.date().isoformat()}",
    }
    opening = {
        ASKED_TOPIC: f"{processor} asks you the following under clause 9.3 of your Data Processing Agreement.",
        REMINDER_TOPIC: f"{processor}'s inquiry under clause 9.3 of your Data Processing Agreement is due soon.",
        OVERDUE_TOPIC: f"{processor}'s inquiry under clause 9.3 of your Data Processing Agreement is overdue: "
        "the due date has passed without an answer. Please answer it now.",
    }
    text = "\n".join(
        [
            opening[kind],
            "",
            question,
            "",
            f"Please answer by {due} on the Inquiries page of the DPA service, or with",
            f"POST /api/v1/inquiries/{inquiry_id}/responses.",
        ]
    )
    return {
        "inquiry_id": str(inquiry_id),
        "batch_id": str(batch_id),
        "question": question,
        "due_at": due,
        "subject": subjects[kind],
        "text": text,
    }


@dataclass(frozen=True)
class _Due:
    condition: ColumnElement[bool]
    stamp: str
    topic: str
    action: str


def _due_kinds(now: datetime) -> list[_Due]:
    unanswered = col(Inquiry.answered_at).is_(None)
    return [
        _Due(
            unanswered
            & col(Inquiry.reminded_at).is_(None)
            & (col(Inquiry.due_at) > now)
            & (col(Inquiry.due_at) <= now + REMIND_BEFORE),
            "reminded_at",
            REMINDER_TOPIC,
            "inquiry.reminder_sent",
        ),
        _Due(
            unanswered & col(Inquiry.overdue_notified_at).is_(None) & (col(Inquiry.due_at) < now),
            "overdue_notified_at",
            OVERDUE_TOPIC,
            "inquiry.overdue_notice_sent",
        ),
    ]


async def _claim_and_notify(session: AsyncSession, kind: _Due, now: datetime) -> int:
    """Stamp a batch of due inquiries and queue their notices. The outer WHERE repeats the condition, so a second
    run that picked the same rows (waiting on their locks, PostgreSQL re-checks it) claims none of them."""
    candidates = select(col(Inquiry.id)).where(kind.condition).order_by(col(Inquiry.due_at)).limit(NOTICE_BATCH)
    claimed = (
        await session.execute(
            update(Inquiry)
            .where(col(Inquiry.id).in_(candidates), kind.condition)
            .values({kind.stamp: now})
            .returning(
                col(Inquiry.id), col(Inquiry.tenant_id), col(Inquiry.batch_id), col(Inquiry.question),
                col(Inquiry.due_at),
            )
            .execution_options(synchronize_session=False)
        )
    ).all()  # fmt: skip
    if not claimed:
        return 0
    await enqueue_many(
        session,
        kind.topic,
        (
            (row.tenant_id, f"{kind.topic}:{row.id}", notice_payload(kind.topic, row.id, row.batch_id, row.question,
                                                              as_utc(row.due_at)))
            for row in claimed
        ),
    )  # fmt: skip
    await audit.record_many(
        session,
        Actor.system("housekeeping"),
        kind.action,
        "inquiry",
        [(row.tenant_id, row.id, {"due_at": rfc3339(as_utc(row.due_at))}) for row in claimed],
    )
    return len(claimed)


async def send_due_notices(db: Database) -> dict[str, int]:
    """Reminders for inquiries due within 48 hours and notices for those past due, each once; returns how many
    of each were sent. Safe to run as often and on as many processes as one likes."""
    sent: dict[str, int] = {}
    for kind in _due_kinds(utcnow()):
        total = 0
        while True:
            async with db.transaction(Scope.system()) as session:
                count = await _claim_and_notify(session, kind, utcnow())
            total += count
            if count < NOTICE_BATCH:
                break
        sent[kind.topic] = total
    return sent
