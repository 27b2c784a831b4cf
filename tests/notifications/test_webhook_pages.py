"""A Subscriber's owners and admins manage webhooks on the web: add one (its secret shown once), read its delivery
log, replay a dead letter, delete it; a loopback URL is refused beside the field, and a member finds no such page."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import WebhookDelivery
from dpa_service.notifications.outbox import enqueue_many
from tests.helpers.api import Api
from tests.helpers.pages import Browser
from tests.helpers.receiver import Receiver, drain

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only

_SECRET = re.compile(r'id="webhook-secret" type="text" readonly value="([^"]+)"')
PUBLIC_URL = "https://93.184.215.14/hooks"  # a public address literal: checked without DNS, never called here


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant()


async def _signed_in(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    await browser.sign_in_with_key(api.key)
    return browser


async def test_a_loopback_url_is_refused_beside_the_url_field(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/webhooks")
    refused = await browser.post("/app/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["*"]})
    assert refused.status_code == 422
    assert 'id="url-error"' in refused.text and "non-public address" in refused.text
    assert 'value="http://127.0.0.1:9/x"' in refused.text
    assert re.search(r'value="\*" checked', refused.text), "the checked event stays checked"
    assert (await owner.get("/webhook-endpoints")).json()["items"] == []


async def test_no_event_chosen_is_refused_beside_the_events(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/webhooks")
    refused = await browser.post("/app/webhooks", {"url": PUBLIC_URL})
    assert refused.status_code == 422 and 'id="events-error"' in refused.text


async def test_a_new_webhooks_secret_is_shown_once(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    form = await browser.get("/app/webhooks")
    assert "agreement.status_changed" in form.text and "Every event (*)" in form.text
    created = await browser.post(
        "/app/webhooks", {"url": PUBLIC_URL, "events": ["agreement.status_changed", "transfer.mechanism_invalidated"]}
    )
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    found = _SECRET.search(created.text)
    assert found and found.group(1).startswith("whsec_")
    [endpoint] = (await owner.get("/webhook-endpoints")).json()["items"]
    assert endpoint["events"] == ["agreement.status_changed", "transfer.mechanism_invalidated"]
    listed = await browser.get("/app/webhooks")
    detail = await browser.get(f"/app/webhooks/{endpoint['id']}")
    assert PUBLIC_URL in listed.text and detail.status_code == 200 and PUBLIC_URL in detail.text
    assert found.group(1) not in listed.text + detail.text


async def test_a_member_finds_no_webhook_pages(client: httpx.AsyncClient, owner: Api) -> None:
    created = await owner.post("/webhook-endpoints", {"url": PUBLIC_URL, "events": ["*"]})
    endpoint_id = created.json()["id"]
    browser = await _signed_in(client, await owner.new_user("member"))
    home = await browser.get("/app/profile")
    assert 'href="/app/webhooks"' not in home.text
    assert (await browser.get("/app/webhooks")).status_code == 404
    assert (await browser.get(f"/app/webhooks/{endpoint_id}")).status_code == 404
    assert (await browser.post("/app/webhooks", {"url": PUBLIC_URL, "events": ["*"]})).status_code == 404
    assert (await browser.post(f"/app/webhooks/{endpoint_id}/delete")).status_code == 404
    assert len((await owner.get("/webhook-endpoints")).json()["items"]) == 1


async def test_another_tenants_webhook_is_not_found(client: httpx.AsyncClient, owner: Api, admin: Api) -> None:
    endpoint_id = (await owner.post("/webhook-endpoints", {"url": PUBLIC_URL, "events": ["*"]})).json()["id"]
    browser = await _signed_in(client, await admin.new_tenant())
    assert (await browser.get(f"/app/webhooks/{endpoint_id}")).status_code == 404
    assert (await browser.post(f"/app/webhooks/{endpoint_id}/delete")).status_code == 404


async def test_the_delivery_log_shows_a_dead_letter_that_can_be_replayed_then_the_webhook_is_deleted(
    web: tuple[httpx.AsyncClient, Api], db: Database, signed_receiver: tuple[Receiver, str]
) -> None:
    http, admin = web
    receiver, base = signed_receiver
    owner = await admin.new_tenant()
    browser = await _signed_in(http, owner)
    await browser.get("/app/webhooks")
    await browser.post("/app/webhooks", {"url": f"{base}/hooks", "events": "*"})
    [endpoint] = (await owner.get("/webhook-endpoints")).json()["items"]
    receiver.down = True
    async with db.transaction(Scope.system()) as session:
        event = {"mechanism": "eu-us-dpf", "subject": "Invalidated"}
        await enqueue_many(session, "transfer.mechanism_invalidated", [(uuid.UUID(owner.tenant_id), "k1", event)])
    await drain(http, db)
    async with db.transaction(Scope.system()) as session:  # three days later, past the last retry
        await session.execute(update(WebhookDelivery).values(next_attempt_at=utcnow() - timedelta(seconds=1),
                                                             retry_until=utcnow()))  # fmt: skip
    await drain(http, db)
    log = await browser.get(f"/app/webhooks/{endpoint['id']}")
    assert (
        "transfer.mechanism_invalidated" in log.text and "status-dead" in log.text and "Replay delivery 1" in log.text
    )
    [dead] = (await owner.get(f"/webhook-endpoints/{endpoint['id']}/deliveries")).json()["items"]
    replayed = await browser.post(f"/app/webhooks/deliveries/{dead['id']}/replay")
    assert replayed.status_code == 303 and replayed.headers["location"] == f"/app/webhooks/{endpoint['id']}"
    after = await browser.get(f"/app/webhooks/{endpoint['id']}")
    assert "The delivery will be tried again." in after.text and "status-pending" in after.text
    assert (await browser.post(f"/app/webhooks/deliveries/{dead['id']}/replay")).status_code == 409

    confirm = await browser.get(f"/app/webhooks/{endpoint['id']}/delete")
    assert confirm.status_code == 200 and "This cannot be undone." in confirm.text
    deleted = await browser.post(f"/app/webhooks/{endpoint['id']}/delete")
    assert deleted.status_code == 303
    assert "The webhook endpoint is deleted." in (await browser.get("/app/webhooks")).text
    assert (await owner.get("/webhook-endpoints")).json()["items"] == []
