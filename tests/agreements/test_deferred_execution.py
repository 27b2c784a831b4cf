"""Countersigning with `Prefer: respond-async`: 202 at once, the execution by the worker, exactly as if legal had
waited; a countersignature that can no longer be executed leaves the agreement signed and says why."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements import execution
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import RenderFailed
from dpa_service.notifications.jobs import OutboxJob
from tests.helpers.agreements import approve_standard_dpa, ok, to_status
from tests.helpers.api import Api
from tests.helpers.pages import Browser
from tests.helpers.receiver import drain

ASYNC = {"Prefer": "respond-async, wait=0"}


async def signed_agreement(admin: Api, db: Database) -> tuple[Api, Api, str]:
    """A tenant's owner, a legal user, and an agreement of the tenant's signed and waiting for legal."""
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    return owner, legal, (await to_status(owner, legal, "signed"))["id"]


async def actions(api: Api) -> list[str]:
    return [event["action"] for event in await api.all("/audit-events")]


async def test_an_async_countersignature_answers_202_and_the_worker_executes_it_as_legal_gave_it(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)

    queued = await legal.post(f"/agreements/{aid}/countersign", headers={**ASYNC, "User-Agent": "legal-bot/1.0"})
    assert queued.status_code == 202, queued.text
    assert queued.headers["preference-applied"] == "respond-async"
    assert queued.headers["location"].endswith(f"/api/v1/agreements/{aid}")
    body = queued.json()
    assert body["status"] == "signed" and body["execution_queued_at"] and body["execution_error"] is None
    assert body["document_sha256"] is None
    again = await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)
    assert again.status_code == 409 and "queued" in again.json()["detail"]
    waiting = await legal.post(f"/agreements/{aid}/countersign")  # nor in the request: the queued one executes
    assert waiting.status_code == 409 and "queued" in waiting.json()["detail"]
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "signed", "nothing executed in the request"

    await drain(client, db)
    executed = (await owner.get(f"/agreements/{aid}")).json()
    assert executed["status"] == "executed" and executed["execution_queued_at"] is None
    assert executed["document_sha256"] and executed["effective_date"] == body["execution_queued_at"][:10]
    document = await owner.get(f"/agreements/{aid}/document")
    assert document.headers["x-content-sha256"] == executed["document_sha256"]
    [processor] = [s for s in (await owner.get(f"/agreements/{aid}/evidence")).json()["signatures"]
                   if s["role"] == "processor"]  # fmt: skip
    # The countersignature is legal's, given when and from where they asked, not the worker's.
    assert processor["signed_at"] == body["execution_queued_at"]
    assert processor["email"] == (await legal.get("/me")).json()["email"]
    assert processor["user_agent"] == "legal-bot/1.0"
    trail = await actions(owner)
    assert trail.index("agreement.execution_queued") < trail.index("agreement.countersign")
    verified = (await legal.get("/audit-events/verify", tenant_id=owner.tenant_id)).json()
    assert verified["ok"] is True


async def test_without_the_preference_the_countersignature_still_executes_in_the_request(
    admin: Api, db: Database
) -> None:
    _, legal, aid = await signed_agreement(admin, db)
    other = await legal.post(f"/agreements/{aid}/countersign", headers={"Prefer": "return=minimal"})
    assert other.status_code == 200 and other.json()["status"] == "executed"
    assert "preference-applied" not in other.headers


async def test_what_cannot_be_countersigned_is_refused_at_once_and_nothing_is_queued(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    ready = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signed = (await to_status(owner, legal, "signed"))["id"]
    refused = await legal.post(f"/agreements/{ready}/countersign", headers=ASYNC)
    assert refused.status_code == 409 and refused.headers["content-type"].startswith("application/problem+json")
    assert (await owner.post(f"/agreements/{signed}/countersign", headers=ASYNC)).status_code == 403
    assert "agreement.execution_queued" not in await actions(owner)
    await drain(client, db)
    assert (await owner.get(f"/agreements/{signed}")).json()["status"] == "signed"


async def test_an_execution_that_can_no_longer_happen_leaves_it_signed_says_why_and_tells_legal(
    admin: Api, db: Database, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)
    assert (await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)).status_code == 202
    # Before the worker runs, the Subscriber gives notice: a DPA signed before the end date is never executed.
    ends_on = (utcnow().date() + timedelta(days=10)).isoformat()
    assert (await owner.post("/tenant/termination", {"ends_on": ends_on})).status_code == 201

    await drain(client, db)
    agreement = (await owner.get(f"/agreements/{aid}")).json()
    assert agreement["status"] == "signed" and agreement["execution_queued_at"] is None
    assert agreement["document_sha256"] is None and f"ends on {ends_on}" in agreement["execution_error"]
    assert "agreement.execution_failed" in await actions(owner)
    legal_email = (await legal.get("/me")).json()["email"]
    [mail] = [m for m in read_log(settings.var_dir) if m["subject"] == "A countersignature could not be executed"]
    assert mail["to"] == legal_email and f"ends on {ends_on}" in mail["body"]


@pytest.mark.html_face  # pages: SQLite only (tests/conftest.py)
async def test_the_pages_say_an_execution_is_queued_and_why_it_failed(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)
    assert (await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)).status_code == 202
    staff, subscriber = Browser(client), Browser(client)
    assert (await staff.sign_in_with_key(legal.key)).status_code == 303
    queued = await staff.get(f"/staff/agreements/{aid}")
    assert "queued for the worker" in queued.text
    assert f"/staff/agreements/{aid}/countersign" not in queued.text, "no second countersignature offered"
    assert (await subscriber.sign_in_with_key(owner.key)).status_code == 303
    assert "The processor countersigned it" in (await subscriber.get(f"/app/agreements/{aid}")).text

    ends_on = (utcnow().date() + timedelta(days=10)).isoformat()
    assert (await owner.post("/tenant/termination", {"ends_on": ends_on})).status_code == 201
    await drain(client, db)
    failed = await staff.get(f"/staff/agreements/{aid}")
    assert re.search(
        r'role="alert"><p>A queued countersignature could not be executed[^<]*ends on ' + ends_on, failed.text
    )
    assert "queued for the worker" not in failed.text


async def test_an_agreement_voided_while_its_execution_waits_is_left_voided(
    admin: Api, db: Database, client: httpx.AsyncClient
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)
    assert (await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)).status_code == 202
    await ok(legal.post(f"/agreements/{aid}/void", {"reason": "signed by the wrong entity"}))
    await drain(client, db)
    agreement = (await owner.get(f"/agreements/{aid}")).json()
    assert agreement["status"] == "voided" and agreement["execution_queued_at"] is None
    assert agreement["execution_error"] is None and "agreement.execution_failed" not in await actions(owner)


async def test_prefer_sent_as_several_headers_is_understood(admin: Api, db: Database) -> None:
    _, legal, aid = await signed_agreement(admin, db)
    headers = [("Prefer", "return=minimal"), ("Prefer", "respond-async"), ("Authorization", f"Bearer {legal.key}")]
    queued = await legal.client.post(f"/api/v1/agreements/{aid}/countersign", headers=headers)
    assert queued.status_code == 202, queued.text


async def test_a_transient_failure_is_retried_and_a_later_countersignature_clears_an_old_failure(
    admin: Api, db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)
    real = execution.countersign

    async def render_fails(*args: Any, **kwargs: Any) -> Any:
        raise RenderFailed("The document could not be produced; try again.")

    monkeypatch.setattr(execution, "countersign", render_fails)
    assert (await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)).status_code == 202
    await drain(client, db)
    waiting = (await owner.get(f"/agreements/{aid}")).json()
    assert waiting["status"] == "signed" and waiting["execution_queued_at"] and waiting["execution_error"] is None
    async with db.transaction(Scope.system(), write=False) as session:
        [job] = (await session.execute(select(OutboxJob).where(col(OutboxJob.topic) == "agreement.execute"))).scalars()
    assert job.status == "pending" and job.attempts == 1 and "could not be produced" in (job.last_error or "")

    async def refused(*args: Any, **kwargs: Any) -> Any:
        raise Conflict("The document changed since it was signed; request a new signature.")

    monkeypatch.setattr(execution, "countersign", refused)
    async with db.transaction(Scope.system()) as session:  # the retry is due now
        (await session.get(OutboxJob, job.id)).next_attempt_at = utcnow()  # type: ignore[union-attr]
    await drain(client, db)
    failed = (await owner.get(f"/agreements/{aid}")).json()
    assert failed["execution_queued_at"] is None and "document changed" in failed["execution_error"]

    monkeypatch.setattr(execution, "countersign", real)
    executed = await ok(legal.post(f"/agreements/{aid}/countersign"))  # legal countersigns again, and it executes
    assert executed["status"] == "executed" and executed["execution_error"] is None


def _worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    """`dpa worker` on the test's database and var directory (its seal key), without Redis."""
    env = {**os.environ, "DATABASE_URL": settings.database.url, "DPA_VAR_DIR": str(settings.var_dir),
           "DPA_ENV": "development", "DPA_LOG_LEVEL": "INFO", "DPA_RENDER_PROCESSES": "1"}  # fmt: skip
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "dpa_service", "worker", "--every", "0.2"], env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"))  # fmt: skip


async def test_a_dpa_worker_process_executes_a_queued_countersignature(
    admin: Api, db: Database, settings: Settings, tmp_path: Path
) -> None:
    owner, legal, aid = await signed_agreement(admin, db)
    assert (await legal.post(f"/agreements/{aid}/countersign", headers=ASYNC)).status_code == 202
    log = tmp_path / "worker.log"
    worker = _worker(settings, log)
    try:
        for _ in range(1200):
            agreement = (await owner.get(f"/agreements/{aid}")).json()
            if agreement["status"] == "executed" or worker.poll() is not None:
                break
            await asyncio.sleep(0.25)
        assert agreement["status"] == "executed", log.read_text()[-3000:]
        assert agreement["execution_queued_at"] is None and agreement["execution_error"] is None
        pdf = await owner.get(f"/agreements/{aid}/document")
        checked = await owner.client.post("/api/v1/documents/verify", content=pdf.content,
                                          headers={"Content-Type": "application/pdf"})  # fmt: skip
        assert checked.json()["status"] == "verified", "sealed with the service's own key"
    finally:
        worker.terminate()
        worker.wait(timeout=30)
