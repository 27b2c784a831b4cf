"""Read and verify the audit chain: Subscribers their own; legal and platform admins any."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from dpa_service.audit import services
from dpa_service.audit.models import AuditEventPublic, ChainVerification
from dpa_service.core.db import Scope
from dpa_service.core.identity import Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import DbDep, PrincipalDep
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_int_cursor, page_of

audit_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.PLATFORM_ADMIN)

TenantFilter = Annotated[
    uuid.UUID | None,
    QueryParameter(name="tenant_id", description="Staff: a tenant's chain (default: the platform chain)."),
]


def _chain_scope(principal: PrincipalDep, tenant_id: uuid.UUID | None) -> tuple[uuid.UUID | None, Scope]:
    """Subscribers always read their own chain; staff read the platform chain or narrow to one tenant."""
    if not principal.is_staff:
        return principal.tenant_id, principal.scope
    if tenant_id is not None:
        return tenant_id, Scope.tenant(tenant_id)
    return None, principal.scope


class AuditController(Controller):
    path = "/api/v1/audit-events"
    tags = ["Audit"]
    guards = [audit_readers]

    @get("/", operation_id="listAuditEvents")
    async def list_events(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[AuditEventPublic]:
        chain_tenant, scope = _chain_scope(principal, tenant_id)
        async with db.transaction(scope, write=False) as session:
            rows = await services.list_events(
                session, chain_tenant, after_seq=decode_int_cursor(cursor), limit=limit + 1
            )
        return page_of(
            rows,
            limit,
            lambda e: AuditEventPublic.model_validate(e, from_attributes=True),
            lambda e: str(e.seq),
        )

    @get("/verify", operation_id="verifyAuditChain")
    async def verify(self, principal: PrincipalDep, db: DbDep, tenant_id: TenantFilter = None) -> ChainVerification:
        chain_tenant, scope = _chain_scope(principal, tenant_id)
        async with db.transaction(scope, write=False) as session:
            return await services.verify_chain(session, chain_tenant)
