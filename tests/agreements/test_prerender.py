"""A draft is rendered by the worker as it becomes ready for signature, so the signature request (in any of the
service's processes) finds the exact PDF its signer will see instead of laying it out in the request."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from litestar.stores.memory import MemoryStore

from dpa_service.core.db import Database
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import RenderJob
from dpa_service.documents.shared_cache import SharedCache, shared_cache
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.template_versions.services import build_context, render_job
from tests.helpers.agreements import approve_standard_dpa, ok, request_own_signature, to_status, token_of
from tests.helpers.api import Api, verify_email
from tests.helpers.receiver import drain


class CountedRenders:
    """Which document functions a renderer ran in its pool (a cached document runs none)."""

    def __init__(self, renderer: Renderer, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        self.names: list[str] = []
        run = renderer.run

        async def counted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            self.names.append(fn.__name__)
            return await run(fn, *args, **kwargs)

        if monkeypatch is None:  # a renderer of the test's own
            renderer.run = counted  # type: ignore[method-assign]
        else:  # the app's, which later tests share
            monkeypatch.setattr(renderer, "run", counted)

    @property
    def pdfs(self) -> int:
        return self.names.count("render_pdf")

    def since_now(self) -> None:
        self.names.clear()


@pytest.fixture
def renders(client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch) -> CountedRenders:
    """The renders of the app under test (its worker rounds included)."""
    return CountedRenders(client.app.state.renderer, monkeypatch)  # type: ignore[attr-defined]


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def test_the_worker_renders_a_ready_draft_and_the_signature_request_renders_nothing(
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, renders: CountedRenders
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    renders.since_now()

    await drain(client, db)  # the worker's round: the draft is rendered now, outside any request
    assert renders.pdfs == 1
    me = await verify_email(owner)
    requested = await owner.post(
        f"/agreements/{aid}/signature-requests", {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}}
    )
    assert requested.status_code == 201, requested.text
    assert renders.pdfs == 1, "the signature request found the draft already rendered"

    # What it found is the very draft: the signing page serves the bytes whose hash the request recorded.
    page_pdf = await client.get(f"/sign/{token_of(requested.json()['signing_url'])}/document")
    assert page_pdf.status_code == 200
    assert hashlib.sha256(page_pdf.content).hexdigest() == requested.json()["document_sha256"]
    assert renders.pdfs == 1


async def test_legal_approving_custom_clauses_makes_the_draft_ready_and_rendered_ahead(
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, renders: CountedRenders
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "in_legal_review"))["id"]
    renders.since_now()
    await drain(client, db)
    assert renders.pdfs == 0, "a draft in legal review may still change: nothing is rendered for it"
    await ok(legal.post(f"/agreements/{aid}/review", {"decision": "approve"}))
    await drain(client, db)
    assert renders.pdfs == 1
    await request_own_signature(owner, aid)
    assert renders.pdfs == 1


async def test_a_draft_voided_before_the_worker_ran_is_not_rendered(
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, renders: CountedRenders
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await ok(owner.post(f"/agreements/{aid}/void", {"reason": "not needed"}))
    renders.since_now()
    await drain(client, db)
    assert renders.pdfs == 0


def _job(reference: str) -> RenderJob:
    """A draft of the shipped DPA, as a signature request asks for it."""
    version = next(b for b in shipped_bundles() if b.key == "standard-dpa").as_version()
    context = build_context(
        version, version.sample_variables, reference=reference, status="draft", generated_on=date(2026, 12, 2)
    )
    return render_job(version, context)


class FailingStore(MemoryStore):
    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        raise ConnectionError("Redis is down")

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        raise ConnectionError("Redis is down")


class StalledStore(MemoryStore):
    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        await asyncio.sleep(3600)  # answers nothing, refuses nothing
        return None


SECRET = b"the service's secret, as load_app_secret gives it"


async def test_processes_sharing_a_cache_render_a_document_once() -> None:
    store = MemoryStore()
    worker, app = Renderer(shared=SharedCache(store, SECRET)), Renderer(shared=SharedCache(store, SECRET))
    job = _job(f"SHARED-{uuid.uuid4()}")
    first = await worker.render(job)
    renders = CountedRenders(app)
    found = await app.render(job)
    assert (found.content, found.sha256, found.cached) == (first.content, first.sha256, True)
    assert renders.pdfs == 0
    assert all(first.content[:200] not in v.data for v in store._store.values())  # sealed, not in the clear


async def test_an_entry_changed_moved_or_sealed_with_another_key_is_never_served() -> None:
    store = MemoryStore()
    cache = SharedCache(store, SECRET)
    job, other = _job(f"SHARED-{uuid.uuid4()}"), _job(f"SHARED-{uuid.uuid4()}")
    genuine = await Renderer(shared=cache).render(job)
    await Renderer(shared=cache).render(other)
    [entry_key] = [k for k in store._store if k.endswith(job.cache_key)]
    [other_key] = [k for k in store._store if k.endswith(other.cache_key)]
    entry = await store.get(entry_key)
    assert entry is not None

    for value in (
        entry[:-10] + b"0123456789",  # changed
        await store.get(other_key) or b"",  # another document's entry, moved here
        SharedCache(MemoryStore(), b"someone else's secret")._sealer.seal(job.cache_key.encode() + b"%PDF forged"),
    ):
        await store.set(entry_key, value)
        renderer = Renderer(shared=cache)
        renders = CountedRenders(renderer)
        rendered = await renderer.render(job)
        assert renders.pdfs == 1 and rendered.content == genuine.content and not rendered.cached


async def test_a_failing_or_stalled_store_costs_a_render_never_the_document() -> None:
    for store in (FailingStore(), StalledStore()):
        renderer = Renderer(shared=SharedCache(store, SECRET))
        renders = CountedRenders(renderer)
        rendered = await asyncio.wait_for(renderer.render(_job(f"SHARED-{uuid.uuid4()}")), 60)
        assert rendered.content.startswith(b"%PDF") and renders.pdfs == 1


async def test_the_shared_cache_is_redis_when_configured(redis_url: str) -> None:
    assert shared_cache(None, SECRET) is None
    job = _job(f"SHARED-{uuid.uuid4()}")
    first = await Renderer(shared=shared_cache(redis_url, SECRET)).render(job)
    other = Renderer(shared=shared_cache(redis_url, SECRET))
    renders = CountedRenders(other)
    found = await other.render(job)
    assert found.cached and found.content == first.content and renders.pdfs == 0
