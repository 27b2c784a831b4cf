"""A render that hangs or crashes fails that one request with a clear problem; the server and the next render
carry on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.settings import Settings
from dpa_service.documents import renderer
from tests.conftest import running
from tests.documents import pool_jobs
from tests.helpers.agreements import approve_standard_dpa, new_agreement
from tests.helpers.api import Api, bootstrap_admin


@pytest.fixture
async def impatient(settings: Settings, db: Database) -> AsyncIterator[tuple[Api, Api]]:
    app = create_app(settings.model_copy(update={"render_timeout_seconds": 2.0}))
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as client:
            admin = await bootstrap_admin(client, db)
            await approve_standard_dpa(db)
            admin.client.app = app  # type: ignore[attr-defined]
            yield admin, await admin.new_tenant()


@pytest.mark.parametrize("failure", [pool_jobs.hang_render, pool_jobs.crash_render], ids=["hangs", "crashes"])
async def test_a_failed_render_is_a_503_problem_and_the_server_carries_on(
    impatient: tuple[Api, Api], monkeypatch: pytest.MonkeyPatch, failure: object
) -> None:
    admin, owner = impatient
    agreement = await new_agreement(owner)
    monkeypatch.setattr(renderer, "render_pdf", failure)
    slow = asyncio.create_task(owner.get(f"/agreements/{agreement['id']}/document"))
    await asyncio.sleep(0.2)
    assert (await admin.get("/me")).status_code == 200, "other requests are served meanwhile"
    failed = await slow
    assert failed.status_code == 503, failed.text
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert failed.json()["title"] == "Document rendering failed" and "try again" in failed.json()["detail"]
    assert failed.headers["retry-after"]
    monkeypatch.undo()
    admin.client.app.state.renderer.timeout = 120.0  # type: ignore[attr-defined]  # a loaded CI machine is slow
    document = await owner.get(f"/agreements/{agreement['id']}/document")
    assert document.status_code == 200 and document.content.startswith(b"%PDF"), "the pool replaced its worker"
