"""Sub-processor pages: a Subscriber's list, authorized set and answers to pending changes (`/app/subprocessors`);
legal's changes, the publish form and objections (`/staff/subprocessor-changes`, `/staff/objections`).

The same service calls as the JSON API: `services.current_list`, `authorization.tenant_authorization`,
`answers.object_to` / `accept` / `list_objections` / `resolve_objection`, `publishing.publish_change` /
`list_changes`. A 409 from a service (too late, no executed DPA, already answered) is shown on the page it came
from, with its reason, and nothing changes.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core import registry
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep
from dpa_service.subprocessors import answers, authorization, publishing, services
from dpa_service.subprocessors.controllers import VersionNumber
from dpa_service.subprocessors.models import (
    ChangeCreate,
    ObjectionCreate,
    ObjectionResolve,
    VersionPublic,
)
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, lines, next_page, redirect, render

ADD_ROWS = 3
_ROW = re.compile(r"^add\.(\d+)\.(\w+)$")
_PAGE_SIZE = 50


def names(codes: list[str]) -> str:
    """Country codes as names, for the lists ("United States, Republic of Korea")."""
    return ", ".join(registry.location_name(code) for code in codes)


def mechanism_name(code: str | None) -> str:
    if not code:
        return registry.NO_MECHANISM_NAME
    found = registry.mechanisms().get(code)
    return found.name if found else code


def mechanism_options() -> list[tuple[str, str]]:
    return sorted(((m.code, m.name) for m in registry.mechanisms().values()), key=lambda pair: pair[1])


_HELPERS: dict[str, Any] = {"country_names": names, "mechanism_name": mechanism_name}


async def _current(db: Database, principal: Principal) -> VersionPublic | None:
    try:
        return await services.current_list(db, principal)
    except NotFound:
        return None


async def _overview(request: Request[Any, Any, Any], db: Database, *, status: int = 200, **extra: Any) -> Template:
    """The Subscriber's page, with an answer's error or conflict beside the change it concerns."""
    principal: Principal = request.user
    context: dict[str, Any] = {"answer_change": None, "conflict": None, **extra}
    mine = await authorization.tenant_authorization(db, principal)
    pending = await publishing.list_changes(db, principal, status="pending", cursor=None, limit=200)
    return render(
        request,
        "subprocessors/overview.html.j2",
        status=status,
        heading="Sub-processors",
        current=await _current(db, principal),
        mine=mine,
        pending=pending.items,
        answered={change.id: change for change in mine.pending_changes},
        can_answer=principal.role in (Role.OWNER, Role.ADMIN),
        **_HELPERS,
        **context,
    )


class SubprocessorPages(Controller):
    """A Subscriber's sub-processor pages."""

    path = "/app/subprocessors"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def overview(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The list in force, the set this Subscriber authorized, and pending changes with its answers."""
        return await _overview(request, db)

    @get("/versions/{number:int}", guards=[subscriber_pages])
    async def version(self, request: Request[Any, Any, Any], number: VersionNumber, db: DbDep) -> Template:
        """A past or pending version of the list, whole."""
        found = await services.list_version(db, request.user, number)
        return render(request, "subprocessors/version.html.j2", heading=f"Sub-processor list version {number}",
                      version=found, **_HELPERS)  # fmt: skip

    @post("/changes/{change_id:uuid}/objections", guards=[subscriber_admin_pages], status_code=200)
    async def object_to(
        self, request: Request[Any, Any, Any], change_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Object to a pending change, with a reason (legal resolves it)."""
        form = await form_data(request)
        try:
            data = validated(ObjectionCreate, {"reason": form.get("reason", "")})
            await answers.object_to(db, actor_of(request), request.user, change_id, data)
        except InvalidInput as exc:
            return await _overview(request, db, status=422, answer_change=change_id, errors=field_errors(exc),
                                   form=form)  # fmt: skip
        except Conflict as exc:
            return await _overview(request, db, status=409, answer_change=change_id, conflict=exc.detail)
        return redirect(request, "/app/subprocessors", "Your objection is recorded; legal will answer it.")

    @post("/changes/{change_id:uuid}/acceptance", guards=[subscriber_admin_pages], status_code=200)
    async def accept(
        self, request: Request[Any, Any, Any], change_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Accept a pending change expressly, before its notice period ends."""
        try:
            await answers.accept(db, actor_of(request), request.user, change_id)
        except Conflict as exc:
            return await _overview(request, db, status=409, answer_change=change_id, conflict=exc.detail)
        return redirect(request, "/app/subprocessors", "You accepted the change.")


# --- legal ------------------------------------------------------------------------------------------------------


def change_body(form: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The posted publish form as the API's body, and the form to show again: blank add rows are dropped and the
    rest renumbered, so `add.0.name` in an error is the first row shown."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        if found := _ROW.match(key):
            rows.setdefault(int(found.group(1)), {})[found.group(2)] = str(value)
    filled = [rows[i] for i in sorted(rows) if any(v.strip() for v in rows[i].values())]
    add = [
        {
            "name": row.get("name", ""),
            "entity": row.get("entity", ""),
            "purpose": row.get("purpose", ""),
            "locations": [c.upper() for c in re.split(r"[\s,;]+", row.get("locations", "")) if c],
            "data_categories": lines(row.get("data_categories", "")),
            "transfer_mechanism": row.get("transfer_mechanism") or None,  # blank: EEA only, none required
        }
        for row in filled
    ]
    remove = form.get("remove", [])
    body = {
        "add": add,
        "remove": remove if isinstance(remove, list) else [remove],
        "notice_days": form.get("notice_days") or 30,
        "urgent": form.get("urgent") == "true",
        "reason": form.get("reason", ""),
    }
    shown = {k: v for k, v in form.items() if not _ROW.match(k)}
    shown.update({f"add.{i}.{field}": value for i, row in enumerate(filled) for field, value in row.items()})
    return body, shown


def _publish_errors(exc: InvalidInput) -> dict[str, str]:
    """Field errors of a change, each beside its field: `remove.2` sits by the checkboxes, `add` by the rows."""
    errors: dict[str, str] = {}
    for field, message in field_errors(exc).items():
        errors.setdefault(re.sub(r"^(remove)\.\d+$|^(add\.\d+\.\w+)\.\d+$", r"\1\2", field), message)
    return errors


async def _change_form(request: Request[Any, Any, Any], db: Database, *, status: int = 200, **extra: Any) -> Template:
    current = await _current(db, request.user)
    form = extra.pop("form", {"notice_days": "30"})
    extra.setdefault("conflict", None)
    rows = max(ADD_ROWS, 1 + max((int(m.group(1)) for k in form if (m := _ROW.match(k))), default=-1))
    names_now = [(item.name, item.name) for item in current.items] if current else []
    return render(
        request,
        "subprocessors/change_form.html.j2",
        status=status,
        heading="Publish a sub-processor change",
        current=current,
        current_names=names_now,
        rows=rows,
        mechanisms=mechanism_options(),
        form=form,
        **extra,
    )


async def _objections_page(
    request: Request[Any, Any, Any], db: Database, status_filter: str, cursor: str | None, *, status: int = 200,
    **extra: Any,
) -> Template:  # fmt: skip
    page = await answers.list_objections(db, request.user, tenant_id=None, change_id=None,
                                         status=status_filter or None, cursor=cursor, limit=_PAGE_SIZE)  # fmt: skip
    tenant_names = await tenants.names(db, Scope.system(), list({o.tenant_id for o in page.items}))
    context: dict[str, Any] = {"answer_objection": None, "conflict": None, **extra}
    return render(request, "subprocessors/objections.html.j2", status=status, heading="Objections",
                  objections=page.items, tenant_names=tenant_names, status_filter=status_filter,
                  next_url=next_page("/staff/objections", page.next_cursor, status=status_filter or "all"),
                  **context)  # fmt: skip


class SubprocessorStaffPages(Controller):
    """Legal's sub-processor pages."""

    path = "/staff"
    include_in_schema = False
    guards = [legal_pages]

    @get("/subprocessor-changes")
    async def changes(
        self, request: Request[Any, Any, Any], db: DbDep, status: FromQuery[str] = "", cursor: FromQuery[str] = ""
    ) -> Template:
        """Every change, newest first, with its status; `?status=` narrows."""
        wanted = status if status in ("pending", "effective", "proposed", "withdrawn") else None
        page = await publishing.list_changes(db, request.user, status=wanted, cursor=cursor or None, limit=_PAGE_SIZE)
        return render(request, "subprocessors/changes.html.j2", heading="Sub-processor changes", changes=page.items,
                      status_filter=wanted or "", **_HELPERS,
                      next_url=next_page("/staff/subprocessor-changes", page.next_cursor, status=wanted))  # fmt: skip

    @get("/subprocessor-changes/new")
    async def new_change(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The form to add and remove sub-processors, with notice."""
        return await _change_form(request, db)

    @post("/subprocessor-changes", status_code=200)
    async def publish(self, request: Request[Any, Any, Any], db: DbDep) -> Template | Redirect:
        """Publish the change: the next list version, pending for the notice period; tenants are told."""
        body, shown = change_body(await form_data(request))
        try:
            change = await publishing.publish_change(db, actor_of(request), validated(ChangeCreate, body))
        except InvalidInput as exc:
            return await _change_form(request, db, status=422, errors=_publish_errors(exc), form=shown)
        except Conflict as exc:
            return await _change_form(request, db, status=409, conflict=exc.detail, form=shown)
        effective = f"{change.effective_at:%Y-%m-%d}"
        return redirect(
            request, "/staff/subprocessor-changes", f"Published list version {change.version}, effective {effective}."
        )

    @get("/objections")
    async def objections(
        self, request: Request[Any, Any, Any], db: DbDep, status: FromQuery[str] = "open", cursor: FromQuery[str] = ""
    ) -> Template:
        """Tenants' objections (open ones first by default), each open one with a resolve form."""
        wanted = status if status in ("open", "resolved") else ""
        return await _objections_page(request, db, wanted, cursor or None)

    @post("/objections/{objection_id:uuid}/resolve", status_code=200)
    async def resolve(
        self, request: Request[Any, Any, Any], objection_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Resolve an objection; the tenant is told in the words recorded."""
        form = await form_data(request)
        try:
            data = validated(ObjectionResolve, {"resolution": form.get("resolution", ""),
                                                 "outcome": form.get("outcome") or "upheld"})  # fmt: skip
            await answers.resolve_objection(db, actor_of(request), request.user, objection_id, data)
        except InvalidInput as exc:
            return await _objections_page(request, db, "open", None, status=422, answer_objection=objection_id,
                                          errors=field_errors(exc), form=form)  # fmt: skip
        except Conflict as exc:
            return await _objections_page(request, db, "open", None, status=409, answer_objection=objection_id,
                                          conflict=exc.detail)  # fmt: skip
        return redirect(request, "/staff/objections", "The objection is resolved; the tenant has been told.")
