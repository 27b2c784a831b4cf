"""The breach-notice API (API.md, "Controller obligations"): Subscribers report and add updates, legal reads every
tenant's notices and acknowledges them."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.obligations import breaches
from dpa_service.obligations.breaches_models import (
    BreachNoticeCreate,
    BreachNoticeDetail,
    BreachNoticePublic,
    BreachNoticeUpdateCreate,
    BreachNoticeUpdatePublic,
)

readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id", description="Legal: one tenant's")]
StatusFilter = Annotated[str | None, QueryParameter(name="status", max_length=20, description="reported|acknowledged")]


class BreachNoticesController(Controller):
    path = "/api/v1/breach-notices"
    tags = ["Controller obligations"]

    @post("/", guards=[subscriber_admin], operation_id="reportBreach", responses=created(BreachNoticeDetail))
    async def report(
        self,
        data: JSONBody[BreachNoticeCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """A Subscriber's owner or admin reports a personal data breach: `deadline_at` is `became_aware_at` + 72 h
        and `late` says whether it came after; a future `became_aware_at` is 422. Legal is told at once."""
        base = public_base_url(request, settings)
        work = partial(breaches.report, db, actor, request.user, data, base_url=base)
        return await create_once(db, request, request.user, work)

    @get("/", guards=[readers], operation_id="listBreachNotices")
    async def list_notices(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        status: StatusFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[BreachNoticePublic]:
        """Breach notices, oldest first: a Subscriber's own; legal sees every tenant's (`?tenant_id=` narrows);
        `?status=reported|acknowledged` filters."""
        return await breaches.list_notices(
            db, principal, tenant_id=tenant_id, status=status, cursor=cursor, limit=limit
        )

    @get("/{notice_id:uuid}", guards=[readers], operation_id="getBreachNotice")
    async def get_notice(
        self, notice_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> BreachNoticeDetail:
        """One breach notice with its updates, in the order they were given."""
        return await breaches.get_notice(db, principal, notice_id)

    @post(
        "/{notice_id:uuid}/updates",
        guards=[subscriber_admin],
        operation_id="addBreachNoticeUpdate",
        responses=created(BreachNoticeUpdatePublic),
    )
    async def add_update(
        self,
        notice_id: FromPath[uuid.UUID],
        data: JSONBody[BreachNoticeUpdateCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """Further information on a reported breach (`{text}`), given in phases as Art. 33(4) GDPR allows; also
        after the acknowledgement. Legal is told."""
        base = public_base_url(request, settings)
        work = partial(breaches.add_update, db, actor, request.user, notice_id, data, base_url=base)
        return await create_once(db, request, request.user, work)

    @post("/{notice_id:uuid}/acknowledge", guards=[legal_only], operation_id="acknowledgeBreachNotice", status_code=200)
    async def acknowledge(
        self,
        notice_id: FromPath[uuid.UUID],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> BreachNoticeDetail:
        """Legal acknowledges a breach notice: `status` becomes `acknowledged` with `acknowledged_at`; a second
        acknowledgement is 409."""
        base = public_base_url(request, settings)
        return await breaches.acknowledge(db, actor, request.user, notice_id, base_url=base)
