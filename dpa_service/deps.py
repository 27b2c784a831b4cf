"""Dependencies every controller may ask for by name: `db`, `principal`, `actor`."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from dpa_service.auth import Actor, Principal
from dpa_service.db import Database
from dpa_service.templates.rendering import Renderer


def provide_db(state: State) -> Database:
    return state.db


def provide_renderer(state: State) -> Renderer:
    return state.renderer


def provide_principal(request: Request[Principal, Any, Any]) -> Principal:
    return request.user


def provide_actor(request: Request[Principal, Any, Any]) -> Actor:
    return Actor.from_connection(request)


dependencies = {
    "db": Provide(provide_db, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
    "actor": Provide(provide_actor, sync_to_thread=False),
    "renderer": Provide(provide_renderer, sync_to_thread=False),
}

# Handler parameter types that name the dependencies above explicitly.
DbDep = NamedDependency[Database]
PrincipalDep = NamedDependency[Principal]
ActorDep = NamedDependency[Actor]
RendererDep = NamedDependency[Renderer]
