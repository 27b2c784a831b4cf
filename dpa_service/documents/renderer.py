"""The render front: finished PDFs cached, one render per document however many ask at once, and all CPU work
(WeasyPrint layout, composing, diffing) in the process pool, so the event loop never waits for a render.

A render that crashes its worker or outlives `timeout` fails that request with a 503 problem; the pool replaces
the worker and the server carries on.

Several processes (app servers, `dpa worker`s) can share finished documents through a `shared` store (Redis when
`REDIS_URL` is set): a draft a worker rendered ahead of its signature request is then found by whichever app
process serves the request. An entry carries its SHA-256 and is used only if the bytes still match it; the store
is an accelerator, never a dependency: when it fails, the document is rendered as if it were empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from importlib import metadata
from typing import Any, Protocol, TypeVar

import dpa_service
from dpa_service.core.exceptions import Unavailable
from dpa_service.documents.pool import (
    InThisProcess,
    JobTimedOut,
    PoolError,
    ProcessPool,
    WorkerCrashed,
    in_this_process,
    shared_pool,
)
from dpa_service.documents.rendering import RenderedPdf, RenderJob, render_pdf

logger = logging.getLogger("dpa_service.rendering")

T = TypeVar("T")
# What every worker imports once at start, so no request pays for it.
PRELOAD = ("weasyprint", "pyhanko.sign", "dpa_service.documents.rendering", "dpa_service.documents.seal")


def shared_store(redis_url: str | None) -> SharedStore | None:
    """The store every process of one service shares documents through: Redis when it is configured."""
    if not redis_url:
        return None
    from litestar.stores.redis import RedisStore

    return RedisStore.with_client(redis_url, namespace="dpa_render")


def document_pool(size: int | None = None) -> ProcessPool:
    """The process-wide pool documents are made in."""
    return shared_pool(size, preload=PRELOAD)


class RenderFailed(Unavailable):
    title = "Document rendering failed"


class SharedStore(Protocol):
    """What the renderer needs of a store other processes read too (Litestar's stores fit)."""

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None: ...

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None: ...


# Kept a day: a draft is pre-rendered when it becomes ready to sign, and usually asked for within minutes.
SHARED_FOR = timedelta(days=1)
SHARED_MAX_BYTES = 8 * 1024 * 1024
# Another release, or another WeasyPrint, may lay the same document out differently: their entries are not ours.
SHARED_PREFIX = f"pdf:{dpa_service.__version__}:{metadata.version('weasyprint')}:"


class Renderer:
    """PDF rendering with a bounded cache of finished documents, off the event loop."""

    def __init__(
        self,
        pool: ProcessPool | None = None,
        *,
        timeout: float = 120.0,
        max_cache_bytes: int = 64 * 1024 * 1024,
        shared: SharedStore | None = None,
    ) -> None:
        self.pool: ProcessPool | InThisProcess = pool or (InThisProcess() if in_this_process() else document_pool())
        self.timeout = timeout
        self._cache: OrderedDict[str, RenderedPdf] = OrderedDict()
        self._cache_bytes = 0
        self._max_cache_bytes = max_cache_bytes
        self._in_flight: dict[str, asyncio.Task[RenderedPdf]] = {}
        self.shared = shared

    async def start(self) -> None:
        """Start the workers now, so the first request does not wait for them."""
        await self.pool.start()

    async def run(self, fn: Callable[..., T], /, *args: Any, within: float | None = None) -> T:
        """Run CPU-bound document work in the pool; `fn` is a module-level function."""
        limit = min(within, self.timeout) if within else self.timeout
        try:
            return await self.pool.run(fn, *args, timeout=limit)
        except JobTimedOut as exc:
            logger.error("%s did not finish within %.0f s; its worker was replaced", fn.__name__, limit)
            raise RenderFailed(f"The document took longer than {limit:.0f} s to process; try again.") from exc
        except (WorkerCrashed, PoolError) as exc:
            logger.error("%s failed in its worker: %s", fn.__name__, exc)
            raise RenderFailed("The document could not be produced; try again, or contact support.") from exc

    async def render(self, job: RenderJob) -> RenderedPdf:
        key = job.cache_key
        if (cached := self._cached(key)) is not None:
            return RenderedPdf(cached.content, cached.sha256, cached=True)
        shared = key in self._in_flight
        if not shared:
            # The render runs as its own task: a caller that goes away (client disconnect) does not cancel it
            # for the others waiting on the same document.
            self._in_flight[key] = asyncio.create_task(self._render(key, job))
        rendered = await asyncio.shield(self._in_flight[key])
        return RenderedPdf(rendered.content, rendered.sha256, cached=shared or rendered.cached)

    async def _render(self, key: str, job: RenderJob) -> RenderedPdf:
        try:
            rendered = await self._shared_get(key)
            if rendered is None:
                rendered = await self.run(render_pdf, job)
                await self._shared_set(key, rendered)
            self._store(key, rendered)
            return rendered
        finally:
            self._in_flight.pop(key, None)

    async def _shared_get(self, key: str) -> RenderedPdf | None:
        if self.shared is None:
            return None
        try:
            entry = await self.shared.get(SHARED_PREFIX + key)
        except Exception:  # an accelerator: any failure of the store is a miss
            logger.warning("the shared document cache could not be read; rendering instead", exc_info=True)
            return None
        if entry is None or len(entry) < 64:
            return None
        sha256, content = entry[:64].decode("ascii", "replace"), entry[64:]
        if hashlib.sha256(content).hexdigest() != sha256:
            logger.warning("a shared cache entry did not match its SHA-256; rendering instead")
            return None
        return RenderedPdf(content, sha256, cached=True)

    async def _shared_set(self, key: str, rendered: RenderedPdf) -> None:
        if self.shared is None or len(rendered.content) > SHARED_MAX_BYTES:
            return
        try:
            await self.shared.set(SHARED_PREFIX + key, rendered.sha256.encode() + rendered.content, SHARED_FOR)
        except Exception:  # an accelerator: the document was rendered, the caller gets it
            logger.warning("the shared document cache could not be written", exc_info=True)

    def _cached(self, key: str) -> RenderedPdf | None:
        found = self._cache.get(key)
        if found is not None:
            self._cache.move_to_end(key)
        return found

    def _store(self, key: str, rendered: RenderedPdf) -> None:
        if len(rendered.content) > self._max_cache_bytes:
            return
        self._cache[key] = rendered
        self._cache_bytes += len(rendered.content)
        while self._cache_bytes > self._max_cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._cache_bytes -= len(evicted.content)
