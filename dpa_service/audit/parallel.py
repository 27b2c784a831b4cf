"""`dpa audit verify` and the integrity check on every core: chains cut into stretches walked by forked
processes at once, then stitched in order.

Each event's hash covers its `prev_hash`, so a stretch of a chain can be walked on its own; what joins two
stretches is that the later one's first link is the earlier one's last hash, which the parent checks. Only a
clean chain is judged from its stretches: at any break the parent walks that chain again from seq 1 in order
(`services.verify`), so the report (the first divergence, its seq and the hashes) is the one the one-process
walk gives, word for word.
"""

from __future__ import annotations

import asyncio
import gc
import math
import multiprocessing
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import TracebackType

from sqlalchemy import select
from sqlmodel import col

from dpa_service.audit import services, walk
from dpa_service.audit.anchoring import Anchors, load_anchors
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.checkpoints import Checkpoint, PublicKey
from dpa_service.audit.models import GENESIS_HASH, AuditHead, ChainVerification, chain_of
from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import DatabaseSettings

# A stretch long enough that a process's start on it (one transaction, one query) is noise beside the walk; short
# chains travel together in one job of about this many events.
STRETCH_EVENTS = 50_000
JOB_CHAINS = 500


@dataclass(frozen=True)
class _Part:
    tenant_id: uuid.UUID | None
    first: int
    last: int
    by_seq: dict[int, list[Checkpoint]]
    events: int  # about how many it holds (the open-ended last stretch: up to the head), to fill jobs evenly


@dataclass
class _Planned:
    tenant_id: uuid.UUID | None
    anchors: Anchors
    head: tuple[int, str] | None
    parts: list[_Part]


# --- in each forked process ---------------------------------------------------------------------------------

_process: tuple[asyncio.AbstractEventLoop, Database] | None = None
_database: DatabaseSettings | None = None


def _start(database: DatabaseSettings) -> None:
    """A worker's first step: the inherited heap is frozen, so the collections the walk's allocations trigger do
    not rescan it (that was a fifth of the time per event)."""
    global _database
    _database = database
    gc.freeze()


def _walk(parts: Sequence[_Part]) -> list[walk.Stretch]:
    global _process
    if _process is None:
        assert _database is not None
        _process = (asyncio.new_event_loop(), Database(_database))
    loop, db = _process
    return loop.run_until_complete(_walk_parts(db, parts))


async def _walk_parts(db: Database, parts: Sequence[_Part]) -> list[walk.Stretch]:
    async with db.transaction(Scope.system(), write=False) as session:
        return [
            await walk.walk_chain(
                session,
                part.tenant_id,
                first=part.first,
                last=part.last,
                prev_hash=GENESIS_HASH if part.first == 1 else None,
                by_seq=part.by_seq,
            )
            for part in parts
        ]


# --- in the parent ------------------------------------------------------------------------------------------


def _stitched(planned: _Planned, stretches: Sequence[walk.Stretch]) -> walk.Stretch | None:
    """The whole chain's walk from its stretches, or None when anything in them or between them is off."""
    count, last_hash = 0, None
    for part, stretch in zip(planned.parts, stretches, strict=True):
        if stretch.broken is not None or (stretch.count and count and stretch.first_prev != last_hash):
            return None
        if part is not planned.parts[-1] and stretch.count != part.last - part.first + 1:
            return None  # a gap (or a cut) inside the chain: the in-order walk names it
        if stretch.count:
            count, last_hash = count + stretch.count, stretch.last_hash
    return walk.Stretch(1, count, GENESIS_HASH if count else None, last_hash)


def _plan(tenant_id: uuid.UUID | None, anchors: Anchors, head: tuple[int, str] | None, per: int) -> _Planned:
    """Stretches of about `per` events up to the longer of the head and the last checkpoint; the last stretch
    runs on to whatever is stored past them."""
    last = anchors.last
    end = max(head[0] if head else 0, last.seq if last else 0)
    cuts = max(1, math.ceil(end / per))
    size = math.ceil(end / cuts) if end else 1
    parts = []
    for index in range(cuts):
        first = index * size + 1
        final = walk.NO_END if index == cuts - 1 else first + size - 1
        by_seq = {seq: found for seq, found in anchors.by_seq.items() if first <= seq <= final}
        parts.append(_Part(tenant_id, first, final, by_seq, max(1, min(final, end) - first + 1)))
    return _Planned(tenant_id, anchors, head, parts)


