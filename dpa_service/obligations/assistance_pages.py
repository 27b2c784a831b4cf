"""Assistance pages: a Subscriber's `/app/assistance` (its requests, the form to ask, each request with its answers)
and legal's `/staff/assistance` (open requests first, the late ones marked; the answer form on each).

The same service calls as the JSON API: `assistance.create_request` / `list_requests` / `get_request` / `answer`.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, SettingsDep, public_base_url
from dpa_service.obligations import assistance
from dpa_service.obligations.assistance_models import AssistanceRequestCreate, AssistanceResponseCreate
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

_PAGE_SIZE = 50
KINDS = list(assistance.KIND_LABELS.items())


async def _app_list(
    request: Request[Any, Any, Any], db: Database, cursor: str | None, *, status: int = 200, **extra: Any
) -> Template:
    principal: Principal = request.user
    page = await assistance.list_requests(db, principal, tenant_id=None, status=None, cursor=cursor, limit=_PAGE_SIZE)
    return render(request, "obligations/assistance_app_list.html.j2", status=status, heading="Assistance",
                  requests=page.items, kinds=KINDS, labels=assistance.KIND_LABELS,
                  next_url=next_page("/app/assistance", page.next_cursor), **extra)  # fmt: skip


class AssistancePages(Controller):
    """A Subscriber's requests for the processor's assistance."""

    path = "/app/assistance"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def index(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """The tenant's requests with their status and due date, and the form to ask (any of its users)."""
        return await _app_list(request, db, cursor or None)

    @post("/", guards=[subscriber_pages], status_code=200)
    async def ask(self, request: Request[Any, Any, Any], db: DbDep, settings: SettingsDep) -> Template | Redirect:
        """Ask for assistance with a data subject request, a DPIA or something else; due in 30 days."""
        form = await form_data(request)
        try:
            data = validated(AssistanceRequestCreate, {"kind": one(form, "kind"),
                                                       "description": one(form, "description")})  # fmt: skip
            created = await assistance.create_request(db, actor_of(request), request.user, data,
                                                      base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _app_list(request, db, None, status=422, errors=field_errors(exc), form=form)
        return redirect(request, f"/app/assistance/{created.id}",
                        f"Request sent; the processor answers by {created.due_at:%Y-%m-%d}.")  # fmt: skip

    @get("/{request_id:uuid}", guards=[subscriber_pages])
    async def detail(self, request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One request and the processor's answers."""
        found = await assistance.get_request(db, request.user, request_id)
        return render(request, "obligations/assistance_detail.html.j2", heading=assistance.KIND_LABELS[found.kind],
                      item=found, tenant_name=None, can_answer=False, back="/app/assistance")  # fmt: skip


async def _staff_detail(
    request: Request[Any, Any, Any], db: Database, request_id: uuid.UUID, *, status: int = 200, **extra: Any
) -> Template:
    found = await assistance.get_request(db, request.user, request_id)
    names = await tenants.names(db, request.user.scope, [found.tenant_id])
    return render(request, "obligations/assistance_detail.html.j2", status=status,
                  heading=assistance.KIND_LABELS[found.kind], item=found, tenant_name=names.get(found.tenant_id, ""),
                  can_answer=True, back="/staff/assistance", **extra)  # fmt: skip


class AssistanceStaffPages(Controller):
    """Legal's queue of assistance requests."""

    path = "/staff/assistance"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "", answered: FromQuery[str] = ""
    ) -> Template:
        """Open requests first (oldest, so the first due, on top; the late ones marked), then the answered ones."""
        principal: Principal = request.user
        open_page = await assistance.list_requests(db, principal, tenant_id=None, status="open",
                                                   cursor=cursor or None, limit=_PAGE_SIZE)  # fmt: skip
        done = await assistance.list_requests(db, principal, tenant_id=None, status="answered",
                                              cursor=answered or None, limit=_PAGE_SIZE)  # fmt: skip
        ids = {r.tenant_id for r in [*open_page.items, *done.items]}
        names = await tenants.names(db, principal.scope, list(ids))
        return render(request, "obligations/assistance_staff_list.html.j2", heading="Assistance requests",
                      open_requests=sorted(open_page.items, key=lambda r: not r.late), answered=done.items,
                      names=names, labels=assistance.KIND_LABELS,
                      next_open=next_page("/staff/assistance", open_page.next_cursor),
                      next_answered=next_page("/staff/assistance", done.next_cursor,
                                              cursor_name="answered"))  # fmt: skip

    @get("/{request_id:uuid}")
    async def detail(self, request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One request, its answers, and the form to answer."""
        return await _staff_detail(request, db, request_id)

    @post("/{request_id:uuid}/responses", status_code=200)
    async def answer(
        self, request: Request[Any, Any, Any], request_id: FromPath[uuid.UUID], db: DbDep, settings: SettingsDep
    ) -> Template | Redirect:
        """Answer the request; its tenant's owners and admins are e-mailed the answer."""
        form = await form_data(request)
        try:
            data = validated(AssistanceResponseCreate, {"text": one(form, "text")})
            await assistance.answer(db, actor_of(request), request.user, request_id, data,
                                    base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _staff_detail(request, db, request_id, status=422, errors=field_errors(exc), form=form)
        return redirect(request, f"/staff/assistance/{request_id}", "Answer sent to the tenant.")
