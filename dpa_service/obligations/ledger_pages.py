"""Ledger pages: a Subscriber's obligations with what to do next and the attestation form (`/app/obligations`);
legal's platform view of who is overdue on what, and any tenant's ledger (`/staff/obligations`).

The same service calls as `/api/v1/obligations`: `ledger.list_obligations`, `get_obligation`, `attest`,
`list_attestations`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep
from dpa_service.obligations import ledger
from dpa_service.obligations.ledger_models import AttestationCreate
from dpa_service.obligations.ledger_rules import PERSONNEL
from dpa_service.obligations.models import ObligationStatus
from dpa_service.template_versions import services as template_versions
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, subscriber_admin_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

_PAGE_SIZE = 50
_WHOLE_NUMBER = re.compile(r"^\s*[0-9]{1,9}\s*$")
STATUSES = [status.value for status in ObligationStatus]
_ANY = "all"


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        raise NotFound("There is no such page.") from None


def attestation_body(form: dict[str, Any], code: str) -> dict[str, Any]:
    """The posted form as the API's body: blank optional fields left out; the count only where it applies, as a
    number when it is one (the API takes no count as text)."""
    fields = ["statement", "evidence", "period", *(["personnel_count"] if code == PERSONNEL else [])]
    body: dict[str, Any] = {name: one(form, name) for name in fields if one(form, name).strip() or name == "statement"}
    if _WHOLE_NUMBER.match(count := str(body.get("personnel_count", ""))):
        body["personnel_count"] = int(count)
    return body


async def _detail(
    request: Request[Any, Any, Any], db: Database, tenant_id: uuid.UUID, code: str, *, base: str,
    cursor: str | None = None, status: int = 200, **extra: Any,
) -> Template:  # fmt: skip
    principal: Principal = request.user
    obligation = await ledger.get_obligation(db, principal, code, tenant_id)
    history = await ledger.list_attestations(db, principal, code, tenant_id=tenant_id, cursor=cursor,
                                             limit=_PAGE_SIZE, newest_first=True)  # fmt: skip
    # Where an attestation would change nothing, the page says how the obligation is kept instead of the form.
    kept = None if obligation.ended_at else await ledger.kept_elsewhere(db, principal, code, tenant_id)
    return render(request, "obligations/ledger_detail.html.j2", status=status, heading=obligation.title,
                  obligation=obligation, history=history.items, base=base, personnel=code == PERSONNEL,
                  next_url=next_page(f"{base}/{code}", history.next_cursor), kept=kept,
                  can_attest=principal.role in (Role.OWNER, Role.ADMIN) and kept is None, **extra)  # fmt: skip


class LedgerPages(Controller):
    """A Subscriber's obligations as controller."""

    path = "/app/obligations"
    include_in_schema = False
    guards = [subscriber_pages]

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: DbDep, agreement_id: FromQuery[str] = "") -> Template:
        """The ledger: each obligation's status, due date, clause and next step; `?agreement_id=` shows a
        superseded DPA's rows as history."""
        principal: Principal = request.user
        agreement = _uuid(agreement_id)
        page = await ledger.list_obligations(db, principal, agreement_id=agreement, limit=200)
        past = await ledger.past_agreements(db, principal, principal.tenant_id)
        return render(request, "obligations/ledger_index.html.j2", heading="Obligations", items=page.items,
                      agreement_id=agreement, past=past)  # fmt: skip

    @get("/{code:str}")
    async def detail(
        self, request: Request[Any, Any, Any], code: FromPath[str], db: DbDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """One obligation: what it asks, its status, its attestations (newest first) and, for owners and admins,
        the form to attest it."""
        form = {"period": "", "statement": "", "evidence": "", "personnel_count": ""}
        return await _detail(request, db, request.user.tenant_id, code, base="/app/obligations",
                             cursor=cursor or None, form=form)  # fmt: skip

    @post("/{code:str}/attestations", guards=[subscriber_admin_pages], status_code=200)
    async def attest(self, request: Request[Any, Any, Any], code: FromPath[str], db: DbDep) -> Template | Redirect:
        """Attest the obligation; a refusal shows the form again with the error beside its field, input kept."""
        form = await form_data(request)
        try:
            data = validated(AttestationCreate, attestation_body(form, code))
            await ledger.attest(db, actor_of(request), request.user, code, data)
        except InvalidInput as exc:
            return await _detail(request, db, request.user.tenant_id, code, base="/app/obligations", status=422,
                                 errors=field_errors(exc), form=form)  # fmt: skip
        except Conflict as exc:  # a form left open while the obligation stopped taking attestations
            return await _detail(request, db, request.user.tenant_id, code, base="/app/obligations", status=409,
                                 conflict=exc.detail, form=form)  # fmt: skip
        return redirect(request, f"/app/obligations/{code}", "Attested: your statement is on the record.")


async def _code_options(db: Database, principal: Principal, chosen: str) -> list[tuple[str, str]]:
    """The codes of the current standard DPA (and the one filtered by, should a newer version have dropped it)."""
    version = await template_versions.current_version(db, principal.scope, "standard-dpa")
    options = [(str(o["code"]), str(o["title"])) for o in (version.obligations if version else [])]
    if chosen and chosen not in {code for code, _ in options}:
        options.append((chosen, chosen))
    return options


async def _platform_view(
    db: Database, principal: Principal, status: str, code: str, tenant: uuid.UUID | None, cursor: str | None
) -> dict[str, Any]:
    """The staff list's context: the rows on this page, their tenants' names, the filters and the next page."""
    chosen = status or (_ANY if tenant else ObligationStatus.OVERDUE.value)
    errors = {} if chosen in (*STATUSES, _ANY) else {"status": f"must be one of: {', '.join(STATUSES)}"}
    page = await ledger.list_obligations(
        db, principal, tenant_id=tenant, status=None if chosen == _ANY or errors else ObligationStatus(chosen),
        code=code or None, cursor=cursor, limit=_PAGE_SIZE,
    )  # fmt: skip
    shown = {item.tenant_id for item in page.items} | ({tenant} if tenant else set())
    names = await tenants.names(db, principal.scope, sorted(shown))
    next_url = next_page("/staff/obligations", page.next_cursor, status=chosen, code=code or None,
                         tenant_id=str(tenant) if tenant else None)  # fmt: skip
    return {
        "heading": f"Obligations of {names.get(tenant, 'this tenant')}" if tenant else "Obligations",
        "items": page.items, "names": names, "tenant_id": tenant, "chosen": chosen, "code": code, "errors": errors,
        "statuses": [(_ANY, "any status"), *((s, s.replace("_", " ")) for s in STATUSES)],
        "codes": await _code_options(db, principal, code), "next_url": next_url,
    }  # fmt: skip


class StaffLedgerPages(Controller):
    """Legal's view of every tenant's obligations."""

    path = "/staff/obligations"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def index(
        self, request: Request[Any, Any, Any], db: DbDep, status: FromQuery[str] = "", code: FromQuery[str] = "",
        tenant_id: FromQuery[str] = "", cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """Which tenants are overdue on what (by default), filtered by status and code, paged; with `?tenant_id=`
        one tenant's whole ledger."""
        context = await _platform_view(db, request.user, status, code, _uuid(tenant_id), cursor or None)
        return render(request, "obligations/ledger_staff.html.j2", status=422 if context["errors"] else 200,
                      **context)  # fmt: skip

    @get("/{tenant_id:uuid}/{code:str}")
    async def detail(
        self, request: Request[Any, Any, Any], tenant_id: FromPath[uuid.UUID], code: FromPath[str], db: DbDep,
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """One tenant's obligation and its attestations, newest first."""
        names = await tenants.names(db, request.user.scope, [tenant_id])
        if tenant_id not in names:
            raise NotFound("There is no such tenant.")
        return await _detail(request, db, tenant_id, code, base=f"/staff/obligations/{tenant_id}",
                             cursor=cursor or None, tenant_name=names[tenant_id])  # fmt: skip
