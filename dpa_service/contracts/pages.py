"""Contract pages: sales' and legal's `/staff/contracts` (the list with each DPA status, a tenant filter, the create
form; a contract's page to attach the tenant's agreements, detach, close with the gate's reason beside the form, and
download the bundle) and the Subscriber's read-only `/app/contracts`. The same service calls as the JSON API."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from dpa_service.agreements import services as agreements
from dpa_service.contracts import bundle, services
from dpa_service.contracts.models import AttachCreate, CloseCreate, ContractCreate, ContractPublic
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, RendererDep, SealDep
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import sales_pages, subscriber_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

PAGE_SIZE = 50
_FIELDS = ("tenant_id", "reference", "title", "value", "currency", "close_date")
ContractId = FromPath[uuid.UUID]


def contract_body(form: dict[str, Any]) -> dict[str, Any]:
    """The create form as the API's body: blank optional fields left out."""
    body = {key: one(form, key).strip() for key in _FIELDS}
    return {key: value for key, value in body.items() if value or key in ("tenant_id", "reference", "title")}


async def _tenant_options(db: Database, principal: Principal) -> list[tuple[str, str]]:
    page = await tenants.list_tenants(db, principal, cursor=None, limit=200)
    return [(str(t.id), f"{t.name} ({t.legal_name})") for t in page.items]


async def _list(request: Request[Any, Any, Any], db: Database, tenant_id: str, cursor: str | None, *,
                status: int = 200, **extra: Any) -> Template:  # fmt: skip
    principal: Principal = request.user
    try:
        tenant = uuid.UUID(tenant_id) if tenant_id else None
    except ValueError:
        tenant = None
    page = await services.list_contracts(db, principal, tenant_id=tenant, cursor=cursor, limit=PAGE_SIZE)
    staff = principal.is_staff
    names = await tenants.names(db, principal.scope, list({c.tenant_id for c in page.items})) if staff else {}
    base = "/staff/contracts" if staff else "/app/contracts"
    return render(request, "contracts/list.html.j2", status=status, heading="Contracts", contracts=page.items,
                  names=names, staff=staff, base=base, tenant_id=tenant_id,
                  tenant_options=await _tenant_options(db, principal) if staff else [],
                  next_url=next_page(base, page.next_cursor, tenant_id=tenant_id), **extra)  # fmt: skip


async def _detail(request: Request[Any, Any, Any], db: Database, contract_id: uuid.UUID, *, status: int = 200,
                  **extra: Any) -> Template:  # fmt: skip
    principal: Principal = request.user
    contract = await services.get_contract(db, principal, contract_id)
    facts = await agreements.agreement_facts(db, principal.scope, contract.agreements)
    context: dict[str, Any] = {"contract": contract, "facts": facts, "staff": principal.is_staff,
                               "closable": contract.status == "open", "close_error": ""}  # fmt: skip
    if principal.is_staff:
        names = await tenants.names(db, principal.scope, [contract.tenant_id])
        page = await agreements.list_agreements(db, principal, tenant_id=contract.tenant_id, status=None, cursor=None,
                                                limit=200)  # fmt: skip
        context["tenant_name"] = names.get(contract.tenant_id, "")
        context["attachable"] = [
            (str(a.id), f"{a.template_key} v{a.template_version}: {a.status} ({a.id})")
            for a in page.items
            if a.status != "voided" and a.id not in contract.agreements
        ]
    return render(request, "contracts/detail.html.j2", status=status, heading=f"Contract {contract.reference}",
                  **{**context, **extra})  # fmt: skip


def _url(contract: ContractPublic | uuid.UUID) -> str:
    return f"/staff/contracts/{contract.id if isinstance(contract, ContractPublic) else contract}"


