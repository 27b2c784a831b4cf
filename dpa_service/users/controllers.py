"""Identity endpoints: who am I, staff, a tenant's users, and one's own API keys."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from dpa_service.core.identity import Principal
from dpa_service.http.auth import platform_admin_only, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.users import services
from dpa_service.users.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Me, StaffCreate, UserCreate, UserCreated


class IdentityController(Controller):
    path = "/api/v1"
    tags = ["Identity"]

    @get("/me", operation_id="getMe")
    async def me(self, principal: PrincipalDep) -> Me:
        """The caller: id, e-mail, name, role and tenant (`tenant_id` is null for staff)."""
        return services.me(principal)

    @post("/staff", guards=[platform_admin_only], operation_id="createStaff", responses=created(UserCreated))
    async def create_staff(
        self, data: JSONBody[StaffCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """The platform admin adds a member of staff (`legal`, `sales`, `platform_admin`); the key is shown once."""
        return await create_once(db, request, request.user, partial(services.create_staff, db, actor, data))

    @post("/users", guards=[subscriber_admin], operation_id="createUser", responses=created(UserCreated))
    async def create_user(
        self, data: JSONBody[UserCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """An owner or admin adds a user to its own tenant; only an owner makes another owner."""
        work = partial(services.create_tenant_user, db, actor, request.user, data)
        return await create_once(db, request, request.user, work)


class ApiKeyController(Controller):
    path = "/api/v1/api-keys"
    tags = ["Identity"]

    @post("/", operation_id="createApiKey", responses=created(ApiKeyCreated))
    async def create_key(
        self,
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        data: JSONBody[ApiKeyCreate | None] = None,
    ) -> Response[bytes]:
        """A new API key for the caller (`name` optional); the key is shown this once, only its prefix later."""
        work = partial(services.create_own_api_key, db, actor, request.user, data.name if data else None)
        return await create_once(db, request, request.user, work)

    @get("/", operation_id="listApiKeys")
    async def list_keys(
        self, principal: PrincipalDep, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[ApiKeyPublic]:
        """The caller's own keys, by prefix (never the key itself)."""
        return await services.list_own_api_keys(db, principal, cursor=cursor, limit=limit)

    @delete("/{key_id:uuid}", operation_id="revokeApiKey", status_code=204)
    async def revoke_key(
        self, key_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> None:
        """Revoke one of the caller's keys: it is refused (401) from its next use on."""
        await services.revoke_own_api_key(db, actor, principal, key_id)
