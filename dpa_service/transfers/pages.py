"""Transfer pages: a Subscriber's register with the as-of assessment, its transfers and prior notices
(`/app/transfers`); legal's mechanism catalogue, invalidations and the affected-tenants report (`/staff/mechanisms`).

The same service calls as the JSON API: `services.list_transfers` / `assessment` / `create_transfer` /
`get_transfer` / `update_transfer` / `catalogue`, `notices.create_notice` / `list_notices`,
`invalidations.record_invalidation` / `affected`.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput, NotFound
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep
from dpa_service.transfers import invalidations, notices, services
from dpa_service.transfers.models import (
    InvalidationCreate,
    MechanismPublic,
    TransferCreate,
    TransferNoticeCreate,
    TransferPublic,
    TransferUpdate,
)
from dpa_service.web.auth import legal_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, lines, next_page, redirect, render

_PAGE_SIZE = 50
_OPTIONAL = ("end_date", "importer_certified", "tia_reference", "supplementary_measures")
_KEPT_WHEN_BLANK = ("instrument_date", "origin")  # required on the record: blank means "unchanged" (or the default)
_CERTIFICATION = ("checked_by", "checked_on", "entry")
ORIGINS = [("eea", "the EU/EEA (GDPR)"), ("uk", "the United Kingdom (UK GDPR)"), ("ch", "Switzerland (FADP)")]


def mechanism_name(code: str) -> str:
    found = registry.mechanisms().get(code)
    return found.name if found else code


def _options() -> dict[str, Any]:
    """Selects by name (countries, mechanisms) and the lookups the templates show names with."""
    countries = sorted(((c.code, c.name) for c in registry.countries().values()), key=lambda pair: pair[1])
    mechanisms = sorted(((m.code, m.name) for m in registry.mechanisms().values()), key=lambda pair: pair[1])
    return {"countries": countries, "mechanisms": mechanisms, "country_name": registry.country_name,
            "mechanism_name": mechanism_name, "origins": ORIGINS}  # fmt: skip


def transfer_body(form: dict[str, Any], *, patch: bool = False) -> dict[str, Any]:
    """The posted transfer form as the API's body: categories one per line, blank optional fields left out (on
    an edit, a blank optional field clears it, as `null` does in the merge patch)."""
    body = {
        key: value
        for key, value in form.items()
        if key != "data_categories" and not key.startswith("importer_certification.")
    }
    body["data_categories"] = lines(form.get("data_categories", ""))
    # Who checked the importer's certification, when, and the list entry: all three, or none (blank on an edit
    # clears the record).
    record = {name: form.get(f"importer_certification.{name}", "") for name in _CERTIFICATION}
    if any(value != "" for value in record.values()):
        body["importer_certification"] = record
    elif patch and any(f"importer_certification.{name}" in form for name in _CERTIFICATION):
        body["importer_certification"] = None
    for field in _OPTIONAL:
        if body.get(field, "") == "":
            body.pop(field, None)
            if patch:
                body[field] = None
    for field in _KEPT_WHEN_BLANK:
        if body.get(field) == "":
            body.pop(field)
    return body


def _as_of(value: str) -> tuple[date, dict[str, str]]:
    try:
        return (date.fromisoformat(value) if value else utcnow().date()), {}
    except ValueError:
        return utcnow().date(), {"as_of": "must be a date, YYYY-MM-DD"}


async def _form(request: Request[Any, Any, Any], template: str, *, status: int = 200, **context: Any) -> Template:
    return render(request, f"transfers/{template}", status=status, **_options(), **context)


async def _notices(
    request: Request[Any, Any, Any], db: Database, cursor: str | None, *, status: int = 200, **extra: Any
) -> Template:
    principal: Principal = request.user
    page = await notices.list_notices(db, principal, tenant_id=None, cursor=cursor, limit=_PAGE_SIZE)
    return await _form(request, "notices.html.j2", status=status, heading="Transfer notices", notices=page.items,
                       next_url=next_page("/app/transfers/notices", page.next_cursor),
                       can_edit=principal.role in (Role.OWNER, Role.ADMIN), **extra)  # fmt: skip


async def _whole_assessment(db: Database, principal: Principal, day: date) -> list[Any]:
    """Every transfer active on `day`, assessed: all pages of it, so no invalid transfer hides past the first."""
    items: list[Any] = []
    cursor: str | None = None
    while True:
        found = await services.assessment(db, principal, day, tenant_id=None, cursor=cursor, limit=200)
        items += found.items
        if not (cursor := found.next_cursor):
            return items


class TransferPages(Controller):
    """A Subscriber's transfer register and notices."""

    path = "/app/transfers"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def register(
        self, request: Request[Any, Any, Any], db: DbDep, as_of: FromQuery[str] = "", cursor: FromQuery[str] = ""
    ) -> Template:
        """The register, and each transfer active on `as_of` (default today) assessed: invalid ones first."""
        day, errors = _as_of(as_of)
        register = await services.list_transfers(db, request.user, tenant_id=None, mechanism=None,
                                                 cursor=cursor or None, limit=_PAGE_SIZE)  # fmt: skip
        assessed = await _whole_assessment(db, request.user, day)
        return await _form(request, "register.html.j2", status=422 if errors else 200, heading="Transfers",
                           transfers=register.items, assessed=sorted(assessed, key=lambda item: item.valid),
                           as_of=as_of if errors else day.isoformat(), errors=errors,
                           can_edit=request.user.role in (Role.OWNER, Role.ADMIN),
                           next_url=next_page("/app/transfers", register.next_cursor))  # fmt: skip

    @get("/new", guards=[subscriber_admin_pages])
    async def new(self, request: Request[Any, Any, Any]) -> Template:
        """The form to record a transfer."""
        return await _form(request, "transfer_form.html.j2", heading="Record a transfer", transfer=None,
                           form={"start_date": utcnow().date().isoformat()})  # fmt: skip

    @post("/", guards=[subscriber_admin_pages], status_code=200)
    async def create(self, request: Request[Any, Any, Any], db: DbDep) -> Template | Redirect:
        """Record an international transfer and the mechanism it relies on."""
        form = await form_data(request)
        try:
            data = validated(TransferCreate, transfer_body(form))
            created = await services.create_transfer(db, actor_of(request), request.user, data)
        except InvalidInput as exc:
            return await _form(request, "transfer_form.html.j2", status=422, heading="Record a transfer",
                               transfer=None, errors=field_errors(exc), form=form)  # fmt: skip
        return redirect(request, "/app/transfers", f"Recorded the transfer to {created.importer}.")

    @get("/{transfer_id:uuid}/edit", guards=[subscriber_admin_pages])
    async def edit(self, request: Request[Any, Any, Any], transfer_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """The form to change or end a transfer (transfers are never deleted: set an end date)."""
        transfer = await services.get_transfer(db, request.user, transfer_id)
        return await _form(request, "transfer_form.html.j2", heading=f"Change the transfer to {transfer.importer}",
                           transfer=transfer, form=_shown(transfer))  # fmt: skip

    @post("/{transfer_id:uuid}/edit", guards=[subscriber_admin_pages], status_code=200)
    async def update(
        self, request: Request[Any, Any, Any], transfer_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Save the changes (as the API's merge patch)."""
        transfer = await services.get_transfer(db, request.user, transfer_id)
        form = {
            key: value
            for key, value in (await form_data(request)).items()
            if key in TransferUpdate.model_fields or key.startswith("importer_certification.")
        }
        try:
            patch = validated(TransferUpdate, transfer_body(form, patch=True))
            await services.update_transfer(db, actor_of(request), request.user, transfer_id, patch)
        except InvalidInput as exc:
            heading = f"Change the transfer to {transfer.importer}"
            return await _form(request, "transfer_form.html.j2", status=422, transfer=transfer, form=form,
                               heading=heading, errors=field_errors(exc))  # fmt: skip
        return redirect(request, "/app/transfers", f"Saved the transfer to {transfer.importer}.")

    @get("/notices", guards=[subscriber_pages])
    async def notices_page(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """Prior written notices of transfers outside the EU/EEA, and the form to give one."""
        return await _notices(request, db, cursor or None)

    @post("/notices", guards=[subscriber_admin_pages], status_code=200)
    async def give_notice(self, request: Request[Any, Any, Any], db: DbDep) -> Template | Redirect:
        """Give prior written notice of a transfer outside the EU/EEA (a past date or an EEA destination is
        refused, beside the field)."""
        form = await form_data(request)
        try:
            data = validated(TransferNoticeCreate, form)
            await notices.create_notice(db, actor_of(request), request.user, data)
        except InvalidInput as exc:
            return await _notices(request, db, None, status=422, errors=field_errors(exc), form=form)
        return redirect(request, "/app/transfers/notices", f"Notice given of the transfer to {data.recipient}.")


def _shown(transfer: TransferPublic) -> dict[str, Any]:
    """A transfer as its edit form shows it."""
    certified = "" if transfer.importer_certified is None else str(transfer.importer_certified).lower()
    return {
        "end_date": transfer.end_date.isoformat() if transfer.end_date else "",
        "mechanism": transfer.mechanism,
        "importer_certified": certified,
        "data_categories": "\n".join(transfer.data_categories),
        "tia_reference": transfer.tia_reference or "",
        "supplementary_measures": transfer.supplementary_measures or "",
        "origin": transfer.origin,
        "instrument_date": transfer.instrument_date.isoformat() if transfer.instrument_date else "",
        **{f"importer_certification.{k}": str(v) for k, v in (transfer.importer_certification or {}).items()},
    }


# --- legal ------------------------------------------------------------------------------------------------------


async def _mechanism(db: Database, principal: Principal, code: str) -> MechanismPublic:
    found = [m for m in (await services.catalogue(db, principal)).items if m.code == code]
    if not found:
        raise NotFound("Unknown transfer mechanism.")
    return found[0]


async def _mechanism_page(
    request: Request[Any, Any, Any], db: Database, code: str, cursor: str | None, *, status: int = 200, **extra: Any
) -> Template:
    mechanism = await _mechanism(db, request.user, code)
    report = await invalidations.affected(db, request.user, code, cursor=cursor, limit=_PAGE_SIZE)
    return await _form(request, "mechanism.html.j2", status=status, heading=mechanism.name, mechanism=mechanism,
                       report=report, next_url=next_page(f"/staff/mechanisms/{code}", report.next_cursor),
                       **extra)  # fmt: skip


class MechanismPages(Controller):
    """Legal's mechanism catalogue, invalidations and who relies on each mechanism."""

    path = "/staff/mechanisms"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def catalogue(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The catalogue, with any invalidation legal recorded."""
        page = await services.catalogue(db, request.user)
        return await _form(request, "mechanisms.html.j2", heading="Transfer mechanisms", catalogue=page.items)

    @get("/{code:str}")
    async def mechanism(
        self, request: Request[Any, Any, Any], code: FromPath[str], db: DbDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """One mechanism: its facts, the invalidation form and the tenants and transfers relying on it."""
        return await _mechanism_page(request, db, code, cursor or None)

    @post("/{code:str}/invalidation", status_code=200)
    async def invalidate(self, request: Request[Any, Any, Any], code: FromPath[str], db: DbDep) -> Template | Redirect:
        """Record that the mechanism is invalid from a date; every tenant relying on it is notified once."""
        form = await form_data(request)
        fields = {key: form.get(key, "") for key in ("invalid_from", "reason", "legal_reference")}
        try:
            if form.get("confirm") != "true":
                raise InvalidInput.field("confirm", "confirm that every tenant relying on it is to be notified")
            recorded = await invalidations.record_invalidation(
                db, actor_of(request), code, validated(InvalidationCreate, fields)
            )
        except InvalidInput as exc:
            return await _mechanism_page(request, db, code, None, status=422, errors=field_errors(exc), form=form)
        message = f"Recorded; {recorded.affected_tenants} tenants relying on it are being notified."
        return redirect(request, f"/staff/mechanisms/{code}", message)
