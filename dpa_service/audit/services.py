"""Append to and verify the hash-chained audit log.

Each event stores `prev_hash` and `hash = sha256(canonical_json(event) + prev_hash)`; `seq` counts from 1
without gaps per chain. The chain's head row (last seq and hash) is locked while appending, so concurrent
writers queue, and it also reveals a deleted or appended tail. Triggers in the database refuse UPDATE and
DELETE on events and any rewind of a head; `verify_chain` finds any change made around them, and with the
chain's signed checkpoints (`anchoring`) also a chain rewritten whole, its hashes and head recomputed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit.anchoring import Anchors, load_anchors
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.checkpoints import PublicKey
from dpa_service.audit.hashing import canonical_json, row_hash
from dpa_service.audit.models import (
    GENESIS_HASH,
    PLATFORM_CHAIN,
    AuditEvent,
    AuditEventPublic,
    AuditHead,
    ChainVerification,
    chain_of,
)
from dpa_service.audit.walk import conclude, head_row, walk_chain
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_int_cursor, page_of


async def _lock_head(session: AsyncSession, chain: str, tenant_id: uuid.UUID | None) -> AuditHead:
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        upsert(AuditHead)
        .values(chain=chain, tenant_id=tenant_id, seq=0, hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["chain"])
    )
    head = (
        await session.execute(
            select(AuditHead)
            .where(col(AuditHead.chain) == chain)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    return head


def _next_row(
    chain: str,
    seq: int,
    prev_hash: str,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    *,
    tenant_id: uuid.UUID | None,
    data: dict[str, Any] | None,
    at: datetime,
) -> dict[str, Any]:
    """The next event of a chain whose head is (`seq`, `prev_hash`), hashed, as a row: the one place an event is
    built (`record` makes it an `AuditEvent`, `record_many` inserts the rows as they are)."""
    row: dict[str, Any] = {
        "id": new_id(),
        "chain": chain,
        "tenant_id": tenant_id,
        "seq": seq + 1,
        "at": at,
        "actor_id": actor.user_id,
        "actor_role": actor.role,
        "action": action,
        "target_type": target_type,
        "target_id": str(target_id) if target_id is not None else None,
        "ip": actor.ip,
        "user_agent": actor.user_agent,
        # Round-trip through JSON so the hashed form is exactly what the database gives back.
        "data": json.loads(canonical_json(data or {})),
        "prev_hash": prev_hash,
    }
    row["hash"] = row_hash(row, prev_hash)
    return row


def _append(
    head: AuditHead,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    *,
    tenant_id: uuid.UUID | None,
    data: dict[str, Any] | None,
    at: datetime,
) -> AuditEvent:
    """The next event of `head`'s chain, hashed, with the head moved on to it (the caller adds it to the session)."""
    row = _next_row(head.chain, head.seq, head.hash, actor, action, target_type, target_id, tenant_id=tenant_id,
                    data=data, at=at)  # fmt: skip
    event = AuditEvent(**row)
    head.seq, head.hash = event.seq, event.hash
    return event