class StaffContractPages(Controller):
    """Sales' and legal's contracts."""

    path = "/staff/contracts"
    include_in_schema = False

    @get("/", guards=[sales_pages])
    async def contracts(
        self, request: Request[Any, Any, Any], db: DbDep, tenant_id: FromQuery[str] = "", cursor: FromQuery[str] = ""
    ) -> Template:
        """Every contract (or one tenant's) with its DPA status, and the form to create one."""
        return await _list(request, db, tenant_id.strip(), cursor or None)

    @post("/", guards=[sales_pages], status_code=200)
    async def create(self, request: Request[Any, Any, Any], db: DbDep) -> Template | Redirect:
        """Create a contract: errors beside their fields with the input kept."""
        form = await form_data(request)
        try:
            data = validated(ContractCreate, contract_body(form))
            contract = await services.create_contract(db, actor_of(request), request.user, data)
        except (InvalidInput, Conflict) as exc:
            errors = (
                field_errors(exc) if isinstance(exc, InvalidInput) else {e.field: e.message for e in exc.errors or []}
            )
            return await _list(request, db, "", None, status=422 if isinstance(exc, InvalidInput) else 409,
                               errors=errors or {"reference": exc.detail}, form=form)  # fmt: skip
        return redirect(request, _url(contract), f"Contract {contract.reference} created: attach the tenant's DPA.")

    @get("/{contract_id:uuid}", guards=[sales_pages])
    async def detail(self, request: Request[Any, Any, Any], contract_id: ContractId, db: DbDep) -> Template:
        """One contract: its DPA status, attached agreements, the attach and close forms, the bundle."""
        return await _detail(request, db, contract_id)

    @post("/{contract_id:uuid}/agreements", guards=[sales_pages], status_code=200)
    async def attach(self, request: Request[Any, Any, Any], contract_id: ContractId, db: DbDep) -> Template | Redirect:
        """Attach one of the tenant's agreements chosen in the select."""
        form = await form_data(request)
        try:
            data = validated(AttachCreate, {"agreement_id": one(form, "agreement_id")})
            contract = await services.attach(db, actor_of(request), request.user, contract_id, data)
        except InvalidInput as exc:
            return await _detail(request, db, contract_id, status=422, errors=field_errors(exc), form=form)
        return redirect(request, _url(contract), f"Attached. The contract's DPA status: {contract.dpa_status}.")

    @post("/{contract_id:uuid}/agreements/{agreement_id:uuid}/detach", guards=[sales_pages], status_code=200)
    async def detach(
        self, request: Request[Any, Any, Any], contract_id: ContractId, agreement_id: FromPath[uuid.UUID], db: DbDep
    ) -> Redirect:
        """Detach an agreement."""
        await services.detach(db, actor_of(request), request.user, contract_id, agreement_id)
        return redirect(request, _url(contract_id), "Detached.")

    @post("/{contract_id:uuid}/close", guards=[sales_pages], status_code=200)
    async def close(self, request: Request[Any, Any, Any], contract_id: ContractId, db: DbDep) -> Template | Redirect:
        """Close as won or lost; a refused `won` is shown with the gate's reason beside the form."""
        form = await form_data(request)
        try:
            data = validated(CloseCreate, {"outcome": one(form, "outcome")})
            contract = await services.close(db, actor_of(request), request.user, contract_id, data)
        except InvalidInput as exc:
            return await _detail(request, db, contract_id, status=422, errors=field_errors(exc), form=form)
        except Conflict as exc:
            return await _detail(request, db, contract_id, status=409, close_error=exc.detail, form=form)
        return redirect(request, _url(contract), f"Contract {contract.reference} closed: {contract.status}.")

    @get("/{contract_id:uuid}/bundle", guards=[sales_pages], media_type="application/zip")
    async def bundle(
        self, request: Request[Any, Any, Any], contract_id: ContractId, db: DbDep, renderer: RendererDep, seal: SealDep
    ) -> Response[Any]:
        """The bundle download (the API's bundle)."""
        made = await bundle.bundle(db, renderer, seal, request.user, contract_id)
        disposition = f'attachment; filename="{made.filename}"'
        return Stream(made.chunks, media_type="application/zip", headers={"Content-Disposition": disposition})


class ContractPages(Controller):
    """A Subscriber's contracts, read only."""

    path = "/app/contracts"
    include_in_schema = False

    @get("/", guards=[subscriber_pages])
    async def contracts(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """The contracts the processor's sales team keeps for this tenant, with their DPA status."""
        return await _list(request, db, "", cursor or None)

    @get("/{contract_id:uuid}", guards=[subscriber_pages])
    async def detail(self, request: Request[Any, Any, Any], contract_id: ContractId, db: DbDep) -> Template:
        """One contract and the DPAs attached to it."""
        return await _detail(request, db, contract_id)
