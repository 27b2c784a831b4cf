"""Walking a stretch of an audit chain, and the verdict on a whole chain: what `services.verify_chain` and the
forked processes of `parallel` share (one event at a time, in seq order, in bounded memory)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit.anchoring import Anchors
from dpa_service.audit.checkpoints import Checkpoint
from dpa_service.audit.hashing import stored_event_matches
from dpa_service.audit.models import GENESIS_HASH, AuditEvent, AuditHead, ChainVerification, chain_of

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
