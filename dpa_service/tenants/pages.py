"""Staff's tenant pages: every Subscriber (filtered by name, paged) and one tenant's profile with its DPAs.

Legal and the platform admin see tenants; the tenant's DPAs are listed for legal only, as the agreements API
allows (the platform admin manages tenants and keys, not agreements)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from dpa_service.agreements import services as agreements
from dpa_service.core.db import Database
from dpa_service.core.identity import Principal, Role
from dpa_service.http.deps import DbDep, PrincipalDep
from dpa_service.tenants import services
from dpa_service.web.auth import page_roles
from dpa_service.web.views import next_page, render

tenant_pages = page_roles(Role.LEGAL, Role.PLATFORM_ADMIN)
PAGE_SIZE = 50


async def tenant_with_agreements(
    db: Database, principal: Principal, tenant_id: uuid.UUID, cursor: str | None
) -> dict[str, Any]:
    tenant = await services.get_tenant(db, principal.scope, tenant_id)
    if principal.role != Role.LEGAL:
        return {"tenant": tenant, "agreements": None, "next_url": None}
    page = await agreements.list_agreements(
        db, principal, tenant_id=tenant_id, status=None, cursor=cursor, limit=PAGE_SIZE
    )
    next_url = next_page(f"/staff/tenants/{tenant_id}", page.next_cursor)
    return {"tenant": tenant, "agreements": page.items, "next_url": next_url}


class TenantPages(Controller):
    path = "/staff/tenants"
    guards = [tenant_pages]
    include_in_schema = False

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep, name: FromQuery[str] = "",
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """Every Subscriber, oldest first; `?name=` keeps those whose name or legal name contains it."""
        page = await services.list_tenants(db, principal, cursor=cursor or None, limit=PAGE_SIZE, name=name or None)
        next_url = next_page("/staff/tenants", page.next_cursor, name=name)
        return render(request, "tenants/staff_index.html.j2", heading="Tenants", tenants=page.items, name=name,
                      next_url=next_url)  # fmt: skip

    @get("/{tenant_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID], db: DbDep, principal: PrincipalDep,
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """One Subscriber's profile and (for legal) its DPAs."""
        found = await tenant_with_agreements(db, principal, tenant_id, cursor or None)
        return render(request, "tenants/staff_detail.html.j2", heading=found["tenant"].name, **found)
