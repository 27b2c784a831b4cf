"""Tenants: created by the platform admin, read by staff, and each Subscriber's own profile."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody

from dpa_service.core.identity import Principal
from dpa_service.http.auth import platform_admin_only, staff_only, subscriber_admin, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, page_of
from dpa_service.tenants import services
from dpa_service.tenants.models import TenantCreate, TenantCreated, TenantPublic, TenantUpdate


def _public(tenant: Any) -> TenantPublic:
    return TenantPublic.model_validate(tenant, from_attributes=True)


class TenantsController(Controller):
    """The processor's view of all Subscribers (staff only)."""

    path = "/api/v1/tenants"
    tags = ["Tenants"]

    @post("/", guards=[platform_admin_only], operation_id="createTenant", responses=created(TenantCreated))
    async def create_tenant(
        self,
        data: JSONBody[TenantCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        return await create_once(db, request, request.user, lambda s: services.create_tenant(s, actor, data))

    @get("/", guards=[staff_only], operation_id="listTenants")
    async def list_tenants(
        self,
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TenantPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_tenants(session, after=decode_id_cursor(cursor), limit=limit)
            return page_of(rows, limit, _public, lambda t: str(t.id))

    @get("/{tenant_id:uuid}", guards=[staff_only], operation_id="getTenant")
    async def get_tenant(self, tenant_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> TenantPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return _public(await services.get_tenant(session, tenant_id))


class OwnTenantController(Controller):
    """A Subscriber's own profile: it pre-fills the controller's part of its DPAs."""

    path = "/api/v1/tenant"
    tags = ["Tenants"]

    @get("/", guards=[subscriber_only], operation_id="getOwnTenant")
    async def get_own(self, principal: PrincipalDep, db: DbDep) -> TenantPublic:
        assert principal.tenant_id is not None
        async with db.transaction(principal.scope, write=False) as session:
            return _public(await services.get_tenant(session, principal.tenant_id))

    @patch("/", guards=[subscriber_admin], operation_id="updateOwnTenant")
    async def update_own(
        self,
        data: JSONBody[TenantUpdate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> TenantPublic:
        assert principal.tenant_id is not None
        async with db.transaction(principal.scope) as session:
            return _public(await services.update_profile(session, actor, principal.tenant_id, data))
