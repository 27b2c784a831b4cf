"""The worker runs outbox jobs in a loop of their own: a job that takes seconds (executing a queued countersignature
renders and seals) does not hold up the e-mail and webhooks everyone else is waiting for."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.notifications import jobs
from dpa_service.notifications.outbox import enqueue_job, enqueue_many, register_job
from dpa_service.notifications.queue import run_forever
from tests.helpers.api import Api

TOPIC = "test.slow_job"
SUBJECT = "A notice sent while a slow job runs"


@pytest.fixture
def slow_job() -> Iterator[tuple[asyncio.Event, asyncio.Event]]:
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(db: Database, payload: dict[str, Any]) -> None:
        started.set()
        await release.wait()

    register_job(TOPIC, slow)
    yield started, release
    release.set()
    jobs._KINDS.pop(TOPIC, None)


async def test_e_mail_goes_out_while_a_slow_outbox_job_runs(
    admin: Api, db: Database, client: httpx.AsyncClient, settings: Settings,
    slow_job: tuple[asyncio.Event, asyncio.Event],
) -> None:  # fmt: skip
    started, release = slow_job
    owner = await admin.new_tenant()
    async with db.transaction(Scope.system()) as session:
        await enqueue_job(session, TOPIC, None, f"{TOPIC}:1", {})
    app = client.app  # type: ignore[attr-defined]
    worker = asyncio.create_task(
        run_forever(db, app.state.mailer, app.state.secret, allow_private=True, redis_url=None, every=0.05)
    )
    try:
        await asyncio.wait_for(started.wait(), 30)
        async with db.transaction(Scope.system()) as session:  # a notice to the tenant, e-mailed through the outbox
            notice = {"subject": SUBJECT, "text": "Sent while a job ran.", "email_also": ["dpo@tenant.example"]}
            await enqueue_many(session, "test.notice", [(uuid.UUID(owner.tenant_id), "test.notice:1", notice)])
        for _ in range(600):
            if any(m["subject"] == SUBJECT for m in read_log(settings.var_dir)):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no e-mail went out while the job ran")
        assert not release.is_set() and not worker.done(), "the job was still running when the e-mail went out"
    finally:
        release.set()
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
