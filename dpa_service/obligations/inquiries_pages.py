"""Inquiry pages: legal asks and follows up (`/staff/inquiries`); a Subscriber reads and answers (`/app/inquiries`).

The same service calls as the JSON API: `inquiries.ask` / `list_inquiries` / `get_inquiry` / `answer`.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.agreements import services as agreements
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import FieldError, InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep
from dpa_service.obligations import inquiries, inquiries_recipients
from dpa_service.obligations.business_days import end_of_day
from dpa_service.obligations.inquiries_models import InquiryAnswerCreate, InquiryCreate
from dpa_service.obligations.models import InquiryStatus
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

_PAGE_SIZE = 50
_TENANT_CHOICES = 100  # tenants offered on the form at once; a name search finds the others
STATUSES = [status.value for status in InquiryStatus]


def _status(value: str) -> InquiryStatus | None:
    return InquiryStatus(value) if value in STATUSES else None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


# --- legal -------------------------------------------------------------------------------------------------------


async def _tenant_choices(db: Database, principal: Principal, name: str) -> list[tuple[str, str]]:
    found = await tenants.list_tenants(db, principal, cursor=None, limit=_TENANT_CHOICES, name=name or None)
    executed = await agreements.executed_templates(db, principal.scope, [t.id for t in found.items])
    return [
        (str(t.id), f"{t.name} ({t.country}){', executed DPA' if t.id in executed else ''}")
        for t in sorted(found.items, key=lambda t: t.name.casefold())
    ]


async def _new_form(
    request: Request[Any, Any, Any], db: Database, *, status: int = 200, name: str = "", **context: Any
) -> Template:
    principal: Principal = request.user
    suggested = inquiries_recipients.suggested_due_at(utcnow()).date().isoformat()
    form = context.pop("form", None) or {"due_at": suggested, "recipients": "chosen"}
    return render(request, "obligations/inquiries_staff_new.html.j2", status=status, heading="New inquiry",
                  form=form, suggested=suggested, name=name,
                  processor_country=registry.country_name(inquiries_recipients.processor_country()),
                  choices=await _tenant_choices(db, principal, name),
                  executed_count=len(await agreements.executed_templates(db, principal.scope)),
                  chosen=_chosen(form), **context)  # fmt: skip


def _chosen(form: dict[str, Any]) -> list[str]:
    value = form.get("tenant_ids", [])
    return [value] if isinstance(value, str) else list(value)


def _ask_data(form: dict[str, Any]) -> InquiryCreate:
    """The posted form as the API's body, every mistake at once. The date picker names a day (due at its end,
    UTC); left at the date the form suggested, it asks for the DPA's minimum for these recipients, which their
    public holidays may make a day or two later."""
    problems: list[FieldError] = []
    recipients = one(form, "recipients")
    if recipients not in ("all", "chosen"):
        problems.append(FieldError("recipients", "choose every tenant with an executed DPA, or the tenants below"))
    body: dict[str, Any] = {
        "question": one(form, "question"),
        "tenant_ids": "all" if recipients == "all" else _chosen(form),
    }
    due = one(form, "due_at").strip()
    if due and due != one(form, "due_at_suggested"):
        try:
            body["due_at"] = end_of_day(date.fromisoformat(due)).isoformat()
        except ValueError:
            problems.append(FieldError("due_at", "must be a date, YYYY-MM-DD"))
    try:
        data = validated(InquiryCreate, body)
    except InvalidInput as exc:
        problems += exc.errors
    if problems:
        raise InvalidInput("The inquiry cannot be sent.", problems)
    return data


def _beside_fields(exc: InvalidInput) -> dict[str, str]:
    """Errors by form field: one recipient's error (`tenant_ids.3`) shows beside the recipients list."""
    errors: dict[str, str] = {}
    for name, message in field_errors(exc).items():
        errors.setdefault("tenant_ids" if name.startswith("tenant_ids.") else name, message)
    return errors


