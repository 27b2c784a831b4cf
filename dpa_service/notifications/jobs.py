"""Outbox jobs: work another domain hands to the worker in the same transaction as the change that needs it (creating
a DocuSign envelope), run by the delivery worker with retries and backoff.

A domain registers a handler per topic once at start (`register_job`) and queues work with `enqueue_job` inside its
own transaction, so the job exists exactly when the change commits. The worker (`run_due_jobs`, each round of
`dpa serve`'s in-process worker or `dpa worker`) claims due jobs under a lease (SKIP LOCKED on PostgreSQL), runs
the handler outside any transaction, then records the outcome:

* the handler returns: `done`;
* it raises `JobFailed`: `dead` at once (the other side refused; trying again cannot help);
* it raises anything else (a timeout, a 429 or 5xx): retried after `first_retry` doubling, `dead` after
  `max_attempts`. A dead job's `on_dead` runs first, so the domain can say the work failed (and why).

`dedupe_key` makes a job exist once however often the change that queued it is replayed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import Field, SQLModel, col

from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope, UTCDateTime
from dpa_service.core.ids import new_id

logger = logging.getLogger("dpa_service.worker")

JOB_LEASE = timedelta(minutes=5)
# Claimed at once, run one after another: a queued countersignature takes seconds of rendering, so a small batch
# finishes well within its lease even on a busy machine (another worker claims what is left).
JOB_BATCH = 5


class OutboxJob(SQLModel, table=True):
    __tablename__ = "outbox_jobs"
    __table_args__ = (Index("ix_outbox_jobs_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    tenant_id: uuid.UUID | None = Field(default=None, foreign_key="tenants.id", index=True)
    topic: str = Field(max_length=100)
    dedupe_key: str = Field(max_length=200, unique=True)
    payload: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    status: str = Field(default="pending", max_length=20)  # pending | done | dead
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class JobFailed(Exception):
    """Raised by a handler when retrying cannot help: the job is dead at once."""


JobHandler = Callable[[Database, dict[str, Any]], Awaitable[None]]
DeadHandler = Callable[[Database, dict[str, Any], str], Awaitable[None]]


@dataclass(frozen=True)
class JobKind:
    handler: JobHandler
    on_dead: DeadHandler | None
    max_attempts: int
    first_retry: timedelta


_KINDS: dict[str, JobKind] = {}


def register_job(
    topic: str,
    handler: JobHandler,
    *,
    on_dead: DeadHandler | None = None,
    max_attempts: int = 5,
    first_retry: timedelta = timedelta(seconds=10),
) -> None:
    """Who runs `topic` jobs (registering again replaces: a restarted app brings fresh settings)."""
    _KINDS[topic] = JobKind(handler, on_dead, max_attempts, first_retry)


def job_backoff(kind: JobKind, attempts: int) -> timedelta:
    return kind.first_retry * (2 ** max(attempts - 1, 0))


async def enqueue_job(
    session: AsyncSession, topic: str, tenant_id: uuid.UUID | None, dedupe_key: str, payload: dict[str, Any]
) -> None:
    """Queue a job in the caller's transaction (a key already queued is skipped)."""
    row = {
        "id": new_id(),
        "tenant_id": tenant_id,
        "topic": topic,
        "dedupe_key": dedupe_key,
        "payload": payload,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": utcnow(),
        "created_at": utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(insert(OutboxJob).on_conflict_do_nothing(index_elements=["dedupe_key"]), [row])


async def _claim(db: Database, limit: int) -> list[tuple[uuid.UUID, str, dict[str, Any], int, datetime]]:
    due = (
        (col(OutboxJob.status) == "pending")
        & (col(OutboxJob.next_attempt_at) <= utcnow())
        & col(OutboxJob.topic).in_(list(_KINDS))
    )
    async with db.transaction(Scope.system(), write=False) as session:
        if (await session.execute(select(col(OutboxJob.id)).where(due).limit(1))).first() is None:
            return []  # an idle worker never takes the (SQLite) write lock
    async with db.transaction(Scope.system()) as session:
        now = utcnow()
        rows = list(
            (
                await session.execute(
                    select(OutboxJob)
                    .where(due)
                    .order_by(col(OutboxJob.next_attempt_at))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for job in rows:
            job.next_attempt_at = now + JOB_LEASE
        return [(job.id, job.topic, dict(job.payload), job.attempts, now + JOB_LEASE) for job in rows]


async def _record(db: Database, job_id: uuid.UUID, lease: datetime, error: str | None, *, dead: bool) -> None:
    async with db.transaction(Scope.system()) as session:
        job = await session.get(OutboxJob, job_id, with_for_update=True)
        if job is None or job.status != "pending" or as_utc(job.next_attempt_at) != lease:
            return  # claimed again by someone else after our lease ran out
        now = utcnow()
        job.attempts += 1
        job.last_error = (error or "")[:500] or None
        if error is None:
            job.status, job.finished_at = "done", now
        elif dead:
            job.status, job.finished_at = "dead", now
        else:
            job.next_attempt_at = now + job_backoff(_KINDS[job.topic], job.attempts)


async def run_due_jobs(db: Database, *, limit: int = JOB_BATCH) -> int:
    """Run the due jobs once each; returns how many ran."""
    if not _KINDS:
        return 0
    claimed = await _claim(db, limit)
    for job_id, topic, payload, attempts, lease in claimed:
        kind = _KINDS[topic]
        try:
            await kind.handler(db, payload)
        except JobFailed as exc:
            await _give_up(db, kind, job_id, payload, lease, str(exc) or type(exc).__name__)
        except Exception as exc:  # a timeout, a 429 or 5xx: tried again with backoff until max_attempts
            reason = f"{type(exc).__name__}: {exc}"
            if attempts + 1 >= kind.max_attempts:
                await _give_up(db, kind, job_id, payload, lease, f"gave up after {attempts + 1} attempts: {reason}")
            else:
                logger.warning("job %s (%s) attempt %d failed, retried: %s", job_id, topic, attempts + 1, reason)
                await _record(db, job_id, lease, reason, dead=False)
        else:
            await _record(db, job_id, lease, None, dead=False)
    return len(claimed)


async def _give_up(
    db: Database, kind: JobKind, job_id: uuid.UUID, payload: dict[str, Any], lease: datetime, reason: str
) -> None:
    logger.error("job %s dead: %s", job_id, reason)
    if kind.on_dead is not None:
        try:
            await kind.on_dead(db, payload, reason)
        except Exception:  # the job stays pending: its lease ends and it is tried (and given up) again
            logger.exception("job %s: reporting its failure failed", job_id)
            return
    await _record(db, job_id, lease, reason, dead=True)
