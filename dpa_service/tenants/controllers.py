"""Tenants: created by the platform admin, read by staff, and each Subscriber's own profile."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal
from dpa_service.http.auth import platform_admin_only, staff_only, subscriber_admin, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, MailerDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.tenants import services
from dpa_service.tenants.models import TenantCreate, TenantCreated, TenantPublic, TenantUpdate
from dpa_service.users import services as users

NameFilter = Annotated[str | None, QueryParameter(name="name", max_length=200)]


class TenantsController(Controller):
    """The processor's view of all Subscribers (staff only)."""

    path = "/api/v1/tenants"
    tags = ["Tenants"]

    @post("/", guards=[platform_admin_only], operation_id="createTenant", responses=created(TenantCreated))
    async def create_tenant(
        self, data: JSONBody[TenantCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep,
        mailer: MailerDep, settings: SettingsDep,
    ) -> Response[bytes]:  # fmt: skip
        """A new Subscriber and its first user, the `owner`, whose API key (`admin_api_key`) is shown this once;
        the owner's address is e-mailed a link to confirm it. An `admin_email` any account uses is 409 naming it."""
        out = users.ConfirmationMails(public_base_url(request, settings))
        response = await create_once(db, request, request.user, partial(services.create_tenant, db, actor, data, out))
        await users.send_confirmations(mailer, out)  # a replay opened no link: nothing is sent twice
        return response

    @get("/", guards=[staff_only], operation_id="listTenants")
    async def list_tenants(
        self, principal: PrincipalDep, db: DbDep, name: NameFilter = None, limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TenantPublic]:  # fmt: skip
        """Every Subscriber, oldest first; `?name=` keeps those whose name or legal name contains it."""
        return await services.list_tenants(db, principal, cursor=cursor, limit=limit, name=name)

    @get("/{tenant_id:uuid}", guards=[staff_only], operation_id="getTenant")
    async def get_tenant(self, tenant_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> TenantPublic:
        """One Subscriber's profile."""
        return await services.get_tenant(db, principal.scope, tenant_id)


class OwnTenantController(Controller):
    """A Subscriber's own profile: it pre-fills the controller's part of its DPAs."""

    path = "/api/v1/tenant"
    tags = ["Tenants"]

    @get("/", guards=[subscriber_only], operation_id="getOwnTenant")
    async def get_own(self, principal: PrincipalDep, db: DbDep) -> TenantPublic:
        """The caller's own profile: legal name, address, registration number, contacts, DPO, EU representative."""
        return await services.own_tenant(db, principal)

    @patch("/", guards=[subscriber_admin], operation_id="updateOwnTenant")
    async def update_own(
        self, data: JSONBody[TenantUpdate], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> TenantPublic:
        """Change the caller's profile (a JSON merge patch: absent keeps, null clears an optional field)."""
        return await services.update_profile(db, actor, principal, data)
