"""Delivers the outbox: e-mail to each tenant's owners and admins (or, for a notice to the processor, to its
staff of one role), and signed webhooks, both with retries.

Runs inside `dpa serve` (a background task) or alone as `dpa worker`. Several workers may run at once: rows
are claimed with SKIP LOCKED (PostgreSQL) or under SQLite's single writer, and no HTTP call is ever made
inside a transaction. A failing webhook or e-mail is retried with exponential backoff (1 minute doubling, at
most 6 hours apart) for 3 days, then dead-lettered; an admin can replay a webhook.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from cryptography.exceptions import InvalidTag
from prometheus_client import Counter
from sqlalchemy import Select, select
from sqlalchemy.exc import DBAPIError
from sqlmodel import col

from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import Mail, Mailer
from dpa_service.notifications.fanout import EMAIL_ONLY as EMAIL_ONLY
from dpa_service.notifications.fanout import RETRY_WINDOW as RETRY_WINDOW
from dpa_service.notifications.fanout import any_row as _any
from dpa_service.notifications.fanout import event_body as event_body
from dpa_service.notifications.fanout import fan_out as fan_out
from dpa_service.notifications.jobs import run_due_jobs
from dpa_service.notifications.models import DeliveryStatus, MailDelivery, WebhookDelivery, WebhookEndpoint
from dpa_service.notifications.ssrf import UnsafeUrl, destination
from dpa_service.notifications.webhooks import open_secret, signature_header

logger = logging.getLogger("dpa_service.worker")

FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY_GAP = timedelta(hours=6)
# A batch stops LEASE_MARGIN before its lease ends (attempts still running are abandoned and retried), so a
# lease never lapses while its delivery is being sent.
LEASE = timedelta(minutes=5)
BATCH = 100  # deliveries per lease (and per queued job)
CONCURRENCY = 10
ATTEMPT_TIMEOUT = 15.0  # seconds for one webhook or e-mail, connection included
LEASE_MARGIN = timedelta(seconds=30)  # a batch stops this long before its lease ends
MAIL_BATCH = 20  # e-mails per lease: MAIL_CONCURRENCY-wide waves of ATTEMPT_TIMEOUT fit well inside it
MAIL_CONCURRENCY = 4

# Counted where the attempt is recorded, in whichever process does it (`dpa serve`'s in-process worker, or
# `dpa worker --metrics-port`); the backlog gauges on /metrics come from the database and cover every worker.
DELIVERY_ATTEMPTS = Counter(
    "dpa_delivery_attempts",
    "Webhook and e-mail delivery attempts recorded, by outcome (delivered, failed: retried later, dead: given up)",
    ["kind", "outcome"],
)


def backoff(attempts: int) -> timedelta:
    return min(FIRST_RETRY * (2 ** max(attempts - 1, 0)), MAX_RETRY_GAP)


@dataclass(frozen=True)
class Claimed:
    id: uuid.UUID
    url: str
    sealed: bytes
    body: str
    message_id: uuid.UUID
    event: str
    endpoint_deleted: bool = False


Deliveries = type[WebhookDelivery] | type[MailDelivery]
_Delivery = TypeVar("_Delivery", bound=WebhookDelivery | MailDelivery)


def _rows_of(table: type[_Delivery]) -> Select[_Delivery]:
    """select(table), typed as the table's own rows (a plain select() of a union of tables types them as SQLModel)."""
    return select(table)


def _due(table: Deliveries, now: Any) -> Any:
    return (table.status == DeliveryStatus.PENDING) & (table.next_attempt_at <= now)


@dataclass(frozen=True)
class Lease:
    ids: list[uuid.UUID]
    until: datetime

    @classmethod
    def of_job(cls, ids: list[str], until: str) -> Lease:
        """The lease a queued job carries (ids and the lease's end, as strings)."""
        return cls([uuid.UUID(i) for i in ids], datetime.fromisoformat(until))

    def holds(self, row: WebhookDelivery | MailDelivery) -> bool:
        """Still ours: not claimed again by someone else after this lease lapsed."""
        return as_utc(row.next_attempt_at) == self.until


