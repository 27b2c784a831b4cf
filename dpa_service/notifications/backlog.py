"""How far behind delivery is, for monitoring: the outbox's undelivered messages (and the oldest one's age), and the
webhook and e-mail deliveries waiting, retrying after a failure, or dead-lettered.

Counts across all tenants, nothing tenant-identifying: this is what `/metrics` shows. One statement, bounded by a
statement timeout on PostgreSQL (and by the caller's timeout everywhere), so a scrape can never weigh on the
database; every filter is on an indexed column (`outbox.delivered_at`, the deliveries' `(status, next_attempt_at)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlmodel import col

from dpa_service.core.clock import as_utc
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import DeliveryStatus, MailDelivery, WebhookDelivery
from dpa_service.notifications.outbox import OutboxMessage

DELIVERY_TABLES: dict[str, type[WebhookDelivery] | type[MailDelivery]] = {
    "webhook": WebhookDelivery,
    "mail": MailDelivery,
}
STATEMENT_TIMEOUT_MS = 2000


@dataclass(frozen=True)
class Backlog:
    outbox_pending: int
    oldest_pending_at: datetime | None
    deliveries: dict[str, dict[str, int]]
    """kind ("webhook", "mail") -> {"pending": waiting to be sent, "retrying": of those, failed at least once,
    "dead": dead-lettered (not delivered within the retry window; a webhook's may be replayed)}."""


def _count(table: Any, *where: Any) -> Any:
    return select(func.count()).select_from(table).where(*where).scalar_subquery()


async def backlog(db: Database) -> Backlog:
    """The delivery backlog now, in one statement."""
    undelivered = col(OutboxMessage.delivered_at).is_(None)
    columns: list[Any] = [
        _count(OutboxMessage, undelivered).label("outbox"),
        select(func.min(col(OutboxMessage.created_at))).where(undelivered).scalar_subquery().label("oldest"),
    ]
    for kind, table in DELIVERY_TABLES.items():
        pending = col(table.status) == DeliveryStatus.PENDING.value
        columns += [
            _count(table, pending).label(f"{kind}_pending"),
            _count(table, pending, col(table.attempts) > 0).label(f"{kind}_retrying"),
            _count(table, col(table.status) == DeliveryStatus.DEAD.value).label(f"{kind}_dead"),
        ]
    async with db.transaction(Scope.system(), write=False) as session:
        if db.is_postgres:
            await session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        row = (await session.execute(select(*columns))).one()._mapping
    oldest = row["oldest"]
    if isinstance(oldest, str):  # SQLite may hand an aggregate's datetime back as text, without its offset
        oldest = datetime.fromisoformat(oldest)
    return Backlog(
        outbox_pending=row["outbox"],
        oldest_pending_at=as_utc(oldest) if oldest is not None else None,
        deliveries={
            kind: {state: row[f"{kind}_{state}"] for state in ("pending", "retrying", "dead")}
            for kind in DELIVERY_TABLES
        },
    )
