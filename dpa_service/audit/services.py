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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, bindparam, insert, select, type_coerce, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit.anchoring import Anchors, load_anchors
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.checkpoints import Checkpoint, PublicKey
from dpa_service.audit.hashing import canonical_json, row_hash, stored_event_matches
from dpa_service.audit.models import (
    GENESIS_HASH,
    PLATFORM_CHAIN,
    AuditEvent,
    AuditEventPublic,
    AuditHead,
    ChainVerification,
)
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_int_cursor, page_of


def chain_of(tenant_id: uuid.UUID | None) -> str:
    return str(tenant_id) if tenant_id else PLATFORM_CHAIN


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


_VERIFY_BATCH = 5000
_VERIFIED = ("seq", "chain", "tenant_id", "at", "actor_id", "actor_role", "action", "target_type", "target_id", "ip",
             "user_agent", "data", "prev_hash", "hash")  # fmt: skip
_VERIFY_SQL = (
    f"SELECT {', '.join(_VERIFIED).replace('data', 'data::text')} "  # noqa: S608 - fixed column names
    "FROM audit_events WHERE chain = $1 AND seq >= $2 AND seq <= $3 ORDER BY seq"
)
# A stretch that runs to the end of the chain, whatever is stored past its head; one from seq 1 also reads
# whatever is stored before it (seq 0 or below: an insertion the walk must see). seq is a 32-bit integer.
NO_END = 2**31 - 1
_NO_START = -(2**31)


async def _chain_rows(session: AsyncSession, chain: str, first: int, last: int) -> AsyncIterator[Sequence[Any]]:
    """Events `first`..`last` of the chain in seq order as plain tuples of `_VERIFIED` (`data` as its stored JSON
    text), in batches on a server-side cursor: bounded memory however long the chain, and no ORM object per event.

    On PostgreSQL the batches come straight from the asyncpg cursor, in the session's own transaction (its tenant
    scope applies): SQLAlchemy's per-row result processing alone held verification to ~55,000 events/s."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None
        cursor = await driver.cursor(_VERIFY_SQL, chain, _NO_START if first == 1 else first, last)
        while batch := await cursor.fetch(_VERIFY_BATCH):
            yield batch
        return
    columns = [AuditEvent.__table__.c[name] for name in _VERIFIED]  # type: ignore[attr-defined]
    columns[_VERIFIED.index("data")] = type_coerce(columns[_VERIFIED.index("data")], Text)  # the text, not parsed
    seq = col(AuditEvent.seq)
    bounds = [*([seq >= first] if first > 1 else []), *([seq <= last] if last != NO_END else [])]
    rows = await session.stream(
        select(*columns)
        .where(col(AuditEvent.chain) == chain, *bounds)
        .order_by(seq)
        .execution_options(yield_per=_VERIFY_BATCH)
    )
    async for batch in rows.partitions():
        yield batch


@dataclass(frozen=True)
class Stretch:
    """What walking events `first`.. of a chain found: how many followed on each other, the first one's
    `prev_hash`, the last one's hash, and the first break as `(seq, problem, divergence)`."""

    first: int
    count: int
    first_prev: str | None
    last_hash: str | None
    broken: tuple[int, str, dict[str, Any]] | None = None


