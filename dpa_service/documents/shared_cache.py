"""Finished documents shared by every process of one service (app servers, `dpa worker`s), through Redis.

A draft a worker rendered ahead of its signature request is found by whichever app process serves the request.
What is stored there is what a signer will be shown and what the seal will embed, and it holds personal data
(names, addresses), so an entry is sealed with the service's secret (AES-256-GCM, `core.secrets.Sealer`) and bound
to its key: whoever can read or write Redis can neither read a DPA there nor substitute one, nor move an entry to
another key. An entry that does not open is a miss.

It is an accelerator, never a dependency: every call is bounded to `TIMEOUT`, and a store that fails, stalls or
has lost the entry costs a render, never the document.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import timedelta
from importlib import metadata, resources
from typing import Protocol

from cryptography.exceptions import InvalidTag

from dpa_service.core.secrets import Sealer
from dpa_service.documents.rendering import RenderedPdf

logger = logging.getLogger("dpa_service.rendering")

# Kept a day: a draft is rendered ahead when it becomes ready to sign, and usually asked for within minutes.
KEPT_FOR = timedelta(days=1)
MAX_BYTES = 8 * 1024 * 1024
TIMEOUT = 1.0  # seconds for one read or write; a render is rarely under half a second


def _code_version() -> str:
    """Another release of the rendering code, or another WeasyPrint or pydyf, may lay the same document out
    differently: their entries are not ours."""
    rendering = (resources.files("dpa_service.documents") / "rendering.py").read_bytes()
    versions = f"{metadata.version('weasyprint')}:{metadata.version('pydyf')}"
    return hashlib.sha256(rendering + versions.encode()).hexdigest()[:16]


class Store(Protocol):
    """What the cache needs of a store other processes read too (Litestar's stores fit)."""

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None: ...

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None: ...


class SharedCache:
    def __init__(self, store: Store, secret: bytes) -> None:
        self.store = store
        self._sealer = Sealer(secret, b"dpa shared document cache")
        self._prefix = f"pdf:{_code_version()}:"

    async def get(self, key: str) -> RenderedPdf | None:
        try:
            entry = await asyncio.wait_for(self.store.get(self._prefix + key), TIMEOUT)
        except Exception:  # an accelerator: any failure of the store is a miss
            logger.warning("the shared document cache could not be read; rendering instead", exc_info=True)
            return None
        if entry is None:
            return None
        try:
            opened = self._sealer.open(entry)
        except (InvalidTag, ValueError):
            logger.warning("a shared document cache entry did not open with this service's key; rendering instead")
            return None
        bound, content = opened[:64], opened[64:]
        if bound != key.encode():
            logger.warning("a shared document cache entry was made for another document; rendering instead")
            return None
        return RenderedPdf(content, hashlib.sha256(content).hexdigest(), cached=True)

    async def put(self, key: str, rendered: RenderedPdf) -> None:
        if len(rendered.content) > MAX_BYTES:
            return
        entry = self._sealer.seal(key.encode() + rendered.content)
        try:
            await asyncio.wait_for(self.store.set(self._prefix + key, entry, KEPT_FOR), TIMEOUT)
        except Exception:  # an accelerator: the document was rendered, the caller gets it
            logger.warning("the shared document cache could not be written", exc_info=True)


def shared_cache(redis_url: str | None, secret: bytes) -> SharedCache | None:
    """The cache every process of one service shares: in Redis when it is configured."""
    if not redis_url:
        return None
    from litestar.stores.redis import RedisStore

    return SharedCache(RedisStore.with_client(redis_url, namespace="dpa_render"), secret)
