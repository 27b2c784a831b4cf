"""Dependencies handlers ask for by name and type: the app's state (settings, database, renderer, seal, mailer,
service secret) and the caller (`principal`, `actor`). Built once in `create_app`; handlers never read
`request.app.state` themselves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from dpa_service.core.db import Database
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.mailer import Mailer
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal
from dpa_service.http.auth import actor_of


def _state(name: str) -> Provide:
    def provide(state: State) -> Any:
        return state[name]

    provide.__name__ = f"provide_{name}"
    return Provide(provide, sync_to_thread=False)


def public_base_url(request: Request[Any, Any, Any], settings: Settings) -> str:
    """Where absolute links point: PUBLIC_BASE_URL. Only in development without it does the request's own base URL
    stand in (settings refuse production without PUBLIC_BASE_URL, and `dpa serve` sets it): a Host header must
    never decide where a link e-mailed to someone else points."""
    return settings.public_base_url or str(request.base_url).rstrip("/")


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def provide_actor(request: Request[Principal, Any, Any]) -> Actor:
    return actor_of(request)


dependencies: dict[str, Provide | Callable[..., Any]] = {
    "db": _state("db"),
    "settings": _state("settings"),
    "renderer": _state("renderer"),
    "seal": _state("seal"),
    "mailer": _state("mailer"),
    "app_secret": _state("secret"),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
}

# Handler parameter types that name the dependencies above explicitly.
DbDep = NamedDependency[Database]
SettingsDep = NamedDependency[Settings]
RendererDep = NamedDependency[Renderer]
SealDep = NamedDependency[Seal]
MailerDep = NamedDependency[Mailer]
AppSecretDep = NamedDependency[bytes]
PrincipalDep = NamedDependency[Principal]
ActorDep = NamedDependency[Actor]
