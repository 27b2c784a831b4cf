"""Retries with backoff against a receiver having a bad day, and dead-letter then replay past the retry horizon.

Time moves with the service's injectable clock (`travel_to`), never with sleeps.
"""

from __future__ import annotations

import asyncio
import smtplib
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import Mail
from dpa_service.core.settings import Settings
from dpa_service.notifications import worker
from dpa_service.notifications.models import MailDelivery, WebhookDelivery
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.notifications.worker import RETRY_WINDOW
from tests.helpers.api import Api, notices
from tests.helpers.receiver import Receiver, drain


async def _subscribed(owner: Api, receiver: Receiver, base: str) -> tuple[str, str]:
    path = f"/hooks/{owner.tenant_id}"
    response = await owner.post("/webhook-endpoints", {"url": base + path, "events": ["*"]})
    assert response.status_code == 201, response.text
    receiver.secrets[path] = response.json()["secret"]
    return path, response.json()["id"]


async def _event(db: Database, owner: Api) -> None:
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(
            session,
            "agreement.status_changed",
            [(uuid.UUID(owner.tenant_id or ""), f"test:{uuid.uuid4()}", {"notify_by_email": False, "n": 1})],
        )


async def _log(owner: Api, endpoint_id: str) -> list[dict]:
    return (await owner.get(f"/webhook-endpoints/{endpoint_id}/deliveries")).json()["items"]


async def test_a_receiver_failing_five_times_then_succeeding_gets_exactly_one_delivery(
    web: tuple[httpx.AsyncClient, Api], db: Database, signed_receiver: tuple[Receiver, str]
) -> None:
    http, admin = web
    receiver, base = signed_receiver
    owner = await admin.new_tenant()
    path, endpoint_id = await _subscribed(owner, receiver, base)
    receiver.fail_next = 5
    await _event(db, owner)
    start = utcnow()
    await drain(http, db)
    for hours in range(1, 40):  # backoff doubles from a minute, at most six hours apart
        with travel_to(start + timedelta(hours=hours)):
            await drain(http, db)
    assert receiver.failed == 5
    assert len(receiver.accepted[path]) == 1, "exactly one successful delivery"
    (delivery,) = await _log(owner, endpoint_id)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 6
    with travel_to(start + timedelta(days=2)):
        await drain(http, db)
    assert len(receiver.accepted[path]) == 1 and receiver.rejected == 0


async def test_a_receiver_down_past_the_retry_horizon_is_dead_lettered_and_replay_delivers(
    web: tuple[httpx.AsyncClient, Api], db: Database, signed_receiver: tuple[Receiver, str]
) -> None:
    http, admin = web
    receiver, base = signed_receiver
    owner = await admin.new_tenant()
    path, endpoint_id = await _subscribed(owner, receiver, base)
    receiver.down = True
    await _event(db, owner)
    start = utcnow()
    await drain(http, db)
    hour = 0
    while hour <= RETRY_WINDOW.total_seconds() / 3600 + 12:
        hour += 1
        with travel_to(start + timedelta(hours=hour)):
            await drain(http, db)
    (dead,) = await _log(owner, endpoint_id)
    assert dead["status"] == "dead" and dead["attempts"] >= 10, dead
    assert dead["last_status_code"] is None and dead["last_error"], "no answer at all: the error is logged"
    assert path not in receiver.accepted

    receiver.down = False
    with travel_to(start + timedelta(hours=hour + 1)):
        replayed = await owner.post(f"/webhook-deliveries/{dead['id']}/replay")
        assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
        await drain(http, db)
    assert len(receiver.accepted[path]) == 1
    (delivered,) = await _log(owner, endpoint_id)
    assert delivered["status"] == "delivered"
    other = await admin.new_tenant()
    assert (await other.post(f"/webhook-deliveries/{dead['id']}/replay")).status_code == 404