class StaffInquiryPages(Controller):
    """Legal's inquiries: every tenant's, with status; a new inquiry to one tenant, several or all."""

    path = "/staff/inquiries"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def index(
        self,
        request: Request[Any, Any, Any],
        db: DbDep,
        status: FromQuery[str] = "",
        batch_id: FromQuery[str] = "",
        cursor: FromQuery[str] = "",
    ) -> Template:
        """Every tenant's inquiries, newest first, with tenant and status; filter by status (or one fan-out)."""
        batch = _uuid(batch_id)
        page = await inquiries.list_inquiries(db, request.user, tenant_id=None, status=_status(status),
                                              batch_id=batch, cursor=cursor or None, limit=_PAGE_SIZE)  # fmt: skip
        names = await tenants.names(db, request.user.scope, list({i.tenant_id for i in page.items}))
        return render(request, "obligations/inquiries_staff_list.html.j2", heading="Inquiries", items=page.items,
                      names=names, statuses=STATUSES, status_filter=status if _status(status) else "",
                      batch_id=str(batch) if batch else "",
                      next_url=next_page("/staff/inquiries", page.next_cursor, status=status or None,
                                         batch_id=str(batch) if batch else None))  # fmt: skip

    @get("/new")
    async def new(self, request: Request[Any, Any, Any], db: DbDep, name: FromQuery[str] = "") -> Template:
        """The form: the question, the due date (the DPA's minimum by default) and the recipients (every tenant
        with an executed DPA, or those chosen; `name` narrows the tenants offered)."""
        return await _new_form(request, db, name=name.strip())

    @post("/", status_code=200)
    async def ask(self, request: Request[Any, Any, Any], db: DbDep) -> Template | Redirect:
        """Ask the question; mistakes are shown beside their fields with everything typed kept."""
        form = await form_data(request)
        try:
            data = _ask_data(form)
            batch = await inquiries.ask(db, actor_of(request), request.user, data)
        except InvalidInput as exc:
            return await _new_form(request, db, status=422, form=form, errors=_beside_fields(exc),
                                   name=str(form.get("name", "")))  # fmt: skip
        tenants_word = "tenant" if batch.count == 1 else "tenants"
        message = f"Asked {batch.count} {tenants_word}; the answer is due {batch.due_at.date().isoformat()}."
        return redirect(request, f"/staff/inquiries?batch_id={batch.batch_id}", message)

    @get("/{inquiry_id:uuid}")
    async def detail(self, request: Request[Any, Any, Any], inquiry_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One inquiry: the tenant, the question, the due date, the status and every answer."""
        inquiry = await inquiries.get_inquiry(db, request.user, inquiry_id)
        names = await tenants.names(db, request.user.scope, [inquiry.tenant_id])
        return render(request, "obligations/inquiries_staff_detail.html.j2", heading="Inquiry", inquiry=inquiry,
                      tenant_name=names.get(inquiry.tenant_id, str(inquiry.tenant_id)))  # fmt: skip


# --- Subscriber --------------------------------------------------------------------------------------------------


async def _detail(
    request: Request[Any, Any, Any], db: Database, inquiry_id: uuid.UUID, *, status: int = 200, **context: Any
) -> Template:
    principal: Principal = request.user
    inquiry = await inquiries.get_inquiry(db, principal, inquiry_id)
    return render(request, "obligations/inquiries_app_detail.html.j2", status=status, heading="Inquiry",
                  inquiry=inquiry, can_answer=principal.role in (Role.OWNER, Role.ADMIN), **context)  # fmt: skip


class InquiryPages(Controller):
    """A Subscriber's inquiries from the processor, and the answer form for its owners and admins."""

    path = "/app/inquiries"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def index(
        self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "",
        unanswered_cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """Unanswered inquiries first, soonest due first (the overdue ones on top), with their due dates; then those
        answered, newest first; each list paged."""
        unanswered = await inquiries.list_unanswered(db, request.user, cursor=unanswered_cursor or None,
                                                     limit=_PAGE_SIZE)  # fmt: skip
        answered = await inquiries.list_inquiries(db, request.user, tenant_id=None, status=InquiryStatus.ANSWERED,
                                                  cursor=cursor or None, limit=_PAGE_SIZE)  # fmt: skip
        return render(request, "obligations/inquiries_app_list.html.j2", heading="Inquiries",
                      unanswered=unanswered.items, answered=answered.items,
                      next_unanswered=next_page("/app/inquiries", unanswered.next_cursor,
                                                cursor_name="unanswered_cursor"),
                      next_url=next_page("/app/inquiries", answered.next_cursor))  # fmt: skip

    @get("/{inquiry_id:uuid}", guards=[subscriber_pages])
    async def detail(self, request: Request[Any, Any, Any], inquiry_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One inquiry, its answers, and (for owners and admins) the form to answer it."""
        return await _detail(request, db, inquiry_id)

    @post("/{inquiry_id:uuid}/responses", guards=[subscriber_admin_pages], status_code=200)
    async def answer(
        self, request: Request[Any, Any, Any], inquiry_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Send an answer (kept as sent: answers are never changed; a further answer adds to it)."""
        form = await form_data(request)
        try:
            data = validated(InquiryAnswerCreate, {"answer": one(form, "answer")})
            await inquiries.answer(db, actor_of(request), request.user, inquiry_id, data)
        except InvalidInput as exc:
            return await _detail(request, db, inquiry_id, status=422, errors=field_errors(exc), form=form)
        return redirect(request, f"/app/inquiries/{inquiry_id}", "Your answer was sent to the processor.")
