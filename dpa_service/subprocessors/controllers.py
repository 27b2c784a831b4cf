"""Sub-processor list, its changes, tenants' objections and acceptances, and each tenant's authorized set."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from dpa_service.core.exceptions import NotFound
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles, subscriber_admin, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, page_of
from dpa_service.subprocessors import services
from dpa_service.subprocessors.models import (
    AcceptancePublic,
    ChangeCreate,
    ChangePublic,
    ObjectionCreate,
    ObjectionPublic,
    ObjectionResolve,
    ProposalPublish,
    TenantAuthorization,
    VersionPublic,
)

legal_only = require_roles(Role.LEGAL)
objection_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

ChangeStatus = Annotated[
    Literal["pending", "effective", "proposed", "withdrawn"] | None, QueryParameter(name="status", required=False)
]
ObjectionStatus = Annotated[Literal["open", "resolved"] | None, QueryParameter(name="status", required=False)]
TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
VersionNumber = Annotated[int, Parameter(ge=1, le=2**31 - 1, description="A list version number")]
ChangeFilter = Annotated[uuid.UUID | None, QueryParameter(name="change_id")]


class SubprocessorsController(Controller):
    path = "/api/v1/subprocessors"
    tags = ["Sub-processors"]

    @get("/", operation_id="currentSubprocessors")
    async def current(self, principal: PrincipalDep, db: DbDep) -> VersionPublic:
        async with db.transaction(principal.scope, write=False) as session:
            version = await services.current_version(session)
        if version is None:
            raise NotFound("No sub-processor list has been published yet.")
        return services.version_public(version)

    @get("/versions/{number:int}", operation_id="subprocessorListVersion")
    async def version(self, number: VersionNumber, principal: PrincipalDep, db: DbDep) -> VersionPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return services.version_public(await services.get_version(session, number))


class SubprocessorChangesController(Controller):
    path = "/api/v1/subprocessor-changes"
    tags = ["Sub-processors"]

    @post("/", guards=[legal_only], operation_id="publishSubprocessorChange", responses=created(ChangePublic))
    async def publish(
        self, data: JSONBody[ChangeCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> ChangePublic:
            return services.change_public(await services.publish_change(session, actor, data))

        return await create_once(db, request, request.user, work)

    @get("/", operation_id="listSubprocessorChanges")
    async def list_changes(
        self,
        principal: PrincipalDep,
        db: DbDep,
        status: ChangeStatus = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ChangePublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_changes(
                session, staff=principal.is_staff, status=status, before=decode_id_cursor(cursor), limit=limit
            )
        return page_of(
            rows, limit, lambda c: services.change_public(c, staff=principal.is_staff), lambda change: str(change.id)
        )

    @get("/{change_id:uuid}", operation_id="getSubprocessorChange")
    async def get_change(self, change_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> ChangePublic:
        async with db.transaction(principal.scope, write=False) as session:
            change = await services.get_change(session, change_id, staff=principal.is_staff)
        return services.change_public(change, staff=principal.is_staff)

    @post("/{change_id:uuid}/publish", guards=[legal_only], operation_id="publishSubprocessorProposal", status_code=200)
    async def publish_proposal(
        self,
        change_id: FromPath[uuid.UUID],
        data: JSONBody[ProposalPublish],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> ChangePublic:
        async with db.transaction(principal.scope) as session:
            return services.change_public(await services.publish_proposal(session, actor, change_id, data))

    @post(
        "/{change_id:uuid}/objections",
        guards=[subscriber_admin],
        operation_id="objectToSubprocessorChange",
        responses=created(ObjectionPublic),
    )
    async def object_to(
        self,
        change_id: FromPath[uuid.UUID],
        data: JSONBody[ObjectionCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        async def work(session: Any) -> ObjectionPublic:
            return services.objection_public(await services.object_to(session, actor, change_id, data))

        return await create_once(db, request, request.user, work)

    @post(
        "/{change_id:uuid}/acceptance",
        guards=[subscriber_admin],
        operation_id="acceptSubprocessorChange",
        responses=created(AcceptancePublic),
    )
    async def accept(
        self, change_id: FromPath[uuid.UUID], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> AcceptancePublic:
            return AcceptancePublic.model_validate(
                await services.accept(session, actor, change_id), from_attributes=True
            )

        return await create_once(db, request, request.user, work)


class ObjectionsController(Controller):
    path = "/api/v1/objections"
    tags = ["Sub-processors"]

    @get("/", guards=[objection_readers], operation_id="listObjections")
    async def list_objections(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        change_id: ChangeFilter = None,
        status: ObjectionStatus = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ObjectionPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_objections(
                session,
                tenant_id=tenant_id,
                change_id=change_id,
                status=status,
                after=decode_id_cursor(cursor),
                limit=limit,
            )
        return page_of(rows, limit, services.objection_public, lambda o: str(o.id))

    @get("/{objection_id:uuid}", guards=[objection_readers], operation_id="getObjection")
    async def get_objection(
        self, objection_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> ObjectionPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return services.objection_public(await services.get_objection(session, objection_id))

    @post("/{objection_id:uuid}/resolve", guards=[legal_only], operation_id="resolveObjection", status_code=200)
    async def resolve(
        self,
        objection_id: FromPath[uuid.UUID],
        data: JSONBody[ObjectionResolve],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> ObjectionPublic:
        async with db.transaction(principal.scope) as session:
            return services.objection_public(await services.resolve_objection(session, actor, objection_id, data))

    @post("/{objection_id:uuid}/withdraw", guards=[subscriber_admin], operation_id="withdrawObjection", status_code=200)
    async def withdraw(
        self, objection_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> ObjectionPublic:
        async with db.transaction(principal.scope) as session:
            return services.objection_public(await services.withdraw_objection(session, actor, objection_id))


class TenantSubprocessorsController(Controller):
    path = "/api/v1/tenant/subprocessors"
    tags = ["Sub-processors"]

    @get("/", guards=[subscriber_only], operation_id="tenantAuthorizedSubprocessors")
    async def authorized(self, principal: PrincipalDep, db: DbDep) -> TenantAuthorization:
        async with db.transaction(principal.scope, write=False) as session:
            return await services.tenant_authorization(session)