class ParallelVerifier:
    """A pool of forked processes that walk chains, made before the command's event loop and database (a fork
    inherits neither a running loop nor an open connection). With one process it forks nothing."""

    def __init__(self, database: DatabaseSettings, processes: int | None = None) -> None:
        self.processes = max(1, processes if processes is not None else os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        if self.processes > 1:
            self._pool = ProcessPoolExecutor(
                self.processes, mp_context=multiprocessing.get_context("fork"), initializer=_start,
                initargs=(database,),
            )  # fmt: skip
            # ProcessPoolExecutor forks on the first job: start them all now, while nothing is open.
            try:
                for started in [self._pool.submit(os.getpid) for _ in range(self.processes)]:
                    started.result()
            except BaseException:
                self._pool.shutdown(cancel_futures=True)
                raise

    def __enter__(self) -> ParallelVerifier:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    async def verify_chains(
        self,
        db: Database,
        tenant_ids: Iterable[uuid.UUID],
        files: CheckpointFiles,
        keys: Mapping[str, PublicKey],
        *,
        everything: bool = True,
    ) -> AsyncIterator[ChainVerification]:
        """What `services.verify_chains` yields, in the same order, walked on every process."""
        if self._pool is None:
            async for result in services.verify_chains(db, tenant_ids, files, keys, everything=everything):
                yield result
            return
        order = services.chains_to_verify(tenant_ids, files, everything=everything)
        chunk = JOB_CHAINS * self.processes * 2  # chains whose heads and checkpoints are held at once
        for start in range(0, len(order), chunk):
            chains = order[start : start + chunk]
            heads = await _heads(db, [chain_of(tenant_id) for tenant_id in chains])
            wave: list[_Planned] = []
            events = 0
            for tenant_id in chains:
                head = heads.get(chain_of(tenant_id))
                wave.append(_plan(tenant_id, await load_anchors(files, tenant_id, keys), head, STRETCH_EVENTS))
                events += max(head[0] if head else 0, 1)
                if events >= STRETCH_EVENTS * self.processes * 4:
                    async for result in self._wave(db, wave):
                        yield result
                    wave, events = [], 0
            async for result in self._wave(db, wave):
                yield result

    async def _wave(self, db: Database, wave: list[_Planned]) -> AsyncIterator[ChainVerification]:
        assert self._pool is not None
        loop = asyncio.get_running_loop()
        jobs: list[list[_Part]] = [[]]
        weight = 0
        for planned in wave:
            for part in planned.parts:
                if jobs[-1] and (weight + part.events > STRETCH_EVENTS or len(jobs[-1]) >= JOB_CHAINS):
                    jobs.append([])
                    weight = 0
                jobs[-1].append(part)
                weight += part.events
        done = await asyncio.gather(*(loop.run_in_executor(self._pool, _walk, job) for job in jobs if job))
        stretches = iter([stretch for job in done for stretch in job])
        for planned in wave:
            walked = _stitched(planned, [next(stretches) for _ in planned.parts])
            result = walk.conclude(planned.tenant_id, walked, planned.head, planned.anchors) if walked else None
            if result is None or not result.ok:  # the report names the first divergence as the in-order walk does
                result = await services.verify(db, Scope.system(), planned.tenant_id, planned.anchors)
            yield result


async def _heads(db: Database, chains: Sequence[str]) -> dict[str, tuple[int, str]]:
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(col(AuditHead.chain), col(AuditHead.seq), col(AuditHead.hash)).where(
                col(AuditHead.chain).in_(chains)
            )
        )
        return {chain: (seq, digest) for chain, seq, digest in rows}
