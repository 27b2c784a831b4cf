"""Two `dpa worker` processes sharing a Redis-backed queue deliver 1,000 events, each exactly once."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from sqlalchemy import func, select

from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import Settings
from dpa_service.notifications.models import WebhookDelivery
from dpa_service.notifications.outbox import enqueue_many
from tests.helpers.api import Api
from tests.helpers.receiver import Receiver

TENANTS, EVENTS_PER_TENANT = 10, 100


def _worker(settings: Settings, redis_url: str, queue: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "DPA_VAR_DIR": str(settings.var_dir),  # the same service secret, which opens the endpoint secrets
        "REDIS_URL": redis_url,
        "DPA_QUEUE_NAME": queue,
        "DPA_ENV": "development",
        "DPA_WEBHOOK_ALLOW_PRIVATE": "1",
        "DPA_LOG_LEVEL": "INFO",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "dpa_service", "worker", "--every", "0.2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )


async def test_two_workers_on_redis_deliver_a_thousand_events_exactly_once(
    web: tuple[httpx.AsyncClient, Api],
    db: Database,
    settings: Settings,
    signed_receiver: tuple[Receiver, str],
    redis_url: str,
    tmp_path: Path,
) -> None:
    _, admin = web
    receiver, base = signed_receiver
    owners = [await admin.new_tenant() for _ in range(TENANTS)]
    for owner in owners:
        path = f"/hooks/{owner.tenant_id}"
        response = await owner.post("/webhook-endpoints", {"url": base + path, "events": ["agreement.status_changed"]})
        assert response.status_code == 201, response.text
        receiver.secrets[path] = response.json()["secret"]
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(
            session,
            "agreement.status_changed",
            [
                (uuid.UUID(owner.tenant_id or ""), f"redis-test:{uuid.uuid4()}", {"notify_by_email": False, "n": n})
                for owner in owners
                for n in range(EVENTS_PER_TENANT)
            ],
        )

    queue = f"dpa-test-{uuid.uuid4().hex[:8]}"
    logs = [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    workers = [_worker(settings, redis_url, queue, log) for log in logs]
    try:
        total = TENANTS * EVENTS_PER_TENANT
        for _ in range(600):
            if sum(len(ids) for ids in receiver.accepted.values()) >= total:
                break
            assert all(w.poll() is None for w in workers), [log.read_text()[-2000:] for log in logs]
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
    events = [event for path in receiver.secrets for event in receiver.accepted.get(path, [])]
    assert len(events) == total, f"{len(events)} of {total} delivered"
    assert len(set(events)) == total, "no event was delivered twice"
    assert all(len(receiver.accepted[f"/hooks/{o.tenant_id}"]) == EVENTS_PER_TENANT for o in owners)
    assert receiver.rejected == 0 and receiver.failed == 0
    async with db.transaction(Scope.system(), write=False) as session:
        statuses = dict(
            (
                await session.execute(
                    select(WebhookDelivery.status, func.count())
                    .where(WebhookDelivery.tenant_id.in_([uuid.UUID(o.tenant_id or "") for o in owners]))
                    .group_by(WebhookDelivery.status)
                )
            ).all()
        )
    assert statuses == {"delivered": total}
    batches = [log.read_text().count("delivered a batch") for log in logs]
    assert all(count > 0 for count in batches), f"both workers took jobs from the queue: {batches}"