async def test_an_smtp_outage_delays_a_notification_email_instead_of_losing_it(
    web: tuple[httpx.AsyncClient, Api], db: Database, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, admin = web
    owner = await admin.new_tenant()
    email = (await owner.get("/me")).json()["email"]
    mailer = http.app.state.mailer  # type: ignore[attr-defined]
    send = mailer.send
    outage = {"left": 2}

    async def flaky(mail: Mail) -> None:
        if outage["left"] > 0:
            outage["left"] -= 1
            raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")
        await send(mail)

    monkeypatch.setattr(mailer, "send", flaky)
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(
            session,
            "transfer.mechanism_invalidated",
            [(uuid.UUID(owner.tenant_id or ""), f"test:{uuid.uuid4()}", {"subject": "Mechanism invalidated"})],
        )
    start = utcnow()
    await drain(http, db)
    assert email not in {m["to"] for m in notices(settings.var_dir)}

    async def row() -> MailDelivery:
        async with db.transaction(Scope.system(), write=False) as session:
            query = select(MailDelivery).where(MailDelivery.recipient == email)
            return (await session.execute(query)).scalar_one()

    pending = await row()
    assert pending.status == "pending" and pending.attempts == 1 and "SMTPServerDisconnected" in pending.last_error
    for minutes in (2, 5):
        with travel_to(start + timedelta(minutes=minutes)):
            await drain(http, db)
    assert [m["to"] for m in notices(settings.var_dir)].count(email) == 1
    delivered = await row()
    assert delivered.status == "delivered" and delivered.attempts == 3


async def test_a_receiver_that_never_answers_cannot_hold_a_worker(
    web: tuple[httpx.AsyncClient, Api], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    http, admin = web
    owner = await admin.new_tenant()
    hang = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await hang.wait()  # accepts the request and never answers
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    monkeypatch.setattr(worker, "ATTEMPT_TIMEOUT", 0.5)
    try:
        created = await owner.post("/webhook-endpoints", {"url": f"http://127.0.0.1:{port}/slow", "events": ["*"]})
        await _event(db, owner)
        await asyncio.wait_for(drain(http, db), timeout=20)
        (delivery,) = await _log(owner, created.json()["id"])
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert "no answer within" in delivery["last_error"]
    finally:
        hang.set()
        server.close()


async def test_deleting_an_endpoint_closes_its_pending_deliveries(
    web: tuple[httpx.AsyncClient, Api], db: Database, signed_receiver: tuple[Receiver, str]
) -> None:
    http, admin = web
    receiver, base = signed_receiver
    owner = await admin.new_tenant()
    path, endpoint_id = await _subscribed(owner, receiver, base)
    receiver.down = True
    await _event(db, owner)
    await drain(http, db)
    assert (await owner.delete(f"/webhook-endpoints/{endpoint_id}")).status_code == 204
    receiver.down = False
    with travel_to(utcnow() + timedelta(hours=1)):
        await drain(http, db)
    assert path not in receiver.accepted, "nothing goes to a deleted endpoint"


async def test_results_recorded_while_the_database_comes_back_are_not_sent_twice(
    web: tuple[httpx.AsyncClient, Api],
    db: Database,
    signed_receiver: tuple[Receiver, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A database restart right after a batch was sent: the worker keeps the results and records them once the
    database answers again, so no delivery goes out a second time when its lease lapses."""
    http, admin = web
    receiver, base = signed_receiver
    owner = await admin.new_tenant()
    path, endpoint_id = await _subscribed(owner, receiver, base)
    await _event(db, owner)
    real, refusals, slept = worker._record_results, [2], []

    async def database_restarting(*args: object) -> None:
        if refusals[0]:
            refusals[0] -= 1
            raise DBAPIError(
                "UPDATE webhook_deliveries ...", None, ConnectionError("server closed"), connection_invalidated=True
            )
        await real(*args)  # type: ignore[arg-type]

    async def no_wait(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(worker, "_record_results", database_restarting)
    monkeypatch.setattr(worker, "_wait_to_record", no_wait)
    await drain(http, db)
    monkeypatch.undo()
    assert slept == list(worker.RECORD_RETRY_DELAYS[:2])
    (delivery,) = await _log(owner, endpoint_id)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1
    with travel_to(utcnow() + timedelta(hours=1)):  # long after any lease
        await drain(http, db)
    assert len(receiver.accepted[path]) == 1, "delivered once"


async def test_a_database_error_that_is_not_a_lost_connection_is_not_retried(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise DBAPIError("UPDATE webhook_deliveries ...", None, ValueError("a bug"))

    monkeypatch.setattr(worker, "_record_results", broken)
    with pytest.raises(DBAPIError):
        lease = worker.Lease([uuid.uuid4()], utcnow())
        await worker.record_results(db, WebhookDelivery, [worker.Outcome(lease.ids[0], ok=True)], lease)
