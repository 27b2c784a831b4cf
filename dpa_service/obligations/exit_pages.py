"""Exit pages: a Subscriber's `/app/exit` (its owner records the end date; everyone sees the deletion due date, the
link to attest deletion on the obligations page, and the processor's deletion certificate once issued), and legal's
`/staff/exit` (tenants in exit by deletion due date) and `/staff/exit/{tenant_id}` (record a termination, issue a
deletion certificate).

The same service calls as the JSON API: `exit.record_termination` / `find_termination` / `list_terminations`,
`deletion_certificates.prepare_certificate` + `issue_certificate` / `list_certificates` / `certificate_document`.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, SealDep, SettingsDep, public_base_url
from dpa_service.obligations import deletion_certificates, exit
from dpa_service.obligations.exit_controllers import document_headers
from dpa_service.obligations.exit_models import DeletionCertificateCreate, TerminationCreate
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, page_roles, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, lines, next_page, one, redirect, render

_PAGE_SIZE = 50
owner_pages = page_roles(Role.OWNER)


async def _certificates(db: Database, principal: Principal, tenant_id: uuid.UUID | None) -> list[Any]:
    """A tenant's deletion certificates (a handful at most: one page)."""
    return (
        await deletion_certificates.list_certificates(db, principal, tenant_id=tenant_id, cursor=None, limit=200)
    ).items


def _termination_fields(form: dict[str, Any]) -> dict[str, Any]:
    return {"ends_on": one(form, "ends_on"), "reason": one(form, "reason") or None}


async def _app_page(request: Request[Any, Any, Any], db: Database, *, status: int = 200, **extra: Any) -> Template:
    principal: Principal = request.user
    termination = await exit.find_termination(db, principal, principal.tenant_id)
    return render(request, "obligations/exit_app.html.j2", status=status, heading="Exit", termination=termination,
                  certificates=await _certificates(db, principal, None) if termination else [],
                  export_ends_on=exit.export_ends_on(termination.ends_on) if termination else None,
                  can_record=principal.role == Role.OWNER, today=utcnow().date().isoformat(),
                  **extra)  # fmt: skip


