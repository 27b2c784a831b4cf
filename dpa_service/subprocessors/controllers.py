"""Sub-processor list, its changes, tenants' objections and acceptances, and each tenant's authorized set."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any, Literal

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles, subscriber_admin, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.subprocessors import answers, authorization, publishing, services
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
        """The sub-processor list in force now, with its version and the date it took effect."""
        return await services.current_list(db, principal)

    @get("/versions/{number:int}", operation_id="subprocessorListVersion")
    async def version(self, number: VersionNumber, principal: PrincipalDep, db: DbDep) -> VersionPublic:
        """A past or pending version of the list, whole."""
        return await services.list_version(db, principal, number)


class SubprocessorChangesController(Controller):
    path = "/api/v1/subprocessor-changes"
    tags = ["Sub-processors"]

    @post("/", guards=[legal_only], operation_id="publishSubprocessorChange", responses=created(ChangePublic))
    async def publish(
        self, data: JSONBody[ChangeCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """Legal publishes a change (`add`, `remove`, `notice_days`, `reason`): the next list version, pending for
        the notice period (at least 30 days unless `urgent`); every tenant with an executed DPA is notified."""
        return await create_once(db, request, request.user, partial(publishing.publish_change, db, actor, data))

    @get("/", operation_id="listSubprocessorChanges")
    async def list_changes(
        self,
        principal: PrincipalDep,
        db: DbDep,
        status: ChangeStatus = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ChangePublic]:
        """Changes, newest first, with their status (`pending`, `effective`; staff also see `proposed`)."""
        return await publishing.list_changes(db, principal, status=status, cursor=cursor, limit=limit)

    @get("/{change_id:uuid}", operation_id="getSubprocessorChange")
    async def get_change(self, change_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> ChangePublic:
        """One change, with its notice period and objection deadline."""
        return await publishing.get_change(db, principal, change_id)

    @post("/{change_id:uuid}/publish", guards=[legal_only], operation_id="publishSubprocessorProposal", status_code=200)
    async def publish_proposal(
        self, change_id: FromPath[uuid.UUID], data: JSONBody[ProposalPublish], db: DbDep, actor: ActorDep
    ) -> ChangePublic:
        """Legal publishes the change `dpa registry sync` proposed from the registry file, with notice."""
        return await publishing.publish_proposal(db, actor, change_id, data)

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
        """A Subscriber with an executed DPA objects to a pending change (before `effective_at`, else 409)."""
        return await create_once(
            db, request, request.user, partial(answers.object_to, db, actor, request.user, change_id, data)
        )

    @post(
        "/{change_id:uuid}/acceptance",
        guards=[subscriber_admin],
        operation_id="acceptSubprocessorChange",
        responses=created(AcceptancePublic),
    )
    async def accept(
        self, change_id: FromPath[uuid.UUID], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """A Subscriber accepts a pending change expressly, before its notice period ends."""
        return await create_once(db, request, request.user, partial(answers.accept, db, actor, request.user, change_id))


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
        """Objections: legal sees every tenant's (`?tenant_id=` narrows), a Subscriber its own."""
        return await answers.list_objections(
            db, principal, tenant_id=tenant_id, change_id=change_id, status=status, cursor=cursor, limit=limit
        )

    @get("/{objection_id:uuid}", guards=[objection_readers], operation_id="getObjection")
    async def get_objection(
        self, objection_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> ObjectionPublic:
        """One objection, with legal's resolution once there is one."""
        return await answers.get_objection(db, principal, objection_id)

    @post("/{objection_id:uuid}/resolve", guards=[legal_only], operation_id="resolveObjection", status_code=200)
    async def resolve(
        self,
        objection_id: FromPath[uuid.UUID],
        data: JSONBody[ObjectionResolve],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> ObjectionPublic:
        """Legal resolves an objection (`resolution`, `outcome`); the tenant is told in the words recorded."""
        return await answers.resolve_objection(db, actor, principal, objection_id, data)

    @post("/{objection_id:uuid}/withdraw", guards=[subscriber_admin], operation_id="withdrawObjection", status_code=200)
    async def withdraw(
        self, objection_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> ObjectionPublic:
        """The Subscriber withdraws its own objection: that is its acceptance of the change."""
        return await answers.withdraw_objection(db, actor, principal, objection_id)


class TenantSubprocessorsController(Controller):
    path = "/api/v1/tenant/subprocessors"
    tags = ["Sub-processors"]

    @get("/", guards=[subscriber_only], operation_id="tenantAuthorizedSubprocessors")
    async def authorized(self, principal: PrincipalDep, db: DbDep) -> TenantAuthorization:
        """The list the caller authorized (its executed DPA's, advanced by accepted changes) and what is pending."""
        return await authorization.tenant_authorization(db, principal)
