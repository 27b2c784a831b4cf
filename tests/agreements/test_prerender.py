"""A draft is rendered by the worker as it becomes ready for signature, so the signature request (in any of the
service's processes) finds the exact PDF its signer will see instead of laying it out in the request."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from litestar.stores.memory import MemoryStore

from dpa_service.core.db import Database
from dpa_service.documents.renderer import SHARED_PREFIX, Renderer, shared_store
from dpa_service.documents.rendering import RenderJob
from dpa_service.template_versions.bundle import shipped_bundles
from dpa_service.template_versions.services import build_context, render_job
from tests.helpers.agreements import approve_standard_dpa, ok, request_own_signature, to_status, token_of
from tests.helpers.api import Api, verify_email
from tests.helpers.receiver import drain


class CountedRenders:
    """Which document functions a renderer ran in its pool (a cached document runs none)."""

    def __init__(self, renderer: Renderer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.names: list[str] = []
        run = renderer.run

        async def counted(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            self.names.append(fn.__name__)
            return await run(fn, *args, **kwargs)

        monkeypatch.setattr(renderer, "run", counted)

    @property
    def pdfs(self) -> int:
        return self.names.count("render_pdf")


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def test_the_worker_renders_a_ready_draft_and_the_signature_request_renders_nothing(
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    renders = CountedRenders(client.app.state.renderer, monkeypatch)  # type: ignore[attr-defined]

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
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "in_legal_review"))["id"]
    renders = CountedRenders(client.app.state.renderer, monkeypatch)  # type: ignore[attr-defined]
    await drain(client, db)
    assert renders.pdfs == 0, "a draft in legal review may still change: nothing is rendered for it"
    await ok(legal.post(f"/agreements/{aid}/review", {"decision": "approve"}))
    await drain(client, db)
    assert renders.pdfs == 1
    await request_own_signature(owner, aid)
    assert renders.pdfs == 1


async def test_a_draft_voided_before_the_worker_ran_is_not_rendered(
    parties: tuple[Api, Api], db: Database, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    await ok(owner.post(f"/agreements/{aid}/void", {"reason": "not needed"}))
    renders = CountedRenders(client.app.state.renderer, monkeypatch)  # type: ignore[attr-defined]
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


async def test_processes_sharing_a_store_render_a_document_once_and_never_trust_a_changed_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    worker, app = Renderer(shared=store), Renderer(shared=store)  # two processes' renderers, one store
    app_renders = CountedRenders(app, monkeypatch)
    job = _job("SHARED-1")

    first = await worker.render(job)
    found = await app.render(job)
    assert (found.content, found.sha256, found.cached) == (first.content, first.sha256, True)
    assert app_renders.pdfs == 0

    # An entry whose bytes no longer match their hash is never served: the document is rendered again.
    entry = await store.get(SHARED_PREFIX + job.cache_key)
    assert entry is not None
    await store.set(SHARED_PREFIX + job.cache_key, entry[:-10] + b"0123456789")
    fresh = Renderer(shared=store)
    fresh_renders = CountedRenders(fresh, monkeypatch)
    again = await fresh.render(job)
    assert fresh_renders.pdfs == 1 and again.content == first.content and not again.cached


async def test_a_failing_store_costs_a_render_never_the_document(monkeypatch: pytest.MonkeyPatch) -> None:
    renderer = Renderer(shared=FailingStore())
    renders = CountedRenders(renderer, monkeypatch)
    rendered = await renderer.render(_job("SHARED-2"))
    assert rendered.content.startswith(b"%PDF") and renders.pdfs == 1


async def test_the_shared_store_is_redis_when_configured(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert shared_store(None) is None
    job = _job("SHARED-3")
    first = await Renderer(shared=shared_store(redis_url)).render(job)
    other = Renderer(shared=shared_store(redis_url))
    renders = CountedRenders(other, monkeypatch)
    found = await other.render(job)
    assert found.cached and found.content == first.content and renders.pdfs == 0
