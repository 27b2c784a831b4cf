"""Read and verify the audit chain: Subscribers their own; legal and platform admins any."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.params import QueryParameter

from dpa_service.audit import anchoring, services
from dpa_service.audit.checkpoint_files import CheckpointFiles
from dpa_service.audit.models import AuditEventPublic, ChainVerification, CheckpointKeyPublic, CheckpointPublic
from dpa_service.core.identity import Role
from dpa_service.http.auth import require_roles
from dpa_service.http.deps import DbDep, PrincipalDep, SealDep, SettingsDep
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
    async def verify(
        self, principal: PrincipalDep, db: DbDep, settings: SettingsDep, seal: SealDep, tenant_id: TenantFilter = None
    ) -> ChainVerification:
        """Recompute the chain: `ok`, how many `events`, the `head` hash, and the first broken `seq` if any; also
        against the chain's signed checkpoints: `checkpoint_ok` (null before the first), how many `checkpoints`,
        and at a divergence the `expected` (signed) and `found` hashes."""
        files = CheckpointFiles(settings.checkpoints_path)
        signer = anchoring.signer_for_seal(seal.config)
        keys = {signer.key_id: signer.public_key}
        return await services.verify_for(db, principal, tenant_id, files=files, keys=keys)

    @get("/checkpoints", operation_id="listAuditCheckpoints")
    async def checkpoints(
        self,
        principal: PrincipalDep,
        settings: SettingsDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[CheckpointPublic]:
        """The chain's signed checkpoints, oldest first: each `{chain, tenant_id, seq, head_hash, at, signature,
        key_id}` commits the service to the chain's head hash at that seq. Verify them offline against
        `GET /api/v1/audit-events/checkpoints/key` (README, "Audit checkpoints"). A Subscriber's own chain; staff
        the platform chain or, with `?tenant_id=`, a tenant's."""
        chain_tenant, _ = services.chain_scope(principal, tenant_id)
        files = CheckpointFiles(settings.checkpoints_path)
        return await anchoring.list_checkpoints(files, chain_tenant, cursor=cursor, limit=limit)

    @get("/checkpoints/key", operation_id="getAuditCheckpointKey")
    async def checkpoint_key(
        self,
        settings: SettingsDep,
        seal: SealDep,
        key_id: Annotated[
            str | None, QueryParameter(name="key_id", max_length=64, description="An earlier key (default: now).")
        ] = None,
    ) -> CheckpointKeyPublic:
        """The public key and certificate checkpoints are signed with (the service seal's), its `key_id`
        (SHA-256 of the key's DER SubjectPublicKeyInfo) and `algorithm`, and the fields the signature covers."""
        files = CheckpointFiles(settings.checkpoints_path)
        return anchoring.checkpoint_key(anchoring.signer_for_seal(seal.config), files, key_id)
