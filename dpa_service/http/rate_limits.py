"""Rate limits on the endpoints that take no API key: `/sign/...`, `/api/v1/documents/verify`, `/login...`,
`/verify-email/...` (a token guessed there would confirm an address: it is throttled like the sign-in links).

Built on Litestar's `RateLimitMiddleware` (a fixed one-minute window per client), with three changes:
only those paths are counted; the client is the ASGI peer address (an IPv6 client by its /64, which one
subscriber line usually owns); and a refusal carries `Retry-After`, as problem+json, or as an HTML page
for a browser on a signing page.

The counters live in the store named `RATE_LIMIT_STORE`: in memory per process, or in Redis so that every
host (and every uvicorn worker) shares one allowance per client.

Behind a reverse proxy, the peer is the proxy: `http.proxies` rewrites the ASGI client from `X-Forwarded-For`
only when the peer is a proxy listed in DPA_TRUSTED_PROXIES, never this module from a header anyone can send.
"""

from __future__ import annotations

import ipaddress
import re
import time
from datetime import timedelta
from typing import Any

from litestar import Request
from litestar.exceptions import TooManyRequestsException
from litestar.middleware.base import DefineMiddleware
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.stores.redis import RedisStore
from litestar.types import ASGIApp, Receive, Scope, Send

from dpa_service.http.problems import PAGE_PATHS

RATE_LIMIT_STORE = "rate_limit"
REDIS_NAMESPACE = "dpa_rate_limit"
LIMITED_PATHS = re.compile(r"^/(?:sign/|login(?:/|$)|verify$|verify-email/|api/v1/documents/verify$)")
_ADMITTED = "dpa_rate_limit_admitted"
SWEEP_EVERY_SECONDS = 600.0


def rate_limit_stores(redis_url: str | None) -> dict[str, Store]:
    """The store(s) to pass as `AppConfig(stores=...)`; the app then closes the Redis connections on shutdown."""
    store: Store = RedisStore.with_client(redis_url, namespace=REDIS_NAMESPACE) if redis_url else SweptMemoryStore()
    return {RATE_LIMIT_STORE: store}


def rate_limit_middleware(per_minute: int) -> DefineMiddleware:
    """The middleware to list before authentication, so refused requests never reach the database."""
    if per_minute < 1:
        raise ValueError("the rate limit must allow at least one request per minute")
    config = RateLimitConfig(
        rate_limit=("minute", per_minute),
        identifier_for_request=client_identity,
        check_throttle_handler=is_limited,
        middleware_class=PublicRateLimitMiddleware,
        store=RATE_LIMIT_STORE,
    )
    return config.middleware


def is_limited(request: Request[Any, Any, Any]) -> bool:
    """Only the endpoints that take no key are counted; keyed API calls are accountable to their key."""
    return LIMITED_PATHS.match(request.scope["path"]) is not None


def client_identity(request: Request[Any, Any, Any]) -> str:
    """The ASGI client address (the peer, or the forwarded client of a trusted proxy: see http.proxies)."""
    host = request.client.host if request.client else ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # Not an IP (a Unix socket, a test transport): one shared bucket is the safe side.
        return host or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        # One line usually owns a whole /64, so counting single addresses would let it rotate past the limit.
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class SweptMemoryStore(MemoryStore):
    """A MemoryStore that drops expired counters now and then: otherwise it only drops one when the same
    client comes back, so every address ever seen would stay in memory."""

    __slots__ = ("_next_sweep",)

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS

    async def set(self, key: str, value: str | bytes, expires_in: int | timedelta | None = None) -> None:
        await super().set(key, value, expires_in)
        if time.monotonic() >= self._next_sweep:
            self._next_sweep = time.monotonic() + SWEEP_EVERY_SECONDS
            await self.delete_expired()


def _mark_admitted(app: ASGIApp) -> ASGIApp:
    async def admitted(scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("state", {})[_ADMITTED] = True
        await app(scope, receive, send)

    return admitted


class PublicRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's limiter whose own refusals get `Retry-After` and the right shape (problem+json or a page)."""

    def __init__(self, app: ASGIApp, config: RateLimitConfig) -> None:
        super().__init__(_mark_admitted(app), config)
        self._unlimited = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or LIMITED_PATHS.match(scope["path"]) is None:
            # Keyed API calls skip the limiter outright: it builds a Request for every call it sees.
            await self._unlimited(scope, receive, send)
            return
        try:
            await super().__call__(scope, receive, send)
        except TooManyRequestsException as exc:
            # A 429 raised further in (after the limiter let the request through) is not ours to reshape.
            if scope.get("state", {}).get(_ADMITTED):
                raise
            await self._refuse(scope, receive, send, exc)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, exc: TooManyRequestsException) -> None:
        headers = dict(exc.headers or {})
        seconds = _seconds_until_reset(headers.get(self.config.rate_limit_reset_header_key))
        headers["Retry-After"] = str(seconds)
        detail = f"Too many requests from your address; try again in {seconds} seconds."
        request: Request[Any, Any, Any] = scope["litestar_app"].request_class(scope, receive)
        page = request.app.state.get("problem_page")  # the web face's HTML page, wired by create_app
        if page is not None and _wants_page(request):
            response = page(request, 429, "Too many requests", detail)
            for name, value in headers.items():
                response.set_header(name, value)
            await response.to_asgi_response(app=None, request=request)(scope, receive, send)
            return
        # The app's HTTPException handler turns this into problem+json carrying these headers.
        raise TooManyRequestsException(detail=detail, headers=headers) from None


def _seconds_until_reset(value: str | None) -> int:
    try:
        seconds = int(value or "")
    except ValueError:
        seconds = 60
    # Retry-After must be a positive integer; the window never ends in the past when we refuse.
    return max(seconds, 1)


def _wants_page(request: Request[Any, Any, Any]) -> bool:
    """A browser on a page (signing, sign-in, verify): no JSON body, and Accept prefers HTML (no Accept at all
    counts as HTML)."""
    if not (request.scope["path"].startswith("/sign/") or PAGE_PATHS.match(request.scope["path"])):
        return False
    if request.headers.get("content-type", "").startswith("application/json"):
        return False
    preferred = request.accept.best_match(["text/html", "application/problem+json", "application/json"])
    return preferred == "text/html"
