"""`/metrics` as a Prometheus scraper sees it: requests by route template, the delivery backlog from the database,
and nothing for a client that is neither on loopback nor holding the metrics token."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import update
from sqlmodel import col

from dpa_service.core.db import Database, Scope
from dpa_service.core.settings import Settings
from dpa_service.notifications.models import MailDelivery
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.notifications.worker import fan_out
from tests.conftest import app_for, running
from tests.helpers.api import Api

TOKEN = "metrics-token-for-the-scraper"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


@asynccontextmanager
async def client_from(settings: Settings, address: str) -> AsyncIterator[httpx.AsyncClient]:
    app = app_for(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            yield http


async def test_a_request_is_counted_and_timed_under_its_route_template(client: httpx.AsyncClient, admin: Api) -> None:
    missing = uuid.uuid4()
    route = {"app_name": "dpa", "method": "GET", "path": "/api/v1/tenants/{tenant_id}"}
    labels = frozenset({**route, "status_code": "404"}.items())
    refused = frozenset({**route, "status_code": "401"}.items())
    before = await scrape(client)

    assert (await admin.get(f"/tenants/{missing}")).status_code == 404
    assert (await client.get(f"/api/v1/tenants/{missing}", headers={"Authorization": "Bearer nope"})).status_code == 401

    response = await client.get("/metrics")
    after = samples(response.text)
    count = "dpa_http_request_duration_seconds_count"
    assert after[(count, labels)] == before.get((count, labels), 0) + 1
    # Refused by the authentication middleware, not the handler: still counted with its status, and timed.
    assert after[(count, refused)] == before.get((count, refused), 0) + 1
    assert after[("dpa_http_request_duration_seconds_sum", refused)] > before.get(
        ("dpa_http_request_duration_seconds_sum", refused), 0
    )
    assert after[("dpa_http_requests_total", labels)] >= 1
    assert ("dpa_http_request_duration_seconds_bucket", labels | {("le", "0.5")}) in after
    assert str(missing) not in response.text, "a raw path would make a series per id"
    assert "dpa_render_pool_workers" in response.text


async def test_the_delivery_gauges_follow_the_outbox(client: httpx.AsyncClient, admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    tenant = uuid.UUID(owner.tenant_id)
    async with db.transaction(Scope.system()) as session:
        await enqueue_many(
            session, "test.notice", [(tenant, f"metrics-{n}-{tenant}", {"subject": "Hello"}) for n in range(2)]
        )
    queued = await scrape(client)
    assert queued[("dpa_outbox_backlog", frozenset())] >= 2
    assert queued[("dpa_outbox_oldest_age_seconds", frozenset())] >= 0
    assert queued[("dpa_metrics_backlog_up", frozenset())] == 1

    await fan_out(db)  # each message becomes an e-mail to the owner
    async with db.transaction(Scope.system()) as session:
        one = (await session.execute(MailDelivery.__table__.select().limit(1))).first()
        assert one is not None
        await session.execute(update(MailDelivery).where(col(MailDelivery.id) == one.id).values(status="dead"))
    fanned = await scrape(client)
    assert fanned[("dpa_outbox_backlog", frozenset())] == 0
    assert fanned[("dpa_outbox_oldest_age_seconds", frozenset())] == 0
    assert fanned[("dpa_deliveries", frozenset({"kind": "mail", "state": "pending"}.items()))] == 1
    assert fanned[("dpa_deliveries", frozenset({"kind": "mail", "state": "dead"}.items()))] == 1
    assert fanned[("dpa_deliveries", frozenset({"kind": "webhook", "state": "dead"}.items()))] == 0


async def test_metrics_need_loopback_or_the_token(settings: Settings) -> None:
    async with client_from(settings, "203.0.113.9") as remote:
        refused = await remote.get("/metrics")
        assert refused.status_code == 403
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "dpa_http" not in refused.text

    with_token = settings.model_copy(update={"metrics_token": SecretStr(TOKEN)})
    async with client_from(with_token, "203.0.113.9") as remote:
        assert (await remote.get("/metrics")).status_code == 401
        wrong = await remote.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        allowed = await remote.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert allowed.status_code == 200 and "dpa_http_requests_total" in allowed.text
    async with client_from(with_token, "127.0.0.1") as local:
        assert (await local.get("/metrics")).status_code == 401, "with a token set, loopback needs it too"