async def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    *,
    tenant_id: uuid.UUID | None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the tenant's chain (or the platform chain) inside the caller's transaction."""
    chain = chain_of(tenant_id)
    head = await _lock_head(session, chain, tenant_id)
    event = _append(head, actor, action, target_type, target_id, tenant_id=tenant_id, data=data, at=utcnow())
    session.add(event)
    await session.flush()
    return event


_HEADS_PER_QUERY = 1000


async def record_many(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target_type: str,
    events: Sequence[tuple[uuid.UUID | None, uuid.UUID | str | None, dict[str, Any] | None]],
) -> int:
    """Append one event per `(tenant_id, target_id, data)`, each to its tenant's chain, in a handful of statements
    however many there are: a fan-out to thousands of tenants cannot afford `record`'s three round trips per event.

    Same chain rules as `record` (the heads are locked, in chain order, so two fan-outs over the same tenants
    queue instead of deadlocking); events for one chain follow each other in the order given."""
    if not events:
        return 0
    # The caller's pending ORM changes go first: the rows these events describe, and any head `record` moved in
    # this transaction (a stale dirty head flushed after these statements would rewind its chain).
    await session.flush()
    tenants = {chain_of(tenant_id): tenant_id for tenant_id, _, _ in events}
    chains = sorted(tenants)
    table, head_table = AuditEvent.__table__, AuditHead.__table__  # type: ignore[attr-defined]
    upsert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        upsert(head_table).on_conflict_do_nothing(index_elements=["chain"]),
        [{"chain": chain, "tenant_id": tenants[chain], "seq": 0, "hash": GENESIS_HASH} for chain in chains],
    )
    # Core statements, not ORM objects: 10,000 events are 10,000 rows, not 10,000 tracked instances (a campaign's
    # fan-out spent most of its time building and flushing them). Heads already in the session are read again
    # with populate_existing wherever they are locked next (`_lock_head`).
    heads: dict[str, tuple[int, str]] = {}
    for start in range(0, len(chains), _HEADS_PER_QUERY):
        found = await session.execute(
            select(head_table.c.chain, head_table.c.seq, head_table.c.hash)
            .where(head_table.c.chain.in_(chains[start : start + _HEADS_PER_QUERY]))
            .order_by(head_table.c.chain)
            .with_for_update()
        )
        heads.update((chain, (seq, digest)) for chain, seq, digest in found.all())
    now = utcnow()
    rows = []
    for tenant_id, target_id, data in events:
        chain = chain_of(tenant_id)
        row = _next_row(chain, *heads[chain], actor, action, target_type, target_id, tenant_id=tenant_id, data=data,
                        at=now)  # fmt: skip
        heads[chain] = (row["seq"], row["hash"])
        rows.append(row)
    for start in range(0, len(rows), _HEADS_PER_QUERY):
        await session.execute(insert(table), rows[start : start + _HEADS_PER_QUERY])
    moved = [{"b_chain": chain, "b_seq": heads[chain][0], "b_hash": heads[chain][1]} for chain in chains]
    await session.execute(
        update(head_table)
        .where(head_table.c.chain == bindparam("b_chain"))
        .values(seq=bindparam("b_seq"), hash=bindparam("b_hash")),
        moved,
    )
    return len(events)


async def _events(
    session: AsyncSession, tenant_id: uuid.UUID | None, *, after_seq: int, limit: int
) -> Sequence[AuditEvent]:
    query = (
        select(AuditEvent)
        .where(col(AuditEvent.chain) == chain_of(tenant_id), col(AuditEvent.seq) > after_seq)
        .order_by(col(AuditEvent.seq))
        .limit(limit)
    )
    return (await session.execute(query)).scalars().all()


async def verify_chain(
    session: AsyncSession, tenant_id: uuid.UUID | None, anchors: Anchors | None = None
) -> ChainVerification:
    """Walk the chain in seq order and report the first break (`walk_chain`, then `conclude`). The checkpoints
    catch what the database alone cannot: a chain rewritten with every later hash and its head recomputed."""
    walked = await walk_chain(session, tenant_id, by_seq=anchors.by_seq if anchors else None)
    return conclude(tenant_id, walked, await head_row(session, tenant_id), anchors)


def chain_scope(principal: Principal, tenant_id: uuid.UUID | None) -> tuple[uuid.UUID | None, Scope]:
    """Subscribers always read their own chain; staff read the platform chain or narrow to one tenant's."""
    if not principal.is_staff:
        return principal.tenant_id, principal.scope
    if tenant_id is not None:
        return tenant_id, Scope.tenant(tenant_id)
    return None, principal.scope


async def list_events(
    db: Database, principal: Principal, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[AuditEventPublic]:
    chain_tenant, scope = chain_scope(principal, tenant_id)
    async with db.transaction(scope, write=False) as session:
        rows = await _events(session, chain_tenant, after_seq=decode_int_cursor(cursor), limit=limit + 1)
    return page_of(
        rows, limit, lambda e: AuditEventPublic.model_validate(e, from_attributes=True), lambda e: str(e.seq)
    )


async def verify(
    db: Database, scope: Scope, tenant_id: uuid.UUID | None, anchors: Anchors | None = None
) -> ChainVerification:
    """Walk one chain (a tenant's, or the platform's with `tenant_id` None) and report the first break."""
    async with db.transaction(scope, write=False) as session:
        return await verify_chain(session, tenant_id, anchors)


async def verify_for(
    db: Database,
    principal: Principal,
    tenant_id: uuid.UUID | None,
    *,
    files: CheckpointFiles | None = None,
    keys: Mapping[str, PublicKey] | None = None,
) -> ChainVerification:
    """The caller's chain (see `chain_scope`), checked against its signed checkpoints in `files` when given."""
    chain_tenant, scope = chain_scope(principal, tenant_id)
    anchors = await load_anchors(files, chain_tenant, keys or {}) if files is not None else None
    return await verify(db, scope, chain_tenant, anchors)


async def verify_chains(
    db: Database,
    tenant_ids: Iterable[uuid.UUID],
    files: CheckpointFiles,
    keys: Mapping[str, PublicKey],
    *,
    everything: bool = True,
) -> AsyncIterator[ChainVerification]:
    """Each tenant's chain against its checkpoints and, with `everything`, the platform chain and the chains only
    the checkpoints still know (a tenant gone from the database): what `dpa audit verify` and an integrity check
    run. One chain at a time, so memory stays bounded however many tenants there are."""
    for tenant_id in chains_to_verify(tenant_ids, files, everything=everything):
        yield await verify(db, Scope.system(), tenant_id, await load_anchors(files, tenant_id, keys))


def chains_to_verify(
    tenant_ids: Iterable[uuid.UUID], files: CheckpointFiles, *, everything: bool
) -> list[uuid.UUID | None]:
    """The chains `verify_chains` walks, in its order: the platform's first (None), then the tenants'."""
    known = set(tenant_ids)
    if everything:
        known |= {uuid.UUID(chain) for chain in files.chains() if chain != PLATFORM_CHAIN}
    platform: list[uuid.UUID | None] = [None] if everything else []
    return [*platform, *sorted(known)]


async def head_of(session: AsyncSession, tenant_id: uuid.UUID | None) -> tuple[int, str]:
    """The chain's head now, `(seq, hash)`: `(0, GENESIS_HASH)` before its first event."""
    return await head_row(session, tenant_id) or (0, GENESIS_HASH)
