"""What the checkpoint tests share: a round as the server runs it, `dpa audit verify` as an operator runs it, and
tampering as the database owner does it (triggers switched off where the owner can, dropped on SQLite)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from click.testing import CliRunner, Result
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dpa_service.audit.anchoring import checkpoint_chains, signer_for_seal
from dpa_service.audit.checkpoint_files import CheckpointFiles, RoundReport
from dpa_service.audit.hashing import event_hash
from dpa_service.audit.models import AuditEvent, AuditHead
from dpa_service.cli import main
from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import Settings, clear_settings_cache
from dpa_service.documents.seal import SealConfig

EVENTS = AuditEvent.__table__  # type: ignore[attr-defined]
HEADS = AuditHead.__table__  # type: ignore[attr-defined]


async def checkpoint_round(db: Database, settings: Settings) -> RoundReport:
    """One round as `_housekeeping` runs it (waiting out the app's own first round if it holds the lock)."""
    files = CheckpointFiles(settings.checkpoints_path)
    report = await checkpoint_chains(db, files, signer_for_seal(SealConfig.from_settings(settings)), wait=10)
    assert not report.skipped and not report.problems, report
    return report


def _invoke(settings: Settings, args: list[str]) -> Result:
    env = {"DPA_VAR_DIR": str(settings.var_dir), "DATABASE_URL": settings.database.url}
    clear_settings_cache()
    try:
        return CliRunner().invoke(main, args, env=env)
    finally:
        clear_settings_cache()


async def dpa(settings: Settings, *args: str) -> Result:
    """The `dpa` command on this test's database and var dir (in a thread: it runs its own event loop)."""
    return await asyncio.to_thread(_invoke, settings, list(args))


async def events_of(db: Database, tenant_id: str) -> list[AuditEvent]:
    """The chain's events, detached copies to edit."""
    async with db.transaction(Scope.system(), write=False) as session:
        query = select(AuditEvent).where(AuditEvent.chain == tenant_id).order_by(AuditEvent.seq)  # type: ignore[arg-type]
        return [AuditEvent(**e.model_dump()) for e in (await session.execute(query)).scalars()]


def rehash(events: list[AuditEvent], prev_hash: str) -> list[AuditEvent]:
    """Relink and rehash `events` after `prev_hash`, as a careful forger would."""
    for event in events:
        event.prev_hash = prev_hash
        event.hash = event_hash(event)
        prev_hash = event.hash
    return events


@asynccontextmanager
async def as_owner_without_triggers(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A transaction as the database owner with the audit tables' triggers off: PostgreSQL's owner may disable them
    (ALTER TABLE ... DISABLE TRIGGER USER); SQLite's file owner drops them."""
    async with engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))  # FORCE RLS holds for it
            for table in ("audit_events", "audit_heads"):
                await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_heads_forward_only",
                            "audit_heads_no_delete"):  # fmt: skip
                await conn.execute(text(f"DROP TRIGGER {trigger}"))
        yield conn
        if postgres:
            for table in ("audit_events", "audit_heads"):
                await conn.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


async def overwrite(conn: AsyncConnection, event: AuditEvent, **columns: Any) -> None:
    values = {name: getattr(event, name) for name in ("chain", "tenant_id", "seq", "action", "prev_hash", "hash")}
    await conn.execute(update(EVENTS).where(EVENTS.c.id == event.id).values(**values, **columns))


async def set_head(conn: AsyncConnection, chain: str, seq: int, digest: str) -> None:
    await conn.execute(update(HEADS).where(HEADS.c.chain == chain).values(seq=seq, hash=digest))


def tenant(owner: Any) -> uuid.UUID:
    return uuid.UUID(owner.tenant_id)