async def claim_due(db: Database, *, table: Deliveries = WebhookDelivery, limit: int = BATCH) -> Lease | None:
    """Lease due deliveries (others skip them until the lease ends).

    A claimed delivery that is never recorded (a worker died, a queued job was lost) is due again when its lease
    ends, so nothing is dropped. Whoever sends checks the lease is still the one it was given, so a delivery
    claimed again after its lease ended is sent by the new holder only."""
    if not await _any(db, select(col(table.id)).where(_due(table, utcnow()))):
        return None
    async with db.transaction(Scope.system()) as session:
        now = utcnow()
        rows = list(
            (
                await session.execute(
                    _rows_of(table)
                    .where(_due(table, now))
                    .order_by(col(table.next_attempt_at))
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).scalars()
        )
        for delivery in rows:
            delivery.next_attempt_at = now + LEASE
    return Lease([delivery.id for delivery in rows], now + LEASE) if rows else None


async def load_claimed(db: Database, lease: Lease) -> list[Claimed]:
    """What sending needs, read fresh (a queued job carries ids only: no secrets or payloads in Redis)."""
    async with db.transaction(Scope.system(), write=False) as session:
        rows = (
            await session.execute(
                select(WebhookDelivery, WebhookEndpoint)
                .join(WebhookEndpoint, col(WebhookEndpoint.id) == col(WebhookDelivery.endpoint_id))
                .where(col(WebhookDelivery.id).in_(lease.ids), col(WebhookDelivery.status) == DeliveryStatus.PENDING)
            )
        ).all()
    return [
        Claimed(d.id, e.url, e.secret_sealed, d.body, d.message_id, d.event, endpoint_deleted=e.deleted_at is not None)
        for d, e in rows
        if lease.holds(d)
    ]


@dataclass(frozen=True)
class Outcome:
    id: uuid.UUID
    ok: bool
    status_code: int | None = None
    error: str | None = None
    final: bool = False  # no retry: dead at once


async def _bounded(work: list[Any], deadline: datetime) -> list[Outcome]:
    """Run the attempts until the lease's deadline; the ones still running then are abandoned unrecorded (their
    lease ends and they are claimed again), so nothing is ever sent on a lease that has lapsed."""
    tasks = [asyncio.ensure_future(job) for job in work]
    if not tasks:
        return []
    remaining = (deadline - utcnow()).total_seconds()
    done, pending = await asyncio.wait(tasks, timeout=max(remaining, 0))
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
        logger.warning("%d delivery attempt(s) ran out of lease time and will be retried", len(pending))
    return [task.result() for task in done if not task.cancelled() and task.exception() is None]


async def send_all(
    claimed: list[Claimed],
    app_secret: bytes,
    *,
    allow_private: bool,
    client: httpx.AsyncClient,
    deadline: datetime,
) -> list[Outcome]:
    """Attempt each delivery, CONCURRENCY at a time, each within ATTEMPT_TIMEOUT, all before `deadline`."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(item: Claimed) -> Outcome:
        if item.endpoint_deleted:  # deleted after the event was fanned out: nobody to send it to any more
            return Outcome(item.id, False, None, "endpoint deleted", final=True)
        async with gate:
            status_code, error = await _attempt(item, app_secret, allow_private, client)
            return Outcome(item.id, status_code is not None and 200 <= status_code < 300, status_code, error)

    return await _bounded([one(item) for item in claimed], deadline)


# Retries recording a sent batch while the database is away (a restart): unrecorded, each delivery would go out
# again when its lease lapses. About 30 s, well within the lease.
RECORD_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
_wait_to_record = asyncio.sleep  # its own name, so a test can skip the waits without touching asyncio


async def record_results(db: Database, table: Deliveries, outcomes: list[Outcome], lease: Lease) -> None:
    """Delivered, retry later with backoff, or dead after the retry window: one transaction for the batch, tried
    again while the database is unreachable (`RECORD_RETRY_DELAYS`).

    Only rows still under `lease` are updated: a row claimed again after a lapsed lease belongs to its new
    holder."""
    for delay in (*RECORD_RETRY_DELAYS, None):
        try:
            return await _record_results(db, table, outcomes, lease)
        except DBAPIError as exc:
            if delay is None or not exc.connection_invalidated:
                raise
            logger.warning(
                "%s: database unreachable, %d results kept for %.1f s", table.__tablename__, len(outcomes), delay
            )
            await _wait_to_record(delay)


async def _record_results(db: Database, table: Deliveries, outcomes: list[Outcome], lease: Lease) -> None:
    if not outcomes:
        return
    recorded: list[tuple[str, str]] = []
    async with db.transaction(Scope.system()) as session:
        now = utcnow()
        rows = {
            row.id: row
            for row in (
                await session.execute(
                    _rows_of(table).where(col(table.id).in_([outcome.id for outcome in outcomes])).with_for_update()
                )
            ).scalars()
        }
        for outcome in outcomes:
            row = rows.get(outcome.id)
            if row is None or row.status != DeliveryStatus.PENDING or not lease.holds(row):
                continue
            row.attempts += 1
            row.last_error = (outcome.error or "")[:500] or None
            if isinstance(row, WebhookDelivery):
                row.last_status_code = outcome.status_code
            kind = "webhook" if isinstance(row, WebhookDelivery) else "mail"
            if outcome.ok:
                row.status, row.delivered_at = DeliveryStatus.DELIVERED.value, now
                recorded.append((kind, "delivered"))
            elif outcome.final or now + backoff(row.attempts) > as_utc(row.retry_until):
                row.status = DeliveryStatus.DEAD.value
                recorded.append((kind, "dead"))
                logger.error(
                    "%s %s dead-lettered after %d attempts: %s",
                    table.__tablename__,
                    row.id,
                    row.attempts,
                    row.last_error,
                )
            else:
                row.next_attempt_at = now + backoff(row.attempts)
                recorded.append((kind, "failed"))
    for kind, result in recorded:  # counted once committed
        DELIVERY_ATTEMPTS.labels(kind, result).inc()


async def deliver(
    db: Database, lease: Lease, app_secret: bytes, *, allow_private: bool, client: httpx.AsyncClient
) -> int:
    """Send leased deliveries and record the outcome (the body of a queued job, or of the in-process loop)."""
    claimed = await load_claimed(db, lease)
    outcomes = await send_all(
        claimed, app_secret, allow_private=allow_private, client=client, deadline=lease.until - LEASE_MARGIN
    )
    await record_results(db, WebhookDelivery, outcomes, lease)
    return len(claimed)


async def send_mails(db: Database, lease: Lease, mailer: Mailer) -> int:
    """Send leased e-mails (a few at a time: SMTP servers throttle) and record the outcome."""
    async with db.transaction(Scope.system(), write=False) as session:
        rows = [
            row
            for row in (
                await session.execute(
                    select(MailDelivery).where(
                        col(MailDelivery.id).in_(lease.ids), col(MailDelivery.status) == DeliveryStatus.PENDING
                    )
                )
            ).scalars()
            if lease.holds(row)
        ]
    gate = asyncio.Semaphore(MAIL_CONCURRENCY)

    async def one(row: MailDelivery) -> Outcome:
        async with gate:
            try:
                async with asyncio.timeout(ATTEMPT_TIMEOUT):
                    await mailer.send(Mail(to=row.recipient, subject=row.subject, body=row.body))
                return Outcome(row.id, True)
            except Exception as exc:  # any SMTP or OS failure, or a server too slow: retried with backoff
                return Outcome(row.id, False, error=f"{type(exc).__name__}: {exc}")

    outcomes = await _bounded([one(row) for row in rows], lease.until - LEASE_MARGIN)
    await record_results(db, MailDelivery, outcomes, lease)
    return len(rows)


async def send_due_mail(db: Database, mailer: Mailer) -> int:
    lease = await claim_due(db, table=MailDelivery, limit=MAIL_BATCH)
    return await send_mails(db, lease, mailer) if lease else 0


async def deliver_due(db: Database, app_secret: bytes, *, allow_private: bool, client: httpx.AsyncClient) -> int:
    """Send the webhook deliveries that are due; returns how many were attempted."""
    lease = await claim_due(db)
    return await deliver(db, lease, app_secret, allow_private=allow_private, client=client) if lease else 0


async def _attempt(
    item: Claimed, app_secret: bytes, allow_private: bool, client: httpx.AsyncClient
) -> tuple[int | None, str | None]:
    try:
        secret = open_secret(app_secret, item.sealed)
    except InvalidTag:  # sealed under another service secret (a restore or a rotation gone wrong): never sign
        logger.error("webhook delivery %s: the endpoint secret cannot be opened with this service's secret", item.id)
        return None, "the endpoint secret cannot be opened with the service secret (was DPA_SECRET_KEY changed?)"
    try:
        # One bound for the whole attempt: httpx's timeouts are per read, so a receiver dripping bytes would
        # otherwise hold a worker for ever. The answer's body is never read: only its status counts.
        async with asyncio.timeout(ATTEMPT_TIMEOUT):
            # Again at send time (DNS may have changed), connecting to the very address checked.
            target = await destination(item.url, allow_private=allow_private)
            timestamp = int(utcnow().timestamp())
            headers = {
                **target.headers,
                "Content-Type": "application/json",
                "DPA-Event-Id": str(item.message_id),
                "DPA-Event": item.event,
                "DPA-Signature": signature_header(secret, timestamp, item.body),
            }
            body = item.body.encode()
            async with client.stream(
                "POST", target.url, content=body, headers=headers, extensions=target.extensions
            ) as response:
                status = response.status_code
        return status, None if 200 <= status < 300 else f"HTTP {status}"
    except TimeoutError:
        return None, f"no answer within {ATTEMPT_TIMEOUT:.0f} s"
    except (UnsafeUrl, httpx.HTTPError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


async def run_once(
    db: Database, mailer: Mailer, app_secret: bytes, *, allow_private: bool, jobs: bool = True
) -> tuple[int, int]:
    """One round without a queue: fan out, then send due e-mails and webhooks, and (`jobs`) run the due outbox jobs;
    returns (messages, attempts). The worker loop runs jobs on their own (`queue.run_forever`)."""
    async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0), follow_redirects=False) as client:
        handled = await fan_out(db)
        attempted = await send_due_mail(db, mailer)
        attempted += await deliver_due(db, app_secret, allow_private=allow_private, client=client)
        if jobs:
            attempted += await run_due_jobs(db)
    return handled, attempted
