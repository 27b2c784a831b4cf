"""Read and verify the audit chain: Subscribers their own; legal and platform admins any."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from dpa_service.audit import services
from dpa_service.audit.models import AuditEventPublic, ChainVerification
from dpa_service.core.identity import Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import DbDep, PrincipalDep
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

audit_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.PLATFORM_ADMIN)

TenantFilter = Annotated[
    uuid.UUID | None,
    QueryParameter(name="tenant_id", description="Staff: a tenant's chain (default: the platform chain)."),
]


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
        """The hash-chained audit log by `seq`, ascending: a Subscriber's own chain; staff the platform chain or,
        with `?tenant_id=`, a tenant's."""
        return await services.list_events(db, principal, tenant_id=tenant_id, cursor=cursor, limit=limit)

    @get("/verify", operation_id="verifyAuditChain")
    async def verify(self, principal: PrincipalDep, db: DbDep, tenant_id: TenantFilter = None) -> ChainVerification:
        """Recompute the chain: `ok`, how many `events`, the `head` hash, and the first broken `seq` if any."""
        return await services.verify_for(db, principal, tenant_id)
