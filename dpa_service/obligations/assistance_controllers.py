"""Assistance requests' JSON API: Subscribers ask (owners, admins and members), legal answers; both read."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.obligations import assistance
from dpa_service.obligations.assistance_models import (
    AssistanceRequestCreate,
    AssistanceRequestDetail,
    AssistanceRequestPublic,
    AssistanceResponseCreate,
    AssistanceResponsePublic,
)

readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
StatusFilter = Annotated[str | None, QueryParameter(name="status", max_length=20, description="open, answered or late")]


class AssistanceRequestsController(Controller):
    path = "/api/v1/assistance-requests"
    tags = ["Obligations"]

    @post("/", guards=[subscriber_only], operation_id="requestAssistance", responses=created(AssistanceRequestPublic))
    async def create(
        self,
        data: JSONBody[AssistanceRequestCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """A Subscriber's user (owner, admin or member) asks the processor for help (`kind`: `data_subject_request`,
        `dpia` or `other`; `description`); due 30 days later (the processor's policy); legal is e-mailed."""
        work = partial(assistance.create_request, db, actor, request.user, data,
                       base_url=public_base_url(request, settings))  # fmt: skip
        return await create_once(db, request, request.user, work)

    @get("/", guards=[readers], operation_id="listAssistanceRequests")
    async def list_requests(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        status: StatusFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[AssistanceRequestPublic]:
        """Requests, oldest first: a Subscriber's own; legal all (`?tenant_id=` narrows); `?status=open|answered|late`.
        Each says whether it is `late` (open past `due_at`, or answered after it)."""
        return await assistance.list_requests(
            db, principal, tenant_id=tenant_id, status=status, cursor=cursor, limit=limit
        )

    @get("/{request_id:uuid}", guards=[readers], operation_id="getAssistanceRequest")
    async def get_request(
        self, request_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> AssistanceRequestDetail:
        """One request with its answers."""
        return await assistance.get_request(db, principal, request_id)

    @post(
        "/{request_id:uuid}/responses",
        guards=[legal_only],
        operation_id="answerAssistanceRequest",
        responses=created(AssistanceResponsePublic),
    )
    async def answer(
        self,
        request_id: FromPath[uuid.UUID],
        data: JSONBody[AssistanceResponseCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """Legal answers (`text`); the request becomes `answered`, and the tenant's owners and admins are e-mailed."""
        work = partial(assistance.answer, db, actor, request.user, request_id, data,
                       base_url=public_base_url(request, settings))  # fmt: skip
        return await create_once(db, request, request.user, work)
