"""Web sessions live on the server: with REDIS_URL any host serves any signed-in user; without it, files under var/."""

from __future__ import annotations

import secrets

import httpx

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa, new_agreement
from tests.helpers.api import Api
from tests.helpers.pages import Browser


async def test_with_redis_a_session_opened_on_one_host_is_served_by_another(
    settings: Settings, redis_url: str, client: httpx.AsyncClient, admin: Api
) -> None:
    owner = await admin.new_tenant()
    shared = settings.model_copy(update={"redis_url": redis_url, "queue_name": f"dpa-test-{secrets.token_hex(4)}"})
    first, second = create_app(shared.model_copy()), create_app(shared.model_copy())
    async with running(first), running(second):
        one = httpx.ASGITransport(app=first, client=("127.0.0.1", 50001))
        two = httpx.ASGITransport(app=second, client=("127.0.0.1", 50002))
        async with httpx.AsyncClient(transport=one, base_url="http://dpa.local") as host_one:
            browser = Browser(host_one)
            assert (await browser.sign_in_with_key(owner.key)).status_code == 303
            cookie = browser.http.cookies.get("dpa_session")
            await browser.aclose()
        assert cookie
        async with httpx.AsyncClient(
            transport=two, base_url="http://dpa.local", cookies={"dpa_session": cookie}
        ) as host_two:
            page = await host_two.get("/app/")
            assert page.status_code == 200, "the second host knows the session the first one opened"
            assert (await host_two.get("/staff/")).status_code == 404


async def test_without_redis_sessions_are_files_under_var_and_anonymous_visits_store_nothing(
    client: httpx.AsyncClient, admin: Api, settings: Settings
) -> None:
    sessions = settings.var_dir / "sessions"
    browser = Browser(client)
    for _ in range(3):
        await browser.get("/login")
    assert not sessions.exists() or not any(sessions.iterdir()), "a visitor who never signs in costs no storage"
    owner = await admin.new_tenant()
    await browser.sign_in_with_key(owner.key)
    assert len(list(sessions.iterdir())) == 1
    await browser.post("/logout")
    assert not any(sessions.iterdir()), "signing out deletes the session's data"


async def test_pdfs_are_never_cached_and_a_huge_version_number_is_not_a_server_error(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    browser = Browser(client)
    await browser.sign_in_with_key(owner.key)
    agreement = await new_agreement(owner)
    preview = await browser.http.get(f"/app/agreements/{agreement['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"].startswith("application/pdf")
    assert preview.headers["cache-control"] == "no-store" and preview.headers["x-content-type-options"] == "nosniff"
    huge = await browser.http.get("/app/subprocessors/versions/99999999999999999999999")
    assert huge.status_code in (404, 422) and huge.headers["content-type"].startswith("text/html")