async def walk_chain(
    session: AsyncSession,
    tenant_id: uuid.UUID | None,
    *,
    first: int = 1,
    last: int = NO_END,
    prev_hash: str | None = GENESIS_HASH,
    by_seq: Mapping[int, Sequence[Checkpoint]] | None = None,
) -> Stretch:
    """Walk events `first`..`last` in seq order and stop at the first break: a gap, a broken link, an event that
    does not hash to itself or sits in another chain, or one that differs from a signed checkpoint at its seq.
    `prev_hash` None takes the first event's link on trust (a stretch after the first: whoever walked the one
    before checks that its last hash is this one's link)."""
    chain = chain_of(tenant_id)
    expected_seq, count, first_prev, digest_before = first, 0, None, prev_hash
    by_seq = by_seq or {}

    def broken(seq: int, problem: str, **divergence: Any) -> Stretch:
        return Stretch(first, count, first_prev, digest_before, (seq, problem, divergence))

    async for batch in _chain_rows(session, chain, first, last):
        for (
            seq,
            row_chain,
            row_tenant,
            at,
            actor_id,
            role,
            action,
            target_type,
            target_id,
            ip,
            agent,
            data,
            prev,
            digest,
        ) in batch:
            if seq != expected_seq:
                return broken(expected_seq, f"event {expected_seq} is missing (next stored event is {seq})")
            if count == 0:
                first_prev = prev
                digest_before = prev if digest_before is None else digest_before
            if prev != digest_before:
                return broken(seq, "prev_hash does not match the previous event's hash")
            if not stored_event_matches(row_chain, row_tenant, seq, at, actor_id, role, action, target_type,
                                        target_id, ip, agent, data, prev, digest):  # fmt: skip
                return broken(seq, "the event's content does not match its hash")
            if row_tenant != tenant_id:
                return broken(seq, "the event belongs to another chain")
            if by_seq:
                for checkpoint in by_seq.get(seq, ()):
                    if checkpoint.head_hash != digest:
                        return broken(
                            seq,
                            f"event {seq} differs from the checkpoint signed at {checkpoint.at}: expected "
                            f"{checkpoint.head_hash}, found {digest}",
                            checkpoint_ok=False, expected=checkpoint.head_hash, found=digest,
                        )  # fmt: skip
            digest_before, expected_seq, count = digest, expected_seq + 1, count + 1
    return Stretch(first, count, first_prev, digest_before)


def conclude(
    tenant_id: uuid.UUID | None, walked: Stretch, head: tuple[int, str] | None, anchors: Anchors | None
) -> ChainVerification:
    """The verdict on a whole chain walked from seq 1 (`walked`), against its head row (`(seq, hash)`, None when
    there is none) and its signed checkpoints: a tail cut off below the head, or a chain shorter than its last
    checkpoint, is a break the walk alone cannot see."""
    chain = chain_of(tenant_id)
    count, prev_hash = walked.count, walked.last_hash or GENESIS_HASH
    checked = anchors.count if anchors else 0

    def broken(seq: int, problem: str, **divergence: Any) -> ChainVerification:
        return ChainVerification(
            ok=False, events=count, head=prev_hash, chain=chain, broken_seq=seq, problem=problem,
            checkpoints=checked, **divergence,
        )  # fmt: skip

    if walked.broken is not None:
        seq, problem, divergence = walked.broken
        return broken(seq, problem, **divergence)
    head_seq, head_hash = head or (0, GENESIS_HASH)
    if (head_seq, head_hash) != (count, prev_hash):
        if head_seq > count:
            return broken(count + 1, f"events {count + 1}..{head_seq} were removed from the end of the chain")
        return broken(count, "the last event does not match the recorded head of the chain")
    last = anchors.last if anchors else None
    if last is not None and last.seq > count:
        return broken(
            count + 1,
            f"the chain ends at seq {count}, but seq {last.seq} was checkpointed at {last.at}: events "
            f"{count + 1}..{last.seq} were removed (expected {last.head_hash} at seq {last.seq}, found nothing)",
            checkpoint_ok=False, expected=last.head_hash, found=None,
        )  # fmt: skip
    if anchors and anchors.refused:
        seq, problem = anchors.refused[0]
        return broken(seq, problem, checkpoint_ok=False)
    return ChainVerification(
        ok=True, events=count, head=prev_hash, chain=chain, checkpoint_ok=True if checked else None, checkpoints=checked
    )


async def head_row(session: AsyncSession, tenant_id: uuid.UUID | None) -> tuple[int, str] | None:
    head = (
        await session.execute(select(AuditHead).where(col(AuditHead.chain) == chain_of(tenant_id)))
    ).scalar_one_or_none()
    return (head.seq, head.hash) if head else None


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
