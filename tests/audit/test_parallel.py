"""`dpa audit verify` on every core: chains cut into stretches walked by forked processes must reach the verdict
the one-process walk reaches, word for word, on a clean chain and on each kind of tampering, wherever the tampering
falls against the stretches' edges."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dpa_service.audit import parallel, services, walk
from dpa_service.audit.anchoring import seal_public_keys
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.models import AuditEvent, ChainVerification
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.documents.seal import SealConfig
from tests.audit.checkpoint_support import (
    EVENTS,
    as_owner_without_triggers,
    checkpoint_round,
    events_of,
    overwrite,
    rehash,
    set_head,
    tenant,
)
from tests.helpers.api import Api

EVENTS_IN_CHAIN = 11
STRETCH = 3  # stretches 1-3, 4-6, 7-9 and 10 onwards


async def _chain(admin: Api) -> Api:
    owner = await admin.new_tenant()
    for _ in range(EVENTS_IN_CHAIN - 1):
        await owner.post("/api-keys", {"name": "k"})
    return owner


async def _verdicts(db: Database, settings: Settings, tenant_id: uuid.UUID) -> tuple[list[dict], list[dict]]:
    files = CheckpointFiles(settings.checkpoints_path)
    keys = seal_public_keys(SealConfig.from_settings(settings), ())
    in_order = [r.model_dump() async for r in services.verify_chains(db, [tenant_id], files, keys, everything=False)]
    with parallel.ParallelVerifier(settings.database, processes=2) as verifier:
        walked = verifier.verify_chains(db, [tenant_id], files, keys, everything=False)
        on_every_core = [r.model_dump() async for r in walked]
    return in_order, on_every_core


def test_chains_are_cut_into_stretches_the_last_open_ended() -> None:
    from dpa_service.audit.anchoring import Anchors

    planned = parallel._plan(None, Anchors("platform"), (10, "h"), 3)
    assert [(p.first, p.last) for p in planned.parts] == [(1, 3), (4, 6), (7, 9), (10, walk.NO_END)]
    assert [(p.first, p.last) for p in parallel._plan(None, Anchors("platform"), None, 3).parts] == [(1, walk.NO_END)]


async def test_a_clean_chain_is_judged_from_its_stretches(
    admin: Api, db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await _chain(admin)
    monkeypatch.setattr(parallel, "STRETCH_EVENTS", STRETCH)
    files = CheckpointFiles(settings.checkpoints_path)
    in_order = [r async for r in services.verify_chains(db, [tenant(owner)], files, {}, everything=False)]

    async def no_second_walk(*args: object) -> ChainVerification:
        raise AssertionError("a clean chain was walked again in the parent")

    monkeypatch.setattr(parallel.services, "verify", no_second_walk)
    with parallel.ParallelVerifier(settings.database, processes=2) as verifier:
        found = [r async for r in verifier.verify_chains(db, [tenant(owner)], files, {}, everything=False)]
    assert [r.model_dump() for r in found] == [r.model_dump() for r in in_order]
    assert found[0].ok and found[0].events == EVENTS_IN_CHAIN


async def _stored(conn: AsyncConnection, owner: Api, seq: int) -> AuditEvent:
    query = select(EVENTS).where(EVENTS.c.chain == owner.tenant_id, EVENTS.c.seq == seq)
    return AuditEvent(**(await conn.execute(query)).one()._mapping)


def _delete(seq: int) -> Callable[[AsyncConnection, Api], Awaitable[None]]:
    async def tamper(conn: AsyncConnection, owner: Api) -> None:
        await conn.execute(delete(EVENTS).where(EVENTS.c.chain == owner.tenant_id, EVENTS.c.seq == seq))

    return tamper


def _edited(seq: int) -> Callable[[AsyncConnection, Api], Awaitable[None]]:
    async def tamper(conn: AsyncConnection, owner: Api) -> None:
        event = await _stored(conn, owner, seq)
        event.action = "api_key.deleted"
        await overwrite(conn, event)

    return tamper


def _relinked(seq: int) -> Callable[[AsyncConnection, Api], Awaitable[None]]:
    """The event rewritten and rehashed, the rest of the chain left as it was: the next link breaks."""

    async def tamper(conn: AsyncConnection, owner: Api) -> None:
        event = await _stored(conn, owner, seq)
        event.action = "api_key.deleted"
        (rehashed,) = rehash([event], event.prev_hash)
        await overwrite(conn, rehashed)

    return tamper


async def _past_the_head(conn: AsyncConnection, owner: Api) -> None:
    """A well-formed 12th event appended behind the head's back (the head still says 11)."""
    last = await _stored(conn, owner, EVENTS_IN_CHAIN)
    extra = AuditEvent(**{**last.model_dump(), "id": uuid.uuid4(), "seq": EVENTS_IN_CHAIN + 1, "action": "forged"})
    (extra,) = rehash([extra], last.hash)
    await conn.execute(insert(EVENTS).values(**extra.model_dump()))


async def _rewritten_with_the_head(conn: AsyncConnection, owner: Api) -> None:
    """Event 5 changed and every later hash and the head recomputed: only the checkpoint can tell."""
    events = [await _stored(conn, owner, seq) for seq in range(1, EVENTS_IN_CHAIN + 1)]
    events[4].action = "api_key.deleted"
    forged = rehash(events[4:], events[3].hash)
    for event in forged:
        await overwrite(conn, event)
    await set_head(conn, events[0].chain, EVENTS_IN_CHAIN, forged[-1].hash)


async def _moved(conn: AsyncConnection, owner: Api) -> None:
    await conn.execute(
        text("UPDATE audit_events SET tenant_id = NULL WHERE chain = :chain AND seq = 5"), {"chain": owner.tenant_id}
    )


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_edited(4), id="edited-first-of-a-stretch"),
        pytest.param(_edited(5), id="edited-inside-a-stretch"),
        pytest.param(_edited(10), id="edited-in-the-open-ended-stretch"),
        pytest.param(_relinked(3), id="rehashed-last-of-a-stretch"),
        pytest.param(_delete(3), id="deleted-last-of-a-stretch"),
        pytest.param(_delete(4), id="deleted-first-of-a-stretch"),
        pytest.param(_delete(11), id="deleted-tail"),
        pytest.param(_moved, id="moved-to-another-chain"),
        pytest.param(_past_the_head, id="appended-past-the-head"),
        pytest.param(_rewritten_with_the_head, id="rewritten-with-hashes-and-head-recomputed"),
    ],
)
async def test_tampering_gets_the_in_order_report(
    admin: Api,
    db: Database,
    settings: Settings,
    owner_engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    tamper: Callable[[AsyncConnection, Api], Awaitable[None]],
) -> None:
    owner = await _chain(admin)
    assert len(await events_of(db, owner.tenant_id or "")) == EVENTS_IN_CHAIN
    await checkpoint_round(db, settings)  # the chain as it stood, signed (seq 11)
    async with as_owner_without_triggers(owner_engine) as conn:
        await tamper(conn, owner)
    monkeypatch.setattr(parallel, "STRETCH_EVENTS", STRETCH)
    in_order, on_every_core = await _verdicts(db, settings, tenant(owner))
    assert in_order[0]["ok"] is False and in_order[0]["broken_seq"] is not None
    assert on_every_core == in_order
