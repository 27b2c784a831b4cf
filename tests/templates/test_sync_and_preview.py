"""`dpa templates sync` imports shipped files as drafts once; legal previews a version as a PDF."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from sqlalchemy import select

from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.core.settings import Settings
from dpa_service.template_versions.models import TemplatePublic, TemplateVersion
from dpa_service.template_versions.services import import_shipped, sync_from_files
from tests.helpers.api import Api
from tests.templates.conftest import pdf_text, squash
from tests.templates.test_governance import new_template


async def _sync(db: Database) -> list[TemplatePublic]:
    return await sync_from_files(db, Actor.system("test"))


@pytest.mark.first_start  # a database no service has started on: nothing imported yet
async def test_sync_imports_each_shipped_template_once(db: Database, bundle) -> None:
    assert "standard-dpa" in [version.key for version in await _sync(db)]
    assert await _sync(db) == []
    async with db.transaction(Scope.system(), write=False) as session:
        query = select(TemplateVersion).where(
            TemplateVersion.key == "standard-dpa", TemplateVersion.sha256 == bundle.sha256
        )
        rows = list((await session.execute(query)).scalars())
    assert len(rows) == 1
    assert rows[0].author_id is None and rows[0].version == 1


@pytest.mark.first_start
async def test_two_servers_starting_at_once_import_each_template_once(db: Database, settings: Settings) -> None:
    """Two app processes starting together on one database (both run `import_shipped`): one imports, the other
    finds it done; neither start fails (on PostgreSQL both used to number the same version 1)."""
    other = Database(settings.database)
    try:
        results = await asyncio.gather(import_shipped(db), import_shipped(other), return_exceptions=True)
    finally:
        await other.dispose()
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert sorted(len(r) for r in results if isinstance(r, list)) == [0, 1]
    async with db.transaction(Scope.system(), write=False) as session:
        query = select(TemplateVersion).where(TemplateVersion.key == "standard-dpa")
        assert len(list((await session.execute(query)).scalars())) == 1


async def test_legal_previews_a_version_as_a_pdf(admin: Api, db: Database, bundle) -> None:
    await _sync(db)
    legal = await admin.new_staff("legal")
    listed = (await legal.get("/templates", key="standard-dpa", limit=200)).json()["items"]
    template_id = next(t["id"] for t in listed if t["sha256"] == bundle.sha256)
    response = await legal.get(f"/templates/{template_id}/preview")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-sha256"] == hashlib.sha256(response.content).hexdigest()
    assert "PREVIEW" in squash(pdf_text(response.content))
    again = await legal.get(f"/templates/{template_id}/preview")
    assert again.content == response.content


async def test_subscribers_cannot_preview_or_read_drafts(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    legal = await admin.new_staff("legal")
    template_id = (await legal.post("/templates", new_template())).json()["id"]
    assert (await owner.get(f"/templates/{template_id}")).status_code == 404
    assert (await owner.get(f"/templates/{template_id}/preview")).status_code == 403
