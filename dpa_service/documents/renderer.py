"""The render front: finished PDFs cached, one render per document however many ask at once, and all CPU work
(WeasyPrint layout, composing, diffing) in the process pool, so the event loop never waits for a render.

A render that crashes its worker or outlives `timeout` fails that request with a 503 problem; the pool replaces
the worker and the server carries on.

Several processes (app servers, `dpa worker`s) share finished documents through a `shared` cache (Redis when
`REDIS_URL` is set; `shared_cache`): a draft a worker rendered ahead of its signature request is then found by
whichever app process serves the request.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

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
from dpa_service.documents.shared_cache import SharedCache

logger = logging.getLogger("dpa_service.rendering")

T = TypeVar("T")
# What every worker imports once at start, so no request pays for it.
PRELOAD = ("weasyprint", "pyhanko.sign", "dpa_service.documents.rendering", "dpa_service.documents.seal")


def document_pool(size: int | None = None) -> ProcessPool:
    """The process-wide pool documents are made in."""
    return shared_pool(size, preload=PRELOAD)


class RenderFailed(Unavailable):
    title = "Document rendering failed"


class Renderer:
    """PDF rendering with a bounded cache of finished documents, off the event loop."""

    def __init__(
        self,
        pool: ProcessPool | None = None,
        *,
        timeout: float = 120.0,
        max_cache_bytes: int = 64 * 1024 * 1024,
        shared: SharedCache | None = None,
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
            rendered = await self.shared.get(key) if self.shared else None
            if rendered is None:
                rendered = await self.run(render_pdf, job)
                if self.shared:
                    await self.shared.put(key, rendered)
            self._store(key, rendered)
            return rendered
        finally:
            self._in_flight.pop(key, None)

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
