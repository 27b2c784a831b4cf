"""The endpoints that take no API key are rate-limited per client address; everything else is not."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar import Litestar
from redis.asyncio import Redis

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.http.rate_limits import REDIS_NAMESPACE, SweptMemoryStore, client_identity
from tests.conftest import running
from tests.helpers.api import bootstrap_admin

LIMIT = 3
JSON = {"Accept": "application/json"}
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def _client(app: Litestar, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver.local")


@asynccontextmanager
async def serving(settings: Settings, address: str = "192.0.2.10") -> AsyncIterator[httpx.AsyncClient]:
    """Like the `client` fixture, with a low allowance and a chosen client address."""
    app = create_app(settings.model_copy(update={"rate_limit_per_minute": LIMIT}))
    async with running(app), _client(app, address) as http:
        http.app = app  # type: ignore[attr-defined]
        yield http


def assert_rate_limited_problem(response: httpx.Response) -> dict:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body) and body["status"] == 429
    assert body["correlation_id"] == response.headers["x-request-id"]
    assert_retry_after(response)
    return body


def assert_retry_after(response: httpx.Response) -> None:
    retry_after = response.headers.get("retry-after", "")
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 60, response.headers


async def test_unknown_signing_link_is_limited_after_the_allowance(settings: Settings) -> None:
    async with serving(settings) as http:
        for _ in range(LIMIT):
            response = await http.get("/sign/no-such-token", headers=JSON)
            assert response.status_code == 404
            assert response.headers["ratelimit-limit"] == str(LIMIT)
        body = assert_rate_limited_problem(await http.get("/sign/no-such-token", headers=JSON))
        assert body["type"] == "urn:dpa:problem:too-many-requests"
        # The allowance is per address, not per path: a JSON form post is refused too.
        assert_rate_limited_problem(await http.post("/sign/other-token", json={"typed_name": "A"}))


async def test_confirmation_links_are_limited_like_sign_in_links(settings: Settings) -> None:
    async with serving(settings) as http:
        for _ in range(LIMIT):
            assert (await http.get("/verify-email/no-such-token", headers=BROWSER)).status_code == 404
        refused = await http.get("/verify-email/no-such-token", headers=BROWSER)
        assert refused.status_code == 429 and refused.headers["content-type"].startswith("text/html")
        assert_retry_after(refused)


async def test_document_verification_is_limited_after_the_allowance(settings: Settings) -> None:
    async with serving(settings) as http:
        pdf = {"Content-Type": "application/pdf"}
        for _ in range(LIMIT):
            response = await http.post("/api/v1/documents/verify", content=b"%PDF-1.7 not really", headers=pdf)
            assert response.status_code != 429
        response = await http.post("/api/v1/documents/verify", content=b"%PDF-1.7 not really", headers=pdf)
        assert_rate_limited_problem(response)


async def test_the_client_is_the_peer_address_not_a_forwarded_header(settings: Settings) -> None:
    async with serving(settings) as http:
        for n in range(LIMIT):
            await http.get("/sign/no-such-token", headers={**JSON, "X-Forwarded-For": f"198.51.100.{n}"})
        spoofed = await http.get("/sign/no-such-token", headers={**JSON, "X-Forwarded-For": "198.51.100.99"})
        assert_rate_limited_problem(spoofed)
        async with _client(http.app, "192.0.2.11") as neighbour:  # type: ignore[attr-defined]
            assert (await neighbour.get("/sign/no-such-token", headers=JSON)).status_code == 404


async def test_authenticated_api_and_health_are_never_limited(settings: Settings, db: Database) -> None:
    async with serving(settings) as http:
        admin = await bootstrap_admin(http, db)
        for _ in range(LIMIT * 3):
            response = await admin.get("/me")
            assert response.status_code == 200, response.text
            assert "ratelimit-limit" not in response.headers
            assert (await http.get("/health")).status_code in {200, 503}
        # Spending the allowance on public paths leaves the API untouched.
        for _ in range(LIMIT + 1):
            await http.get("/sign/no-such-token", headers=JSON)
        assert (await admin.get("/me")).status_code == 200


async def test_a_browser_on_a_signing_page_gets_an_html_page(settings: Settings) -> None:
    async with serving(settings) as http:
        for _ in range(LIMIT):
            assert (await http.get("/sign/x", headers=BROWSER)).status_code == 404
        page = await http.get("/sign/x", headers=BROWSER)
        assert page.status_code == 429
        assert page.headers["content-type"].startswith("text/html")
        assert "Too many requests" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert_retry_after(page)
        form = await http.post("/sign/x", data={"typed_name": "A"}, headers=BROWSER)
        assert form.status_code == 429 and form.headers["content-type"].startswith("text/html")
        assert_retry_after(form)


def test_ipv6_clients_are_counted_by_their_64() -> None:
    class Peer:
        def __init__(self, host: str) -> None:
            self.client = type("Address", (), {"host": host})()

    def identity(host: str) -> str:
        return client_identity(Peer(host))  # type: ignore[arg-type]

    assert identity("2001:db8:1:2::1") == identity("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert identity("2001:db8:1:3::1") != identity("2001:db8:1:2::1")
    assert identity("::ffff:192.0.2.1") == identity("192.0.2.1") == "192.0.2.1"


async def test_hosts_sharing_redis_share_the_allowance(settings: Settings, redis_url: str) -> None:
    shared = settings.model_copy(update={"redis_url": redis_url, "rate_limit_per_minute": LIMIT})
    # A fresh address per run: counters from an earlier run stay in Redis for up to a minute.
    address = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
    first, second = create_app(shared), create_app(shared)
    async with running(first), running(second), _client(first, address) as a, _client(second, address) as b:
        for http in (a, b, a):
            assert (await http.get("/sign/no-such-token", headers=JSON)).status_code == 404
        assert_rate_limited_problem(await b.get("/sign/no-such-token", headers=JSON))
        assert_rate_limited_problem(await a.get("/sign/no-such-token", headers=JSON))
    redis = Redis.from_url(redis_url)
    try:
        assert await redis.keys(f"{REDIS_NAMESPACE}:*{address}*")
    finally:
        await redis.aclose()


async def test_the_memory_store_forgets_expired_counters(monkeypatch: pytest.MonkeyPatch) -> None:
    store = SweptMemoryStore()
    await store.set("gone", b"1", expires_in=1)
    stored = store._store["gone"]
    monkeypatch.setattr(type(stored), "expired", property(lambda self: self is stored))
    monkeypatch.setattr(store, "_next_sweep", 0.0)
    await store.set("fresh", b"1", expires_in=60)
    assert set(store._store) == {"fresh"}
