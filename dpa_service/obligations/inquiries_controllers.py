"""The inquiries API: legal asks, Subscribers read and answer (API.md, "Controller obligations")."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.obligations import inquiries
from dpa_service.obligations.inquiries_models import (
    InquiryAnswerCreate,
    InquiryBatchCreated,
    InquiryCreate,
    InquiryPublic,
)
from dpa_service.obligations.models import InquiryStatus

readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
StatusFilter = Annotated[InquiryStatus | None, QueryParameter(name="status")]
BatchFilter = Annotated[uuid.UUID | None, QueryParameter(name="batch_id", description="One fan-out's inquiries")]


class InquiriesController(Controller):
    path = "/api/v1/inquiries"
    tags = ["Obligations"]

    @post("/", guards=[legal_only], operation_id="askInquiry", responses=created(InquiryBatchCreated))
    async def ask(
        self, data: JSONBody[InquiryCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """Legal asks `tenant_ids` (a list, or `"all"`: every tenant with an executed DPA) a question, due
        `due_at` (default and minimum: 10 Business Days, clause 9.3; earlier is 422); one inquiry and one notice
        per tenant."""
        return await create_once(db, request, request.user, partial(inquiries.ask, db, actor, request.user, data))

    @get("/", guards=[readers], operation_id="listInquiries")
    async def list_inquiries(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        status: StatusFilter = None,
        batch_id: BatchFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[InquiryPublic]:
        """Inquiries, newest first: a Subscriber's own; legal sees every tenant's (`?tenant_id=` narrows);
        `?status=open|answered|overdue` filters."""
        return await inquiries.list_inquiries(
            db, principal, tenant_id=tenant_id, status=status, batch_id=batch_id, cursor=cursor, limit=limit
        )

    @get("/{inquiry_id:uuid}", guards=[readers], operation_id="getInquiry")
    async def get_inquiry(self, inquiry_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> InquiryPublic:
        """One inquiry with its answers (another tenant's is 404)."""
        return await inquiries.get_inquiry(db, principal, inquiry_id)

    @post(
        "/{inquiry_id:uuid}/responses",
        guards=[subscriber_admin],
        operation_id="answerInquiry",
        responses=created(InquiryPublic),
    )
    async def answer(
        self,
        inquiry_id: FromPath[uuid.UUID],
        data: JSONBody[InquiryAnswerCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        """A Subscriber's owner or admin answers (`{answer}`, append-only): the inquiry becomes `answered`, also
        after its due date (its `late` says so). Answers with the inquiry."""
        return await create_once(
            db, request, request.user, partial(inquiries.answer, db, actor, request.user, inquiry_id, data)
        )
