"""Running the delivery worker: in-process rounds by default, a Redis-backed SAQ queue when REDIS_URL is set.

Without Redis each worker (the task inside `dpa serve`, or `dpa worker`) loops: fan the outbox out, claim the due
webhook deliveries, send them, record the outcome.

Outbox jobs (`notifications.jobs`: creating a DocuSign envelope, executing a queued countersignature) run in a
loop of their own in every worker, so a job that takes seconds never holds up e-mail and webhooks.

With Redis every worker process runs two things:

* a dispatcher that fans the outbox out, leases due e-mail and webhook deliveries in the database and enqueues
  them as SAQ jobs of up to 100 ids (job key: the batch's lease, so a dispatcher's retry cannot queue the same
  batch twice);
* an SAQ consumer that takes jobs from Redis, sends them and records the outcome.

The database stays the source of truth: a lease means no other dispatcher claims the delivery, and recording
checks the delivery is still pending, so each event is delivered once however many workers run. A job lost
with Redis comes back when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from saq import Queue, Worker

from dpa_service.core.db import Database
from dpa_service.core.mailer import Mailer
from dpa_service.notifications.jobs import run_due_jobs
from dpa_service.notifications.models import MailDelivery, WebhookDelivery
from dpa_service.notifications.worker import (
    BATCH,
    LEASE,
    MAIL_BATCH,
    Lease,
    claim_due,
    deliver,
    fan_out,
    run_once,
    send_mails,
)

logger = logging.getLogger("dpa_service.worker")

MAX_QUEUED_JOBS = 8
SHUTDOWN_GRACE_SECONDS = 5
IDLE_SECONDS = 1.0


class _Consumer(Worker):
    # The process that hosts us (uvicorn, or `dpa worker`) owns SIGINT/SIGTERM and cancels us on shutdown.
    SIGNALS: list[signal.Signals] = []


@dataclass
class WorkerContext:
    db: Database
    mailer: Mailer
    secret: bytes
    allow_private: bool
    client: httpx.AsyncClient


def http_client() -> httpx.AsyncClient:
    # No redirects: a receiver must not bounce a signed event to an address the SSRF check never saw.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(10.0, connect=5.0),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=40, max_keepalive_connections=40),
    )


async def deliver_batch(ctx: dict[str, Any], *, ids: list[str], lease_until: str) -> int:
    """The SAQ job: send one leased batch and record what happened."""
    state: WorkerContext = ctx["dpa"]
    lease = Lease.of_job(ids, lease_until)
    sent = await deliver(state.db, lease, state.secret, allow_private=state.allow_private, client=state.client)
    logger.info("delivered a batch of %d webhook(s)", sent)
    return sent


async def send_mail_batch(ctx: dict[str, Any], *, ids: list[str], lease_until: str) -> int:
    """The SAQ job for e-mail: send one leased batch and record what happened."""
    state: WorkerContext = ctx["dpa"]
    return await send_mails(state.db, Lease.of_job(ids, lease_until), state.mailer)


async def dispatch_once(state: WorkerContext, queue: Queue) -> tuple[int, int]:
    """Fan out the outbox, then lease due deliveries and queue them; returns (messages, deliveries queued)."""
    handled = await fan_out(state.db)
    queued = 0
    for table, job, size in ((MailDelivery, "send_mail_batch", MAIL_BATCH), (WebhookDelivery, "deliver_batch", BATCH)):
        # Keep the backlog in Redis short, so a batch is sent long before its lease ends (a job that starts
        # late sends only until its lease's deadline anyway).
        while await queue.count("queued") < MAX_QUEUED_JOBS and (
            lease := await claim_due(state.db, table=table, limit=size)
        ):
            key = hashlib.sha256(f"{job}:{lease.until.isoformat()}:{','.join(map(str, lease.ids))}".encode())
            await queue.enqueue(
                job,
                ids=[str(i) for i in lease.ids],
                lease_until=lease.until.isoformat(),
                key=f"batch:{key.hexdigest()[:32]}",
                timeout=int(LEASE.total_seconds()) - 30,  # give up before the lease ends and someone else claims it
                retries=0,  # a failed job's deliveries are claimed again when their lease ends
            )
            queued += len(lease.ids)
    return handled, queued


# After a round that found only a trickle of work, a pause this long lets the next round find a batch: under a
# steady stream of small changes, back-to-back rounds (a fan-out query and a lease transaction each) cost the
# worker most of its CPU for a few messages apiece. Deliveries wait at most this much longer.
TRICKLE_SECONDS = 0.1


async def _forever(step: Callable[[], Awaitable[int]], every: float, what: str) -> None:
    """Run rounds: after an idle one wait `every`, after a small one `TRICKLE_SECONDS`, after a full one none."""
    while True:
        try:
            work = await step()
        except Exception:  # the next round retries; a worker must not die of one bad round
            logger.exception("%s failed", what)
            work = 0
        if work == 0:
            await asyncio.sleep(every)
        elif work < BATCH:
            await asyncio.sleep(min(every, TRICKLE_SECONDS))


async def run_forever(
    db: Database,
    mailer: Mailer,
    secret: bytes,
    *,
    allow_private: bool,
    redis_url: str | None,
    queue_name: str = "dpa-webhook-deliveries",
    every: float = IDLE_SECONDS,
    concurrency: int = 4,
    on_round: Callable[[int, int], None] | None = None,
) -> None:
    """The worker loop of `dpa serve` and `dpa worker`, with or without Redis; cancel it to stop.

    Outbox jobs run in a loop of their own: one can take seconds (executing a queued countersignature renders and
    seals), and e-mail and webhooks must not wait for it."""
    jobs = asyncio.create_task(_forever(functools.partial(run_due_jobs, db), every, "outbox jobs"))
    try:
        await _deliver_forever(
            db, mailer, secret, allow_private=allow_private, redis_url=redis_url, queue_name=queue_name,
            every=every, concurrency=concurrency, on_round=on_round,
        )  # fmt: skip
    finally:
        jobs.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await jobs


async def _deliver_forever(
    db: Database,
    mailer: Mailer,
    secret: bytes,
    *,
    allow_private: bool,
    redis_url: str | None,
    queue_name: str,
    every: float,
    concurrency: int,
    on_round: Callable[[int, int], None] | None,
) -> None:
    if not redis_url:

        async def local_round() -> int:
            handled, attempted = await run_once(db, mailer, secret, allow_private=allow_private, jobs=False)
            if on_round and (handled or attempted):
                on_round(handled, attempted)
            return handled + attempted

        await _forever(local_round, every, "outbox delivery")
        return

    async with http_client() as client:
        state = WorkerContext(db, mailer, secret, allow_private, client)
        queue = Queue.from_url(redis_url, name=queue_name)
        await queue.connect()

        async def startup(ctx: dict[str, Any]) -> None:
            ctx["dpa"] = state

        consumer = _Consumer(
            queue,
            functions=[deliver_batch, send_mail_batch],
            concurrency=concurrency,
            startup=startup,
            shutdown_grace_period_s=SHUTDOWN_GRACE_SECONDS,  # let a batch in flight finish and be recorded
        )

        async def dispatch_round() -> int:
            handled, queued = await dispatch_once(state, queue)
            if on_round and (handled or queued):
                on_round(handled, queued)
            return handled + queued

        consuming = asyncio.create_task(consumer.start())
        try:
            await _forever(dispatch_round, every, "outbox dispatch")
        finally:
            await consumer.stop()
            consuming.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await consuming
            await queue.disconnect()
