"""Transfer register: the mechanism catalogue, per-tenant transfers, as-of assessment, invalidations, notices."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, encode_cursor, page_of
from dpa_service.transfers import services
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

legal_only = require_roles(Role.LEGAL)
register_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)
register_editors = require_roles(Role.OWNER, Role.ADMIN, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
MechanismFilter = Annotated[str | None, QueryParameter(name="mechanism", max_length=50)]
AsOf = Annotated[date | None, QueryParameter(name="as_of", description="YYYY-MM-DD; default today (UTC)")]


def _public(transfer: Any) -> TransferPublic:
    return TransferPublic.model_validate(transfer, from_attributes=True)


class TransferMechanismsController(Controller):
    path = "/api/v1/transfer-mechanisms"
    tags = ["Transfers"]

    @get("/", operation_id="listTransferMechanisms")
    async def catalogue(self, principal: PrincipalDep, db: DbDep) -> Page[MechanismPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            invalid = await services.invalidations(session)
        items = [
            MechanismPublic(
                code=m.code,
                name=m.name,
                jurisdiction=m.jurisdiction,
                kind=m.kind,
                valid_from=m.valid_from,
                valid_until=m.valid_until,
                legal_reference=m.legal_reference,
                requires_certified_importer=m.requires_certified_importer,
                destinations=list(m.destinations),
                successors=list(m.successors),
                risk_note=m.risk_note or None,
                invalidated_from=invalid.get(m.code),
            )
            for m in registry.mechanisms().values()
        ]
        return Page[MechanismPublic](items=items, next_cursor=None)

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
        async def work(session: Any) -> InvalidationPublic:
            invalidation = await services.record_invalidation(session, actor, code, data)
            return InvalidationPublic.model_validate(invalidation, from_attributes=True)

        return await create_once(db, request, request.user, work)

    @get("/{code:str}/affected", guards=[legal_only], operation_id="affectedByTransferMechanism")
    async def affected(
        self,
        code: FromPath[str],
        principal: PrincipalDep,
        db: DbDep,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AffectedReport:
        async with db.transaction(principal.scope, write=False) as session:
            result = await services.affected(session, code, after=decode_id_cursor(cursor), limit=limit)
        return AffectedReport(
            code=code,
            invalid_from=result.invalid_from,
            items=result.items,
            tenants=result.tenants,
            open=sum(item["remediation"] == "open" for item in result.items),
            next_cursor=encode_cursor(str(result.items[-1]["tenant_id"])) if result.more and result.items else None,
        )


class TransfersController(Controller):
    path = "/api/v1/transfers"
    tags = ["Transfers"]

    @post("/", guards=[subscriber_admin], operation_id="createTransfer", responses=created(TransferPublic))
    async def create(
        self, data: JSONBody[TransferCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> TransferPublic:
            return _public(await services.create_transfer(session, actor, request.user, data))

        return await create_once(db, request, request.user, work)

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
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_transfers(
                session, tenant_id=tenant_id, mechanism=mechanism, after=decode_id_cursor(cursor), limit=limit
            )
        return page_of(rows, limit, _public, lambda t: str(t.id))

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
        day = as_of or utcnow().date()
        async with db.transaction(principal.scope, write=False) as session:
            items = await services.assessment(
                session, day, tenant_id=tenant_id, after=decode_id_cursor(cursor), limit=limit
            )
        return page_of(items, limit, lambda item: item, lambda item: str(item.transfer_id))

    @get("/{transfer_id:uuid}", guards=[register_readers], operation_id="getTransfer")
    async def get_transfer(
        self, transfer_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> TransferPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return _public(await services.get_transfer(session, transfer_id))

    @patch("/{transfer_id:uuid}", guards=[register_editors], operation_id="updateTransfer")
    async def update(
        self,
        transfer_id: FromPath[uuid.UUID],
        data: JSONBody[TransferUpdate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> TransferPublic:
        async with db.transaction(principal.scope) as session:
            return _public(await services.update_transfer(session, actor, transfer_id, data))


class TransferNoticesController(Controller):
    path = "/api/v1/transfer-notices"
    tags = ["Transfers"]

    @post("/", guards=[subscriber_admin], operation_id="giveTransferNotice", responses=created(TransferNoticePublic))
    async def create(
        self, data: JSONBody[TransferNoticeCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> TransferNoticePublic:
            notice = await services.create_notice(session, actor, request.user, data)
            return TransferNoticePublic.model_validate(notice, from_attributes=True)

        return await create_once(db, request, request.user, work)

    @get("/", guards=[register_readers], operation_id="listTransferNotices")
    async def list_notices(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[TransferNoticePublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_notices(
                session, tenant_id=tenant_id, after=decode_id_cursor(cursor), limit=limit
            )
        return page_of(
            rows, limit, lambda n: TransferNoticePublic.model_validate(n, from_attributes=True), lambda n: str(n.id)
        )
