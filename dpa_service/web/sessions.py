"""Server-side web sessions: the cookie holds only a random id; the data lives in a store (files under
`$DPA_VAR_DIR/sessions/` on one machine, Redis when REDIS_URL is set, so any host serves any user).

Idle timeout: the store entry and the cookie live IDLE_MINUTES and are renewed on each request. Absolute timeout:
a session opened more than ABSOLUTE_HOURS ago is ended whatever its activity (checked in `web.auth`). Signing in
always starts a new session id, so an id planted in a browser before sign-in is worth nothing afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware.session.server_side import ServerSideSessionBackend, ServerSideSessionConfig
from litestar.stores.base import Store
from litestar.stores.file import FileStore
from litestar.stores.redis import RedisStore
from litestar.types import Empty, Message, ScopeSession

from dpa_service.core.clock import utcnow
from dpa_service.core.settings import Settings

SESSION_STORE = "sessions"
COOKIE = "dpa_session"
IDLE_MINUTES = 30
ABSOLUTE_HOURS = 12
_ROTATE = "dpa_rotate_session"
_NEW_ID = "dpa_new_session_id"
# API calls, signing links and webhooks carry their own credentials and never touch the session store.
NO_SESSION_PATHS = ["^/api/", "^/sign/", "^/webhooks/", "^/health$", "^/metrics$", "^/schema", "^/static/"]


class RotatingSessionBackend(ServerSideSessionBackend):
    """Litestar's server-side backend, plus a fresh id (and the old entry deleted) when sign-in asks for one."""

    def get_session_id(self, connection: ASGIConnection) -> str:
        state = connection.scope.setdefault("state", {})
        if state.get(_ROTATE):
            if _NEW_ID not in state:
                state[_NEW_ID] = self.generate_session_id()
            return str(state[_NEW_ID])
        return super().get_session_id(connection)

    async def store_in_message(self, scope_session: ScopeSession, message: Message, connection: ASGIConnection) -> None:
        state = connection.scope.setdefault("state", {})
        old = connection.cookies.get(self.config.key)
        had_session = bool(old) and old != "null"
        if state.get(_ROTATE) and old and had_session:
            await self.delete(old, store=self.config.get_store_from_app(connection.scope["app"]))
        if not scope_session:
            # Litestar would store an empty session for every anonymous visit: a file or key per request, for
            # nothing. Nobody signed in: end what there was, and otherwise store nothing.
            if had_session and not state.get(_ROTATE):
                await super().store_in_message(Empty, message, connection)
            return
        await super().store_in_message(scope_session, message, connection)


@dataclass
class SessionConfig(ServerSideSessionConfig):
    _backend_class: type[ServerSideSessionBackend] = field(default=RotatingSessionBackend)


def session_config(settings: Settings) -> SessionConfig:
    return SessionConfig(
        key=COOKIE,
        store=SESSION_STORE,
        max_age=IDLE_MINUTES * 60,
        renew_on_access=True,
        httponly=True,
        samesite="lax",
        secure=not settings.is_development,
        exclude=NO_SESSION_PATHS,
    )


def session_stores(settings: Settings) -> dict[str, Store]:
    if settings.redis_url:
        return {SESSION_STORE: RedisStore.with_client(settings.redis_url, namespace="dpa_session")}
    return {SESSION_STORE: FileStore(settings.var_dir / "sessions", create_directories=True)}


def start_session(connection: ASGIConnection, data: dict[str, Any]) -> None:
    """Replace whatever session the browser had with a new one (a new id) holding `data`."""
    connection.scope.setdefault("state", {})[_ROTATE] = True
    connection.set_session({**data, "opened_at": utcnow().isoformat()})


def opened_at(session: dict[str, Any]) -> datetime | None:
    try:
        return datetime.fromisoformat(str(session["opened_at"]))
    except (KeyError, ValueError):
        return None
