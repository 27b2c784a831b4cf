"""Transfer register: the mechanism catalogue, per-tenant transfers, as-of assessment, invalidations, notices."""

from __future__ import annotations

import uuid
from datetime import date
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.clock import utcnow
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.transfers import invalidations, notices, services
from dpa_service.transfers.models import (
    AffectedReport,
    AssessmentItem,
    InvalidationCreate,
    InvalidationPublic,
    MechanismPublic,
    TransferCreate,
    TransferNoticeCreate,
    TransferNoticePublic,
    TransferPublic,
    TransferUpdate,
)

register_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)
register_editors = require_roles(Role.OWNER, Role.ADMIN, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
MechanismFilter = Annotated[str | None, QueryParameter(name="mechanism", max_length=50)]
AsOf = Annotated[date | None, QueryParameter(name="as_of", description="YYYY-MM-DD; default today (UTC)")]


class TransferMechanismsController(Controller):
    path = "/api/v1/transfer-mechanisms"
    tags = ["Transfers"]

    @get("/", operation_id="listTransferMechanisms")
    async def catalogue(self, principal: PrincipalDep, db: DbDep) -> Page[MechanismPublic]:
        """The catalogue of transfer mechanisms (`valid_from` inclusive, `valid_until` exclusive) and any recorded
        invalidation."""
        return await services.catalogue(db, principal)

    @post(
        "/{code:str}/invalidation",
        guards=[legal_only],
        operation_id="invalidateTransferMechanism",
        responses=created(InvalidationPublic),
    )
    async def invalidate(
        self,
        code: FromPath[str],
        data: JSONBody[InvalidationCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        """Legal records that a mechanism is invalid from a date (`invalid_from`, `reason`, `legal_reference`);
        every tenant relying on it is notified once."""
        return await create_once(
            db, request, request.user, partial(invalidations.record_invalidation, db, actor, code, data)
        )

    @get("/{code:str}/affected", guards=[legal_only], operation_id="affectedByTransferMechanism")
    async def affected(
        self,
        code: FromPath[str],
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AffectedReport:
        """Tenants and transfers relying on a mechanism from its invalidation date, with remediation status."""
        return await invalidations.affected(db, principal, code, cursor=cursor, limit=limit)


class TransfersController(Controller):
    path = "/api/v1/transfers"
    tags = ["Transfers"]

    @post("/", guards=[subscriber_admin], operation_id="createTransfer", responses=created(TransferPublic))
    async def create(
        self, data: JSONBody[TransferCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """A Subscriber records an international transfer and the mechanism it relies on."""
        return await create_once(
            db, request, request.user, partial(services.create_transfer, db, actor, request.user, data)
        )

    @get("/", guards=[register_readers], operation_id="listTransfers")
    async def list_transfers(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        mechanism: MechanismFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TransferPublic]:
        """The register: a Subscriber's own transfers; legal sees all (`?tenant_id=` narrows)."""
        return await services.list_transfers(
            db, principal, tenant_id=tenant_id, mechanism=mechanism, cursor=cursor, limit=limit
        )

    @get("/assessment", guards=[register_readers], operation_id="assessTransfers")
    async def assessment(
        self,
        principal: PrincipalDep,
        db: DbDep,
        as_of: AsOf = None,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[AssessmentItem]:
        """Every transfer active on `as_of` (default today) with whether its mechanism covered it that day, why,
        and the mechanisms that would."""
        day = as_of or utcnow().date()
        return await services.assessment(db, principal, day, tenant_id=tenant_id, cursor=cursor, limit=limit)

    @get("/{transfer_id:uuid}", guards=[register_readers], operation_id="getTransfer")
    async def get_transfer(
        self, transfer_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> TransferPublic:
        """One transfer."""
        return await services.get_transfer(db, principal, transfer_id)

    @patch("/{transfer_id:uuid}", guards=[register_editors], operation_id="updateTransfer")
    async def update(
        self,
        transfer_id: FromPath[uuid.UUID],
        data: JSONBody[TransferUpdate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> TransferPublic:
        """Change a transfer (a JSON merge patch); transfers are never deleted: set `end_date`."""
        return await services.update_transfer(db, actor, principal, transfer_id, data)


class TransferNoticesController(Controller):
    path = "/api/v1/transfer-notices"
    tags = ["Transfers"]

    @post("/", guards=[subscriber_admin], operation_id="giveTransferNotice", responses=created(TransferNoticePublic))
    async def create(
        self, data: JSONBody[TransferNoticeCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """A Subscriber's prior written notice of a transfer outside the EU/EEA; a past date or an EEA destination
        is 422."""
        return await create_once(
            db, request, request.user, partial(notices.create_notice, db, actor, request.user, data)
        )

    @get("/", guards=[register_readers], operation_id="listTransferNotices")
    async def list_notices(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TransferNoticePublic]:
        """Transfer notices: a Subscriber's own; legal reads every tenant's."""
        return await notices.list_notices(db, principal, tenant_id=tenant_id, cursor=cursor, limit=limit)
