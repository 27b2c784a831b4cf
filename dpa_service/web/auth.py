"""Who is signed in to a page: the web session resolved to the same `Principal` the API uses, and the guards pages
declare. A page for another role, like another tenant's object, is 404: a Subscriber cannot even learn that a staff
page exists. A visitor who is not signed in is sent to `/login` (and back afterwards)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from urllib.parse import quote, urlsplit

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Receive, Scope, Send

from dpa_service.core import log_context
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import DPAError, NotFound
from dpa_service.core.identity import STAFF_ROLES, Principal, Role
from dpa_service.web.sessions import ABSOLUTE_HOURS, NO_SESSION_PATHS, opened_at

SessionPrincipal = Callable[[uuid.UUID, uuid.UUID | None], Awaitable[Principal | None]]
Guard = Callable[[ASGIConnection, BaseRouteHandler], None]
_SESSION_ENDED = "dpa_session_ended"


class SignInRequired(DPAError):
    status_code = 401
    title = "Sign in required"

    def __init__(self, next_path: str, *, ended: bool = False) -> None:
        super().__init__("Sign in to continue.")
        self.next_path = next_path
        self.ended = ended

    @property
    def location(self) -> str:
        query = f"?next={quote(self.next_path, safe='/')}" if self.next_path not in ("", "/") else ""
        if self.ended:
            query += ("&" if query else "?") + "ended=1"
        return f"/login{query}"


def session_principal_middleware(app: ASGIApp) -> ASGIApp:
    """On page paths, set `scope["user"]` from the session (None when nobody is signed in). The principal is read
    afresh on every request, so a removed user or a revoked key ends the session at once."""
    skip = re.compile("|".join(NO_SESSION_PATHS))

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or skip.match(scope["path"]):
            await app(scope, receive, send)
            return
        scope["user"] = await _principal(scope)
        await app(scope, receive, send)

    return middleware


async def _principal(scope: Scope) -> Principal | None:
    session = scope.get("session")
    if not isinstance(session, dict) or "user_id" not in session:
        return None
    started = opened_at(session)
    if started is None or utcnow() - started > timedelta(hours=ABSOLUTE_HOURS):
        session.clear()
        scope.setdefault("state", {})[_SESSION_ENDED] = True
        return None
    resolve: SessionPrincipal = scope["app"].state.session_principal
    key_id = session.get("api_key_id")
    principal = await resolve(uuid.UUID(session["user_id"]), uuid.UUID(key_id) if key_id else None)
    if principal is None:
        session.clear()
        scope.setdefault("state", {})[_SESSION_ENDED] = True
    else:
        log_context.identify(principal.user_id, principal.tenant_id)
    return principal


def viewer(connection: ASGIConnection) -> Principal | None:
    user = connection.scope.get("user")
    return user if isinstance(user, Principal) else None


def page_roles(*roles: Role) -> Guard:
    """Signed in (else to /login) with one of `roles` (else 404)."""
    allowed = frozenset(roles)

    def guard(connection: ASGIConnection, _handler: BaseRouteHandler) -> None:
        principal = viewer(connection)
        if principal is None:
            ended = bool(connection.scope.get("state", {}).get(_SESSION_ENDED))
            raise SignInRequired(_return_path(connection), ended=ended)
        if principal.role not in allowed:
            raise NotFound("There is no such page.")

    guard.__name__ = f"page_{'_or_'.join(sorted(allowed))}"
    return guard


subscriber_pages = page_roles(Role.OWNER, Role.ADMIN, Role.MEMBER)
subscriber_admin_pages = page_roles(Role.OWNER, Role.ADMIN)
staff_pages = page_roles(*STAFF_ROLES)
legal_pages = page_roles(Role.LEGAL)
sales_pages = page_roles(Role.SALES, Role.LEGAL)


def _return_path(connection: ASGIConnection) -> str:
    """Where to come back after signing in: the page asked for, or for a form posted after the session ended, the
    page the form was on (its input is still in the browser's history: Back, then submit again)."""
    if connection.scope.get("method") == "GET":
        return str(connection.scope["path"])
    referer = urlsplit(connection.headers.get("referer", ""))
    if referer.netloc == connection.headers.get("host", "") and referer.path.startswith(("/app", "/staff")):
        return referer.path
    return "/"


def home_of(principal: Principal) -> str:
    if principal.role in (Role.OWNER, Role.ADMIN, Role.MEMBER):
        return "/app/"
    if principal.role == Role.SALES:
        return "/staff/sales"
    return "/staff/"