class ExitPages(Controller):
    """A Subscriber's exit: the end of the main agreement and what follows it."""

    path = "/app/exit"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def exit_page(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The end date and deletion due date, or (for the owner) the form to record the end date."""
        return await _app_page(request, db)

    @post("/", guards=[owner_pages], status_code=200)
    async def record(self, request: Request[Any, Any, Any], db: DbDep, settings: SettingsDep) -> Template | Redirect:
        """The owner records the day the main agreement ends (today or later); new DPAs are refused from now on."""
        form = await form_data(request)
        try:
            if one(form, "confirm") != "true":
                raise InvalidInput.field("confirm", "confirm that no new DPA can be signed once the end is recorded")
            data = validated(TerminationCreate, _termination_fields(form))
            recorded = await exit.record_termination(db, actor_of(request), request.user, data,
                                                     base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _app_page(request, db, status=422, errors=field_errors(exc), form=form)
        return redirect(request, "/app/exit", f"Recorded: the main agreement ends on {recorded.ends_on}.")

    @get("/certificates/{certificate_id:uuid}", guards=[subscriber_pages], media_type="application/pdf")
    async def certificate(
        self, request: Request[Any, Any, Any], certificate_id: FromPath[uuid.UUID], db: DbDep
    ) -> Response[bytes]:
        """The processor's sealed deletion certificate (PDF)."""
        found = await deletion_certificates.certificate_document(db, request.user, certificate_id)
        return Response(found.content, media_type="application/pdf", headers=document_headers(certificate_id, found))


async def _tenant_page(
    request: Request[Any, Any, Any], db: Database, tenant_id: uuid.UUID, *, status: int = 200, **extra: Any
) -> Template:
    principal: Principal = request.user
    tenant = await tenants.get_tenant(db, principal.scope, tenant_id)
    termination = await exit.find_termination(db, principal, tenant_id)
    today = utcnow().date()
    return render(request, "obligations/exit_staff_tenant.html.j2", status=status, heading=f"Exit: {tenant.name}",
                  tenant=tenant, termination=termination, today=today.isoformat(),
                  export_ends_on=exit.export_ends_on(termination.ends_on) if termination else None,
                  overdue=termination is not None and exit.processor_deletion_overdue(termination, today),
                  certificates=await _certificates(db, principal, tenant_id) if termination else [],
                  **extra)  # fmt: skip


class ExitStaffPages(Controller):
    """Legal's exits: tenants in exit, terminations and the processor's deletion certificates."""

    path = "/staff/exit"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """Tenants in exit, the first deletion due first: the Subscriber's and the processor's deletion due dates
        (clauses 9.7 and 10.2), the processor's marked overdue while no certificate is issued after it."""
        page = await exit.list_terminations(db, request.user, cursor=cursor or None, limit=_PAGE_SIZE)
        names = await tenants.names(db, request.user.scope, [t.tenant_id for t in page.items])
        today = utcnow().date()
        overdue = {t.tenant_id for t in page.items if exit.processor_deletion_overdue(t, today)}
        return render(request, "obligations/exit_staff_index.html.j2", heading="Tenants in exit",
                      terminations=page.items, names=names, today=today, overdue=overdue,
                      next_url=next_page("/staff/exit", page.next_cursor))  # fmt: skip

    @get("/{tenant_id:uuid}")
    async def tenant(self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID], db: DbDep) -> Template:
        """One tenant's exit: record its termination, or see when the processor's deletion is due (overdue without a
        certificate after it) and issue a deletion certificate."""
        return await _tenant_page(request, db, tenant_id)

    @post("/{tenant_id:uuid}/termination", status_code=200)
    async def record(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID], db: DbDep, settings: SettingsDep
    ) -> Template | Redirect:
        """Record that the tenant's main agreement ends (or ended, up to a year back) on a date."""
        form = await form_data(request)
        try:
            data = validated(TerminationCreate, {**_termination_fields(form), "tenant_id": str(tenant_id)})
            await exit.record_termination(db, actor_of(request), request.user, data,
                                          base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _tenant_page(request, db, tenant_id, status=422, errors=field_errors(exc), form=form)
        return redirect(request, f"/staff/exit/{tenant_id}", "Termination recorded; the tenant's owners are told.")

    @post("/{tenant_id:uuid}/certificates", status_code=200)
    async def certify(
        self,
        request: Request[Any, Any, Any],
        tenant_id: FromPath[uuid.UUID],
        db: DbDep,
        seal: SealDep,
        settings: SettingsDep,
    ) -> Template | Redirect:
        """Issue the processor's deletion certificate: deleted on, the systems (one per line), the statement."""
        form = await form_data(request)
        fields = {"tenant_id": str(tenant_id), "deleted_on": one(form, "deleted_on"),
                  "systems": lines(form.get("systems", "")), "statement": one(form, "statement")}  # fmt: skip
        try:
            data = validated(DeletionCertificateCreate, fields)
            prepared = await deletion_certificates.prepare_certificate(db, seal, request.user, data)
            issued = await deletion_certificates.issue_certificate(db, actor_of(request), request.user, prepared,
                                                  base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            errors = {key.split(".")[0]: message for key, message in reversed(field_errors(exc).items())}
            return await _tenant_page(request, db, tenant_id, status=422, errors=errors, form=form)
        return redirect(request, f"/staff/exit/{tenant_id}", f"Deletion certificate issued (SHA-256 "
                                                             f"{issued.document_sha256[:16]}…).")  # fmt: skip

    @get("/certificates/{certificate_id:uuid}", media_type="application/pdf")
    async def certificate(
        self, request: Request[Any, Any, Any], certificate_id: FromPath[uuid.UUID], db: DbDep
    ) -> Response[bytes]:
        """A sealed deletion certificate (PDF)."""
        found = await deletion_certificates.certificate_document(db, request.user, certificate_id)
        return Response(found.content, media_type="application/pdf", headers=document_headers(certificate_id, found))
