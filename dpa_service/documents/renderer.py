"""The render front: a bounded cache of finished PDFs, and one render per document however many ask at once."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict

import anyio

from dpa_service.documents.rendering import RenderedPdf, RenderJob, render_sync


class Renderer:
    """PDF rendering with a bounded cache of finished documents and a cap on concurrent renders."""

    def __init__(self, *, max_cache_bytes: int = 64 * 1024 * 1024, concurrency: int = 2) -> None:
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        self._max_cache_bytes = max_cache_bytes
        self._limiter = anyio.CapacityLimiter(concurrency)
        self._in_flight: dict[str, asyncio.Task[bytes]] = {}

    async def render(self, job: RenderJob) -> RenderedPdf:
        key = job.cache_key
        if (content := self._cached(key)) is not None:
            return RenderedPdf(content, hashlib.sha256(content).hexdigest(), cached=True)
        shared = key in self._in_flight
        if not shared:
            # The render runs as its own task: a caller that goes away (client disconnect) does not cancel it
            # for the others waiting on the same document.
            self._in_flight[key] = asyncio.create_task(self._render(key, job))
        content = await asyncio.shield(self._in_flight[key])
        return RenderedPdf(content, hashlib.sha256(content).hexdigest(), cached=shared)

    async def _render(self, key: str, job: RenderJob) -> bytes:
        try:
            content = await anyio.to_thread.run_sync(render_sync, job, limiter=self._limiter)
            self._store(key, content)
            return content
        finally:
            self._in_flight.pop(key, None)

    def _cached(self, key: str) -> bytes | None:
        content = self._cache.get(key)
        if content is not None:
            self._cache.move_to_end(key)
        return content

    def _store(self, key: str, content: bytes) -> None:
        if len(content) > self._max_cache_bytes:
            return
        self._cache[key] = content
        self._cache_bytes += len(content)
        while self._cache_bytes > self._max_cache_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._cache_bytes -= len(evicted)
