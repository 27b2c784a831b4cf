"""One sub-processor change to 10,000 tenants with executed DPAs: outbox commit time, then delivery rate on Redis.

    .venv/bin/python bench/fanout.py --backend sqlite [--tenants 10000] [--workers 2]
    DPA_BENCH_POSTGRES_URL=postgresql+asyncpg://dpa_owner@127.0.0.1:5432/dpa_test \\
        .venv/bin/python bench/fanout.py --backend postgres

Loads N tenants, each with an executed DPA and one webhook endpoint on a local receiver, into a scratch database
(a temporary SQLite file, or a database created beside the given PostgreSQL one), then:

1. publish: `subprocessors.publishing.publish_change` in one transaction (next list version, one outbox message per
   tenant, audit), timed to its commit. Baseline in the same run: a bare Core insert of the same N outbox rows
   in one transaction. Goal: < 2 s.
2. delivery: `--workers` `dpa worker` processes on Redis (REDIS_URL, default redis://127.0.0.1:6379/0) fan the
   outbox out and deliver every signed webhook to a keep-alive receiver in this process. Reported: the rate from
   the first to the last accepted delivery, and end to end from the workers' start. Baseline in the same run: the
   same receiver fed by one bare httpx client (same signing, same concurrency), no database or queue.
   Goal: >= 500 deliveries/s.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url

from dpa_service import migrate
from dpa_service.agreements.models import Agreement
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, make_engine
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.notifications.models import WebhookDelivery, WebhookEndpoint
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.notifications.queue import http_client
from dpa_service.notifications.webhooks import new_secret
from dpa_service.subprocessors.models import Authorization, ChangeCreate, SubprocessorItem
from dpa_service.subprocessors.publishing import publish_change
from dpa_service.subprocessors.registry_sync import sync_registry
from dpa_service.template_versions import services as templates
from dpa_service.tenants.models import Tenant

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


class Rollback(Exception):
    """Undo the baseline insert."""


class Receiver:
    """Counts requests and answers 200; a bare asyncio protocol with keep-alive, so it costs the workers little."""

    def __init__(self) -> None:
        self.count = 0
        self.first = self.last = 0.0

    def accepted(self) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.last, self.count = now, self.count + 1


class _Connection(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver, self.buffer, self.transport = receiver, b"", None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            length = (
                int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
                if start >= 0
                else 0
            )
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.receiver.accepted()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")  # type: ignore[attr-defined]


async def load(db: Database, settings: Settings, tenants: int, base_url: str) -> None:
    app_secret = load_app_secret(settings)
    _, sealed = new_secret(app_secret)
    await sync_registry(db, Actor.system("bench"))
    synced = await templates.sync_from_files(db, Actor.system("bench"))
    version = next(v for v in synced if v.key == "standard-dpa")
    async with db.transaction(Scope.system()) as session:
        for start in range(0, tenants, 2000):
            ids = [new_id() for _ in range(min(2000, tenants - start))]
            await session.execute(
                insert(Tenant),
                [
                    {"id": t, "name": f"T{n}", "legal_name": f"Tenant {n} GmbH", "country": "DE"}
                    for n, t in enumerate(ids)
                ],
            )
            agreement_ids = [new_id() for _ in ids]
            await session.execute(
                insert(Agreement),
                [
                    {
                        "id": agreement_id,
                        "tenant_id": t,
                        "template_id": version.id,
                        "template_key": version.key,
                        "template_version": version.version,
                        "template_sha256": version.sha256,
                        "status": "executed",
                        "variables": {},
                        "custom_clauses": [],
                        "subprocessor_list_version": 1,
                    }
                    for t, agreement_id in zip(ids, agreement_ids, strict=True)
                ],
            )
            # What the sub-processor domain recorded when each DPA was executed.
            await session.execute(
                insert(Authorization),
                [
                    {"agreement_id": a, "tenant_id": t, "list_version": 1, "authorized_at": utcnow()}
                    for t, a in zip(ids, agreement_ids, strict=True)
                ],
            )
            await session.execute(
                insert(WebhookEndpoint),
                [
                    {
                        "id": new_id(),
                        "tenant_id": t,
                        "url": f"{base_url}/hooks/{t}",
                        "events": ["subprocessor.change_published"],
                        "secret_sealed": sealed,
                    }
                    for t in ids
                ],
            )
    if db.engine.dialect.name == "postgresql":
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))


async def bare_outbox_insert(db: Database, tenants: int) -> float:
    async with db.transaction(Scope.system(), write=False) as session:
        ids = list((await session.execute(select(Tenant.id))).scalars())
    started = time.perf_counter()
    try:
        async with db.transaction(Scope.system()) as session:
            await session.execute(
                insert(OutboxMessage),
                [
                    {"id": new_id(), "tenant_id": t, "topic": "bench", "dedupe_key": f"bench:{t}", "payload": {"x": 1}}
                    for t in ids
                ],
            )
            elapsed = time.perf_counter() - started
            raise Rollback
    except Rollback:
        return elapsed


async def publish(db: Database) -> tuple[float, int]:
    change = ChangeCreate(
        add=[
            SubprocessorItem(
                name="Acme Translate",
                entity="Acme Translate Inc.",
                purpose="Machine translation of chat messages",
                locations=["US"],
                data_categories=["chat transcripts"],
                transfer_mechanism="scc-2021",
            )
        ],
        reason="Live translation",
    )
    started = time.perf_counter()
    published = await publish_change(db, Actor.system("bench"), change)
    return time.perf_counter() - started, published.notified_tenants


async def bare_delivery(receiver: Receiver, url: str, count: int, concurrency: int) -> float:
    """The same receiver fed directly: signing plus one POST each, `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)
    body = '{"event":"bench"}' * 20

    async def one(client: httpx.AsyncClient, n: int) -> None:
        async with gate:
            timestamp = int(time.time())
            digest = hmac.new(b"whsec_x", f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
            await client.post(
                f"{url}/bare/{n}",
                content=body.encode(),
                headers={"DPA-Signature": f"t={timestamp},v1={digest}", "DPA-Event-Id": str(n)},
            )

    before = receiver.count
    started = time.perf_counter()
    async with http_client() as client:  # the workers' own client settings
        await asyncio.gather(*(one(client, n) for n in range(count)))
    assert receiver.count - before == count
    return count / (time.perf_counter() - started)


async def deliver(
    db: Database, settings: Settings, receiver: Receiver, tenants: int, workers: int
) -> tuple[float, float]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "DPA_VAR_DIR": str(settings.var_dir),
        "REDIS_URL": REDIS_URL,
        "DPA_QUEUE_NAME": f"dpa-bench-{uuid.uuid4().hex[:8]}",
        "DPA_ENV": "development",
        "DPA_WEBHOOK_ALLOW_PRIVATE": "1",
        "DPA_LOG_LEVEL": "WARNING",
    }
    receiver.count, receiver.first = 0, 0.0
    started = time.perf_counter()
    command = [sys.executable, "-m", "dpa_service", "worker", "--every", "0.2"]
    procs = [subprocess.Popen(command, env=env) for _ in range(workers)]  # noqa: ASYNC220 - before timing
    try:
        while receiver.count < tenants:
            if any(p.poll() is not None for p in procs):
                sys.exit("a worker exited early")
            await asyncio.sleep(0.05)
        end_to_end = time.perf_counter() - started
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=60)
    async with db.transaction(Scope.system(), write=False) as session:
        delivered = (
            await session.execute(select(func.count()).where(WebhookDelivery.status == "delivered"))
        ).scalar_one()
    assert delivered == tenants == receiver.count, (delivered, tenants, receiver.count)
    return tenants / (receiver.last - receiver.first), end_to_end


async def admin(url: str, statement: str) -> None:
    engine = make_engine(url, pool_size=1)
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text(statement))
    await engine.dispose()


async def main(args: argparse.Namespace) -> None:
    var_dir = Path(tempfile.mkdtemp(prefix="dpa-bench-"))
    name = f"dpa_bench_{uuid.uuid4().hex[:8]}"
    base = os.environ.get("DPA_BENCH_POSTGRES_URL") or os.environ.get("DPA_TEST_POSTGRES_URL")
    if args.backend == "postgres":
        if not base:
            sys.exit("set DPA_BENCH_POSTGRES_URL (a login that may CREATE DATABASE)")
        await admin(base, f'CREATE DATABASE "{name}"')
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{var_dir / 'bench.db'}"
    receiver = Receiver()
    server = await asyncio.get_running_loop().create_server(lambda: _Connection(receiver), "127.0.0.1", 0, backlog=1024)
    receiver_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        settings = Settings(var_dir=var_dir, database=DatabaseSettings(url=url))
        await asyncio.to_thread(migrate.upgrade, settings)
        db = Database(settings.database)
        started = time.perf_counter()
        await load(db, settings, args.tenants, receiver_url)
        print(
            f"{args.backend}: loaded {args.tenants} tenants with executed DPAs and endpoints in "
            f"{time.perf_counter() - started:.1f} s"
        )
        bare = await bare_outbox_insert(db, args.tenants)
        took, notified = await publish(db)
        print(
            f"publish: {notified} outbox rows committed in {took:.2f} s (bare insert of the same rows "
            f"{bare:.2f} s, {took / bare:.1f}x; goal < 2 s)"
        )
        baseline = await bare_delivery(receiver, receiver_url, min(args.tenants, 5000), 40)
        rate, end_to_end = await deliver(db, settings, receiver, args.tenants, args.workers)
        print(
            f"delivery: {args.tenants} signed webhooks by {args.workers} workers on Redis at {rate:.0f}/s "
            f"(end to end incl. start-up and fan-out {end_to_end:.1f} s); bare client to the same receiver "
            f"{baseline:.0f}/s; goal >= 500/s"
        )
        await db.dispose()
    finally:
        server.close()
        if args.backend == "postgres" and base:
            await admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    asyncio.run(main(parser.parse_args()))
