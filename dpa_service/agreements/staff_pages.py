"""Staff pages for agreements: legal's overview, the review queue (custom clauses against the standard text), the
countersignature queue, an agreement's detail with its document and evidence, and sales' DPA status of every
tenant. The same services as /api/v1/agreements; sales only read."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.agreements import execution, services
from dpa_service.agreements.models import AgreementStatus, ReviewCreate, ReviewDecision
from dpa_service.core.db import Database
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.documents.renderer import Renderer
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep, SealDep
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.web.auth import legal_pages, page_roles, sales_pages
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, redirect, render

overview_pages = page_roles(Role.LEGAL, Role.PLATFORM_ADMIN)
AgreementId = FromPath[uuid.UUID]
PAGE_SIZE = 50
COUNT_UP_TO = 100  # the overview counts this far, then says "100+"
REVIEW = "agreements/staff_review.html.j2"


def _count(page: Any) -> str:
    return f"{len(page.items)}+" if page.next_cursor else str(len(page.items))


async def overview(db: Database, principal: Principal) -> list[tuple[str, str, str]]:
    """(label, count, link) of what waits for legal; the platform admin sees the tenants."""
    n = COUNT_UP_TO
    if principal.role != Role.LEGAL:
        return [("Tenants", _count(await tenants.list_tenants(db, principal, cursor=None, limit=n)), "/staff/tenants")]
    queues: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = [
        ("Template versions awaiting approval", "/staff/templates",
         partial(templates.list_versions, db, principal, key=None, status="in_review", cursor=None, limit=n)),
        ("Agreements in legal review", "/staff/reviews",
         partial(_agreements, db, principal, AgreementStatus.IN_LEGAL_REVIEW, None, n)),
        ("Agreements awaiting countersignature", "/staff/countersign",
         partial(_agreements, db, principal, AgreementStatus.SIGNED, None, n)),
        ("Sub-processor changes in their notice period", "/staff/subprocessor-changes",
         partial(subprocessors.pending_changes, db, principal, limit=n)),
        ("Open objections to sub-processor changes", "/staff/subprocessor-changes",
         partial(subprocessors.open_objections, db, principal, limit=n)),
    ]  # fmt: skip
    return [(label, _count(await count()), link) for label, link, count in queues]


async def _agreements(db: Database, principal: Principal, status: str | None, cursor: str | None, limit: int) -> Any:
    return await services.list_agreements(db, principal, tenant_id=None, status=status, cursor=cursor, limit=limit)


async def queue(db: Database, principal: Principal, status: str, cursor: str | None) -> dict[str, Any]:
    """A page of agreements in `status`, with their tenants' names."""
    page = await _agreements(db, principal, status, cursor, PAGE_SIZE)
    names = await tenants.names(db, principal.scope, list({item.tenant_id for item in page.items}))
    return {"items": page.items, "names": names, "next_cursor": page.next_cursor}


async def review_context(db: Database, renderer: Renderer, principal: Principal, agreement_id: uuid.UUID) -> Any:
    agreement = await services.get_agreement(db, principal, agreement_id)
    view = await services.review_view(db, renderer, principal, agreement_id)
    names = await tenants.names(db, principal.scope, [agreement.tenant_id])
    return {"agreement": agreement, "view": view, "tenant_name": names.get(agreement.tenant_id, "")}


def review_of(form: dict[str, Any]) -> ReviewCreate:
    return validated(ReviewCreate, {"decision": form.get("decision") or "", "comment": form.get("comment") or ""})


async def tenant_statuses(db: Database, principal: Principal, name: str, cursor: str | None) -> dict[str, Any]:
    """A page of tenants (filtered by name) with each one's DPA status."""
    page = await tenants.list_tenants(db, principal, cursor=cursor, limit=PAGE_SIZE, name=name or None)
    statuses = await services.dpa_status(db, principal, [tenant.id for tenant in page.items])
    next_url = next_page("/staff/sales", page.next_cursor, name=name)
    return {"tenants": page.items, "statuses": statuses, "name": name, "next_url": next_url}


