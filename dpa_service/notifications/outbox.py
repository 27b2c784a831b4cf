"""The outbox: notifications written in the same transaction as the change that causes them.

This is the notifications domain's API for the others: `enqueue_many` inside the caller's transaction, and
`first_queued_at` to report who was told when.

A delivery worker (e-mail to the tenant's owners and admins, or with `email_staff` to the processor's staff of
that role; signed webhooks) reads pending messages;
`dedupe_key` makes each notification exist once however often the change is replayed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from dpa_service.core.clock import utcnow
from dpa_service.core.db import UTCDateTime
from dpa_service.core.ids import new_id
from dpa_service.notifications.jobs import JobFailed, enqueue_job, register_job

# Outbox jobs (notifications.jobs) are part of this API: other domains queue and register them through here.
__all__ = ["JobFailed", "OutboxMessage", "enqueue_job", "enqueue_many", "first_queued_at", "register_job"]


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_tenant_topic", "tenant_id", "topic"), Index("ix_outbox_pending", "delivered_at"))

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id")
    topic: str = Field(max_length=100)
    dedupe_key: str = Field(max_length=200, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0


async def enqueue_many(
    session: AsyncSession, topic: str, messages: Iterable[tuple[uuid.UUID | None, str, dict[str, Any]]]
) -> int:
    """Queue (tenant_id, dedupe_key, payload) messages in one statement; already queued keys are skipped.

    Returns how many were offered (drivers do not report skipped rows of a batch reliably)."""
    now = utcnow()
    rows = [
        {
            "id": new_id(),
            "tenant_id": tenant_id,
            "topic": topic,
            "dedupe_key": key,
            "payload": payload,
            "created_at": now,
            "attempts": 0,
        }
        for tenant_id, key, payload in messages
    ]
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(OutboxMessage).on_conflict_do_nothing(index_elements=["dedupe_key"]), rows)
    return len(rows)


async def first_queued_at(
    session: AsyncSession, topic: str, tenant_ids: Sequence[uuid.UUID], *, where: tuple[str, str]
) -> dict[uuid.UUID, datetime]:
    """When each tenant was first sent a `topic` message whose payload has `where` = (key, value)."""
    key, value = where
    rows = await session.execute(
        select(col(OutboxMessage.tenant_id), func.min(col(OutboxMessage.created_at)))
        .where(
            col(OutboxMessage.topic) == topic,
            col(OutboxMessage.tenant_id).in_(tenant_ids),
            col(OutboxMessage.payload)[key].as_string() == value,
        )
        .group_by(col(OutboxMessage.tenant_id))
    )
    return {tenant_id: at for tenant_id, at in rows.all() if tenant_id is not None}
