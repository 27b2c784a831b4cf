"""Identity endpoints: who am I, staff, a tenant's users, and one's own API keys."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody

from dpa_service.core.identity import Principal
from dpa_service.http.auth import platform_admin_only, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, page_of
from dpa_service.users import services
from dpa_service.users.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, Me, StaffCreate, UserCreate, UserCreated


class IdentityController(Controller):
    path = "/api/v1"
    tags = ["Identity"]

    @get("/me", operation_id="getMe")
    async def me(self, principal: PrincipalDep) -> Me:
        return Me(
            id=principal.user_id,
            email=principal.email,
            name=principal.name,
            role=principal.role.value,
            tenant_id=principal.tenant_id,
        )

    @post(
        "/staff",
        guards=[platform_admin_only],
        operation_id="createStaff",
        responses=created(UserCreated),
    )
    async def create_staff(
        self,
        data: JSONBody[StaffCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        return await create_once(db, request, request.user, lambda s: services.create_staff(s, actor, data))

    @post("/users", guards=[subscriber_admin], operation_id="createUser", responses=created(UserCreated))
    async def create_user(
        self,
        data: JSONBody[UserCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        return await create_once(
            db, request, request.user, lambda s: services.create_tenant_user(s, actor, request.user, data)
        )


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
        name = data.name if data else None
        return await create_once(
            db, request, request.user, lambda s: services.create_own_api_key(s, actor, request.user, name)
        )

    @get("/", operation_id="listApiKeys")
    async def list_keys(
        self,
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ApiKeyPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_own_api_keys(session, principal, after=decode_id_cursor(cursor), limit=limit)
            return page_of(
                rows,
                limit,
                lambda k: ApiKeyPublic.model_validate(k, from_attributes=True),
                lambda k: str(k.id),
            )

    @delete("/{key_id:uuid}", operation_id="revokeApiKey", status_code=204)
    async def revoke_key(
        self,
        key_id: FromPath[uuid.UUID],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> None:
        async with db.transaction(principal.scope) as session:
            await services.revoke_own_api_key(session, actor, principal, key_id)