class StaffAgreementPages(Controller):
    include_in_schema = False

    @get("/staff/", guards=[overview_pages])
    async def home(self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep) -> Template:
        """Staff's overview: what waits for legal, with links to each queue."""
        counts = await overview(db, principal)
        return render(request, "agreements/staff_overview.html.j2", heading="Overview", counts=counts)

    @get("/staff/reviews", guards=[legal_pages])
    async def reviews(
        self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """The review queue: agreements with custom clauses waiting for legal."""
        found = await queue(db, principal, AgreementStatus.IN_LEGAL_REVIEW, cursor or None)
        return render(request, "agreements/staff_queue.html.j2", heading="Review queue", kind="review", **found)

    @get("/staff/reviews/{agreement_id:uuid}", guards=[legal_pages])
    async def review_page(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, db: DbDep, principal: PrincipalDep,
        renderer: RendererDep,
    ) -> Template:  # fmt: skip
        """One agreement's custom clauses against the standard text, and the decision form."""
        context = await review_context(db, renderer, principal, agreement_id)
        return render(request, REVIEW, heading="Review custom clauses", **context)

    @post("/staff/reviews/{agreement_id:uuid}", guards=[legal_pages], status_code=200)
    async def decide(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, db: DbDep, principal: PrincipalDep,
        actor: ActorDep, renderer: RendererDep,
    ) -> Response[Any]:  # fmt: skip
        """Approve the custom clauses, or request changes (a comment is required), as the API's review."""
        form = await form_data(request)
        try:
            decided = await services.review(db, actor, principal, agreement_id, review_of(form))
        except InvalidInput as exc:
            context = await review_context(db, renderer, principal, agreement_id)
            return render(request, REVIEW, status=422, heading="Review custom clauses", errors=field_errors(exc),
                          form=form, **context)  # fmt: skip
        approved = form.get("decision") == ReviewDecision.APPROVE
        message = "Approved: the agreement is ready for signature." if approved else "Changes requested."
        return redirect(request, f"/staff/agreements/{decided.id}", message)

    @get("/staff/countersign", guards=[legal_pages])
    async def countersign_queue(
        self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """Agreements the Subscriber has signed, waiting for the processor's countersignature."""
        found = await queue(db, principal, AgreementStatus.SIGNED, cursor or None)
        return render(request, "agreements/staff_queue.html.j2", heading="Countersign", kind="countersign", **found)

    @post("/staff/agreements/{agreement_id:uuid}/countersign", guards=[legal_pages], status_code=200)
    async def countersign(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, db: DbDep, principal: PrincipalDep,
        actor: ActorDep, renderer: RendererDep, seal: SealDep,
    ) -> Redirect:  # fmt: skip
        """`signed -> executed`: the processor's signature and the sealed PDF (the API's countersign)."""
        executed = await execution.countersign(db, renderer, seal, actor, principal, agreement_id)
        message = "Countersigned: the agreement is executed and its PDF sealed."
        return redirect(request, f"/staff/agreements/{executed.id}", message)

    @get("/staff/agreements/{agreement_id:uuid}", guards=[sales_pages])
    async def detail(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, db: DbDep, principal: PrincipalDep
    ) -> Template:
        """One agreement for staff: its facts, custom clauses, document and signature evidence."""
        agreement = await services.get_agreement(db, principal, agreement_id)
        evidence = await services.evidence(db, principal, agreement_id)
        names = await tenants.names(db, principal.scope, [agreement.tenant_id])
        return render(request, "agreements/staff_detail.html.j2", heading="Data Processing Agreement",
                      agreement=agreement, evidence=evidence, tenant_name=names.get(agreement.tenant_id, ""),
                      legal=principal.role == Role.LEGAL)  # fmt: skip

    @get("/staff/agreements/{agreement_id:uuid}/document", guards=[sales_pages], media_type="application/pdf")
    async def document(
        self, agreement_id: AgreementId, db: DbDep, principal: PrincipalDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The PDF: the draft render, or the sealed executed document (the API's document)."""
        doc = await services.document(db, renderer, principal, agreement_id)
        filename = f"dpa-{agreement_id}-{'executed' if doc.executed else 'draft'}.pdf"
        headers = {"X-Content-SHA256": doc.sha256, "Content-Disposition": f'attachment; filename="{filename}"'}
        return Response(doc.content, media_type="application/pdf", headers=headers)

    @get("/staff/sales", guards=[sales_pages])
    async def sales(
        self, request: Request[Any, Any, Any], db: DbDep, principal: PrincipalDep, name: FromQuery[str] = "",
        cursor: FromQuery[str] = "",
    ) -> Template:  # fmt: skip
        """Every tenant with its DPA status (none, in progress, executed), template version and executed PDF."""
        found = await tenant_statuses(db, principal, name.strip(), cursor or None)
        return render(request, "agreements/staff_sales.html.j2", heading="DPA status", **found)
