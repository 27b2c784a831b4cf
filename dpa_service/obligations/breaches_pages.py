"""Breach-notice pages: a Subscriber's notices, the form to report one and to add information
(`/app/breach-notices`); legal's queue of every tenant's notices, unacknowledged first, and the acknowledgement
(`/staff/breach-notices`).

The same service calls as the JSON API: `breaches.report` / `list_notices` / `get_notice` / `add_update` /
`acknowledge`.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, SettingsDep, public_base_url
from dpa_service.obligations import breaches
from dpa_service.obligations.breaches_models import BreachNoticeCreate, BreachNoticeUpdateCreate
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, lines, next_page, redirect, render

_PAGE_SIZE = 50
_WHOLE_NUMBER = re.compile(r"^\s*\d+\s*$")
_OPTIONAL = ("records_estimate", "consequences", "contact_email")
_FIELDS = ("became_aware_at", "description", "data_categories", "subjects_estimate", "records_estimate",
           "consequences", "measures", "contact_email")  # fmt: skip


def _moment(value: str) -> datetime | str:
    """A `datetime-local` input's value (no offset) read as UTC, as the form says; anything unreadable is passed on
    for the schema to refuse beside the field."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def breach_body(form: dict[str, Any]) -> dict[str, Any]:
    """The posted form as the API's body: categories one per line, whole numbers as numbers, blank optional fields
    left out."""
    body: dict[str, Any] = {key: form.get(key, "") for key in _FIELDS}
    body["became_aware_at"] = _moment(str(body["became_aware_at"]))
    body["data_categories"] = lines(body["data_categories"])
    for key in ("subjects_estimate", "records_estimate"):
        if isinstance(body[key], str) and _WHOLE_NUMBER.match(body[key]):
            body[key] = int(body[key])
    return {key: value for key, value in body.items() if not (key in _OPTIONAL and value == "")}


def _errors(exc: InvalidInput) -> dict[str, str]:
    """Errors by form field: `data_categories.2` is shown beside the categories box."""
    found: dict[str, str] = {}
    for field, message in field_errors(exc).items():
        found.setdefault(field.split(".")[0], message)
    return found


def _can_report(principal: Principal) -> bool:
    return principal.role in (Role.OWNER, Role.ADMIN)


async def _list(
    request: Request[Any, Any, Any], db: Database, cursor: str | None, *, status: int = 200, **extra: Any
) -> Template:
    page = await breaches.list_notices(db, request.user, cursor=cursor, limit=_PAGE_SIZE)
    return render(request, "obligations/breaches_list.html.j2", status=status, heading="Breach notices",
                  notices=page.items, can_report=_can_report(request.user), now=utcnow(), lateness=breaches.lateness,
                  next_url=next_page("/app/breach-notices", page.next_cursor), **extra)  # fmt: skip


async def _detail(
    request: Request[Any, Any, Any], db: Database, notice_id: uuid.UUID, *, status: int = 200, **extra: Any
) -> Template:
    notice = await breaches.get_notice(db, request.user, notice_id)
    staff = request.user.role == Role.LEGAL
    names = await tenants.names(db, request.user.scope, [notice.tenant_id]) if staff else {}
    return render(request, "obligations/breaches_detail.html.j2", status=status, heading="Breach notice",
                  notice=notice, staff=staff, tenant_name=names.get(notice.tenant_id, ""),
                  lateness=breaches.lateness(notice), can_update=_can_report(request.user),
                  **{"conflict": "", **extra})  # fmt: skip


