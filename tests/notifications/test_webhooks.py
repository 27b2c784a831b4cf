"""Webhooks: SSRF-safe registration, signed deliveries, retries with backoff, dead-letter and replay."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update

from dpa_service.app import create_app
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.notifications.models import WebhookDelivery
from dpa_service.notifications.outbox import enqueue_many
from tests.conftest import running
from tests.helpers.api import Api, notices
from tests.helpers.isolation import Probe, assert_isolated
from tests.helpers.receiver import Receiver, drain


async def test_unsafe_urls_and_unknown_events_are_refused(admin: Api) -> None:
    owner = await admin.new_tenant()
    for url in (
        "http://127.0.0.1:9/x",
        "http://localhost/x",
        "ftp://example.com/x",
        "http://10.1.2.3/x",
        "http://user:pw@example.com/x",
    ):
        response = await owner.post("/webhook-endpoints", {"url": url, "events": ["*"]})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "url", url
    response = await owner.post("/webhook-endpoints", {"url": "http://127.0.0.1/x", "events": ["nope"]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "events"
    assert (await owner.get("/webhook-endpoints")).json()["items"] == []


async def test_signed_delivery_retry_dead_letter_and_replay(
    admin: Api, db: Database, settings: Settings, signed_receiver: tuple[Receiver, str]
) -> None:
    target, base = signed_receiver
    url = base + "/hooks"
    owner = await admin.new_tenant()
    app = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        me = Api(http, owner.key)
        created = await me.post("/webhook-endpoints", {"url": url, "events": ["transfer.mechanism_invalidated"]})
        assert created.status_code == 201, created.text
        endpoint = created.json()
        target.secrets["/hooks"] = endpoint["secret"]
        assert endpoint["secret"].startswith("whsec_")
        assert "secret" not in (await me.get(f"/webhook-endpoints/{endpoint['id']}")).json()

        async def publish(key: str) -> None:
            async with db.transaction(Scope.system()) as session:
                await enqueue_many(
                    session,
                    "transfer.mechanism_invalidated",
                    [(uuid_of(owner), key, {"mechanism": "eu-us-dpf", "subject": "Mechanism invalidated"})],
                )

        async def round_() -> None:
            http.app = app  # type: ignore[attr-defined]
            await drain(http, db)

        await publish("k1")
        await round_()
        _, headers, body = target.requests[-1]
        timestamp, signature = (part.split("=", 1)[1] for part in headers["dpa-signature"].split(","))
        expected = hmac.new(
            endpoint["secret"].encode(), f"{timestamp}.{body.decode()}".encode(), hashlib.sha256
        ).hexdigest()
        assert signature == expected and json.loads(body)["event"] == "transfer.mechanism_invalidated"
        assert headers["dpa-event-id"] == json.loads(body)["id"]
        owner_email = (await me.get("/me")).json()["email"]
        assert any(m["to"] == owner_email for m in read_log(settings.var_dir))
        log = (await me.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"]
        assert [d["status"] for d in log] == ["delivered"]
        await round_()
        assert len(target.requests) == 1, "a delivered event is not sent again"

        target.fail_next = 10**6  # the receiver answers 500 until further notice
        await publish("k2")
        await round_()
        failing = next(
            d
            for d in (await me.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"]
            if d["status"] != "delivered"
        )
        assert failing["status"] == "pending" and failing["attempts"] == 1 and failing["last_status_code"] == 500
        # Three days later, after the last retry: dead-lettered.
        async with db.transaction(Scope.system()) as session:
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.status == "pending")
                .values(next_attempt_at=utcnow() - timedelta(seconds=1), retry_until=utcnow())
            )
        await round_()
        dead = (await me.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"][-1]
        assert dead["status"] == "dead" and dead["attempts"] == 2
        target.fail_next = 0
        replayed = await me.post(f"/webhook-deliveries/{dead['id']}/replay")
        assert replayed.status_code == 200 and replayed.json()["status"] == "pending"
        await round_()
        final = (await me.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"][-1]
        assert final["status"] == "delivered"
        assert (await me.post(f"/webhook-deliveries/{dead['id']}/replay")).status_code == 409

        other = await admin.new_tenant()
        await assert_isolated(
            Api(http, owner.key),
            Api(http, other.key),
            [
                Probe(
                    "tenant A's endpoint",
                    endpoint["id"],
                    lists=["/webhook-endpoints"],
                    direct=[
                        ("GET", f"/webhook-endpoints/{endpoint['id']}", None),
                        ("GET", f"/webhook-endpoints/{endpoint['id']}/deliveries", None),
                        ("POST", f"/webhook-deliveries/{dead['id']}/replay", None),
                        ("DELETE", f"/webhook-endpoints/{endpoint['id']}", None),
                    ],
                ),
            ],
        )


def uuid_of(api: Api):

    return uuid.UUID(api.tenant_id)


async def test_agreement_status_changes_reach_subscribed_endpoints(
    admin: Api, db: Database, settings: Settings, signed_receiver: tuple[Receiver, str]
) -> None:
    from tests.helpers.agreements import approve_standard_dpa, new_agreement

    target, base = signed_receiver
    url = base + "/hooks"
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    app = create_app(settings.model_copy(update={"webhook_allow_private": True}))
    async with running(app), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        me = Api(http, owner.key)
        created = await me.post("/webhook-endpoints", {"url": url, "events": ["agreement.status_changed"]})
        assert created.status_code == 201
        target.secrets["/hooks"] = created.json()["secret"]
        agreement = await new_agreement(me)
        await me.post(f"/agreements/{agreement['id']}/submit")
        owner_email = (await me.get("/me")).json()["email"]
        http.app = app  # type: ignore[attr-defined]
        await drain(http, db)
    events = [json.loads(body) for _, _, body in target.requests]
    changes = [(e["data"]["from"], e["data"]["to"]) for e in events if e["data"]["agreement_id"] == agreement["id"]]
    assert changes == [("draft", "ready_for_signature")]
    assert target.rejected == 0 and len(target.accepted["/hooks"]) == len(events), "every delivery verifies"
    assert owner_email not in {m["to"] for m in notices(settings.var_dir)}, "status changes are not e-mailed"