class BreachNoticePages(Controller):
    """A Subscriber's breach notices: the list, the report form, each notice with its updates."""

    path = "/app/breach-notices"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def notices(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """The tenant's breach notices and, for owners and admins, the form to report one."""
        return await _list(request, db, cursor or None)

    @post("/", guards=[subscriber_admin_pages], status_code=200)
    async def report(self, request: Request[Any, Any, Any], db: DbDep, settings: SettingsDep) -> Template | Redirect:
        """Report a breach: errors beside their fields with the input kept; on success, the notice with its
        deadline and whether it was late."""
        form = await form_data(request)
        try:
            data = validated(BreachNoticeCreate, breach_body(form))
            notice = await breaches.report(db, actor_of(request), request.user, data,
                                           base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _list(request, db, None, status=422, errors=_errors(exc), form=form)
        timing = f"late, {breaches.lateness(notice)} after it" if notice.late else "on time"
        message = f"Breach notice sent to the processor's legal team. The 72-hour deadline was " \
                  f"{notice.deadline_at:%Y-%m-%d %H:%M} UTC: reported {timing}."  # fmt: skip
        return redirect(request, f"/app/breach-notices/{notice.id}", message)

    @get("/{notice_id:uuid}", guards=[subscriber_pages])
    async def notice(self, request: Request[Any, Any, Any], notice_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One notice, its updates in order and, for owners and admins, the form to add information."""
        return await _detail(request, db, notice_id)

    @post("/{notice_id:uuid}/updates", guards=[subscriber_admin_pages], status_code=200)
    async def add_update(
        self, request: Request[Any, Any, Any], notice_id: FromPath[uuid.UUID], db: DbDep, settings: SettingsDep
    ) -> Template | Redirect:
        """Add information to a notice (Art. 33(4) GDPR: in phases); legal is told."""
        form = await form_data(request)
        try:
            data = validated(BreachNoticeUpdateCreate, {"text": form.get("text", "")})
            await breaches.add_update(db, actor_of(request), request.user, notice_id, data,
                                      base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _detail(request, db, notice_id, status=422, errors=_errors(exc), form=form)
        return redirect(request, f"/app/breach-notices/{notice_id}", "Update sent to the processor's legal team.")


class BreachNoticeStaffPages(Controller):
    """Legal's queue of breach notices from every tenant, and the acknowledgement."""

    path = "/staff/breach-notices"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def queue(
        self,
        request: Request[Any, Any, Any],
        db: DbDep,
        status: FromQuery[str] = "",
        reported_cursor: FromQuery[str] = "",
        acknowledged_cursor: FromQuery[str] = "",
    ) -> Template:
        """Every tenant's notices: those awaiting acknowledgement first, then the acknowledged; `?status=` shows
        one of the two."""
        wanted = status if status in breaches.STATUSES else ""
        cursors = {"reported": reported_cursor, "acknowledged": acknowledged_cursor}
        sections = []
        for section in [wanted] if wanted else list(breaches.STATUSES):
            page = await breaches.list_notices(db, request.user, status=section, cursor=cursors[section] or None,
                                               limit=_PAGE_SIZE)  # fmt: skip
            more = next_page("/staff/breach-notices", page.next_cursor, cursor_name=f"{section}_cursor", status=wanted)
            sections.append((section, page.items, more))
        ids = list({notice.tenant_id for _, items, _ in sections for notice in items})
        return render(request, "obligations/breaches_queue.html.j2", heading="Breach notices", sections=sections,
                      status_filter=wanted, tenant_names=await tenants.names(db, request.user.scope, ids),
                      lateness=breaches.lateness)  # fmt: skip

    @get("/{notice_id:uuid}")
    async def notice(self, request: Request[Any, Any, Any], notice_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One notice with its updates, and the button to acknowledge it."""
        return await _detail(request, db, notice_id)

    @post("/{notice_id:uuid}/acknowledge", status_code=200)
    async def acknowledge(
        self, request: Request[Any, Any, Any], notice_id: FromPath[uuid.UUID], db: DbDep, settings: SettingsDep
    ) -> Template | Redirect:
        """Acknowledge the notice (once); the tenant's owners and admins are told."""
        try:
            await breaches.acknowledge(db, actor_of(request), request.user, notice_id,
                                       base_url=public_base_url(request, settings))  # fmt: skip
        except Conflict as exc:
            return await _detail(request, db, notice_id, status=409, conflict=exc.detail)
        return redirect(request, f"/staff/breach-notices/{notice_id}", "Acknowledged; the tenant is told.")
