"""The Subscriber's agreement pages under `/app/`: the dashboard, the agreements, requesting and editing a DPA
(a form generated from the template's variables schema), submitting, the PDF preview, sending for signature,
voiding, and the executed PDF, its certificate and the signing evidence.

Every page calls the same service functions as `/api/v1/agreements`. Members read; owners and admins also send
for signature (a member's POST is a 404 page); any user may void before signing, as in the API. Another tenant's
agreement is 404 on every page.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.agreements import app_context as pages
from dpa_service.agreements import docusign, services
from dpa_service.agreements.models import AgreementStatus
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound
from dpa_service.http.deps import ActorDep, DbDep, MailerDep, PrincipalDep, RendererDep, SettingsDep, public_base_url
from dpa_service.web.auth import subscriber_admin_pages, subscriber_pages
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

AgreementId = FromPath[uuid.UUID]
PAGE_SIZE = 25
STATUSES = [status.value for status in AgreementStatus]


UNVERIFIED_SELF = (
    "We e-mailed a signing link to {email}: check your inbox and sign from there. You can sign here directly once "
    "your address is confirmed (open the confirmation link we e-mailed you, or sign in with an e-mailed link)."
)


DOCUSIGN_OUTCOMES = {
    "signing_complete": "You signed in DocuSign. The agreement shows as signed as soon as DocuSign confirms it.",
    "decline": "You declined to sign in DocuSign: the request has ended. You can send a new one.",
    "cancel": "You left DocuSign without signing. You can open it again from here.",
    "session_timeout": "The DocuSign session timed out. Open it again from here.",
    "ttl_expired": "The DocuSign signing link expired. Open it again from here.",
}


def _sent_message(data: Any, url: str | None, own_email: str) -> str:
    """What the agreement page says after a signature request that did not go straight to a signing page."""
    if data.provider == "docusign":
        # A link to follow, not a redirect: the page's form-action policy keeps a form post on this site.
        return (
            "Your DocuSign envelope is ready: open it to sign."
            if url
            else (f"DocuSign e-mails the envelope to {data.signer.email}.")
        )
    if data.signer.email.lower() == own_email.lower():
        return UNVERIFIED_SELF.format(email=data.signer.email)
    return f"We e-mailed a signing link to {data.signer.email}."


def _status_filter(value: str) -> str | None:
    return value if value in STATUSES else None


def _url(agreement_id: uuid.UUID, part: str = "") -> str:
    return f"/app/agreements/{agreement_id}{part}"


def _pdf(content: bytes, sha256: str, filename: str) -> Response[bytes]:
    headers = {"X-Content-SHA256": sha256, "Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(content, media_type="application/pdf", headers=headers)


def _submitted_message(status: str) -> str:
    if status == AgreementStatus.IN_LEGAL_REVIEW:
        return "Submitted: the processor's legal team reviews your custom clauses before it can be signed."
    return "Submitted: the agreement is ready for signature."


class SubscriberAgreementPages(Controller):
    include_in_schema = False
    guards = [subscriber_pages]

    @get("/app/")
    async def dashboard(self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep) -> Template:
        """The Subscriber's home: the current DPA, what needs their action, pending sub-processor changes."""
        return render(request, "agreements/app_dashboard.html.j2", heading="Dashboard",
                      **await pages.overview(db, principal))  # fmt: skip

    @get("/app/agreements")
    async def list_page(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep,
        status: FromQuery[str] = "", cursor: FromQuery[str | None] = None,
    ) -> Template:  # fmt: skip
        """The tenant's agreements, newest last (as the API pages them), filtered by status."""
        chosen = _status_filter(status)
        page = await services.list_agreements(db, principal, tenant_id=None, status=chosen, cursor=cursor,
                                              limit=PAGE_SIZE)  # fmt: skip
        next_url = next_page("/app/agreements", page.next_cursor, status=chosen or None)
        return render(request, "agreements/app_list.html.j2", heading="Agreements", items=page.items,
                      chosen=chosen or "", statuses=STATUSES, next_url=next_url)  # fmt: skip

    @get("/app/agreements/new")
    async def new_page(self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep) -> Template:
        """Request a DPA: the template's variables as a form, pre-filled from the tenant profile."""
        form = await pages.blank_form(db, principal)
        return render(request, "agreements/app_form.html.j2", heading="Request a DPA", agreement=None,
                      action="/app/agreements", **form.context())  # fmt: skip

    @post("/app/agreements", status_code=200)
    async def create(
        self, request: Request[Any, Any, Any], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> Response[Any]:
        """Create the draft as `POST /api/v1/agreements` does; a refusal shows the form again, input kept."""
        posted = await form_data(request)
        fields = await pages.form_fields(db, principal, await pages.new_request_schema(db, principal))
        try:
            created = await services.create_agreement(db, actor, principal, pages.request_body(fields, posted))
        except InvalidInput as exc:
            form = pages.refused_form(fields, posted, exc)
            return render(request, "agreements/app_form.html.j2", status=422, heading="Request a DPA",
                          agreement=None, action="/app/agreements", **form.context())  # fmt: skip
        return redirect(request, _url(created.id), "Your draft DPA is saved. Preview it, then submit it.")

    @get("/app/agreements/{agreement_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep
    ) -> Template:
        """One agreement: its status, what it says, and what can be done with it now."""
        offered = request.app.state.get("docusign") is not None
        context = await pages.agreement_page(db, principal, agreement_id, docusign_offered=offered)
        return render(request, "agreements/app_detail.html.j2", heading="Data Processing Agreement",
                      form=context["signer"], **context)  # fmt: skip

    @get("/app/agreements/{agreement_id:uuid}/edit")
    async def edit_page(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep
    ) -> Template:
        """Edit the draft (only in draft or after legal asked for changes; otherwise the page says why)."""
        agreement = await services.get_agreement(db, principal, agreement_id)
        if agreement.status not in pages.EDITABLE:
            return render(request, "agreements/app_locked.html.j2", status=409,
                          heading="This agreement cannot be edited", agreement=agreement)  # fmt: skip
        form = await pages.stored_form(db, principal, agreement)
        return render(request, "agreements/app_form.html.j2", heading="Edit the DPA", agreement=agreement,
                      action=_url(agreement_id, "/edit"), **form.context())  # fmt: skip

    @post("/app/agreements/{agreement_id:uuid}/edit", status_code=200)
    async def save(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Response[Any]:  # fmt: skip
        """Save as `PATCH /api/v1/agreements/{id}` does (the whole form as a merge patch)."""
        posted, agreement = await form_data(request), await services.get_agreement(db, principal, agreement_id)
        fields = await pages.form_fields(db, principal, await pages.agreement_schema(db, principal, agreement))
        try:
            patch = pages.request_body(fields, posted, patch=True)
            await services.update_agreement(db, actor, principal, agreement_id, patch)
        except InvalidInput as exc:
            form = pages.refused_form(fields, posted, exc)
            return render(request, "agreements/app_form.html.j2", status=422, heading="Edit the DPA",
                          agreement=agreement, action=_url(agreement_id, "/edit"), **form.context())  # fmt: skip
        return redirect(request, _url(agreement_id), "Your changes are saved.")

    @post("/app/agreements/{agreement_id:uuid}/submit", status_code=200)
    async def submit(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Redirect:  # fmt: skip
        """Submit: to legal review when it has custom clauses, else ready for signature."""
        submitted = await services.submit(db, actor, principal, agreement_id)
        return redirect(request, _url(agreement_id), _submitted_message(submitted.status))

    @get("/app/agreements/{agreement_id:uuid}/preview")
    async def preview(
        self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The PDF as it stands (the draft render; the sealed PDF once executed), as a download."""
        doc = await services.document(db, renderer, principal, agreement_id)
        return _pdf(doc.content, doc.sha256, f"dpa-{agreement_id}-{'executed' if doc.executed else 'draft'}.pdf")

    # Any of the tenant's users may void before signing, as the API allows (agreements.services.void).
    @post("/app/agreements/{agreement_id:uuid}/void", guards=[subscriber_pages], status_code=200)
    async def void(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep,
        actor: ActorDep,
    ) -> Redirect:  # fmt: skip
        """Void before signing (owner/admin), with an optional reason."""
        posted = await form_data(request)
        await services.void(db, actor, principal, agreement_id, one(posted, "reason").strip()[:1000])
        return redirect(request, _url(agreement_id), "The agreement is voided: it can no longer be signed.")

    @post("/app/agreements/{agreement_id:uuid}/signature-requests", guards=[subscriber_admin_pages], status_code=200)
    async def request_signature(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, db: DbDep, actor: ActorDep,
        renderer: RendererDep, mailer: MailerDep, settings: SettingsDep,
    ) -> Response[Any]:  # fmt: skip
        """Send for signature: straight into the signing page when the signer is the signed-in user and their
        address is verified; otherwise the link is e-mailed to the signer's inbox only (the page says so)."""
        posted = await form_data(request)
        try:
            data = pages.signature_request(posted)
            url = await pages.send_for_signature(request, db, renderer, mailer, settings, actor, agreement_id, data)
        except InvalidInput as exc:
            offered = request.app.state.get("docusign") is not None
            context = await pages.agreement_page(db, request.user, agreement_id, docusign_offered=offered)
            return render(request, "agreements/app_detail.html.j2", status=422, heading="Data Processing Agreement",
                          **{**context, "form": posted, "errors": field_errors(exc)})  # fmt: skip
        if url and data.provider == "builtin":
            return Redirect(path=url, status_code=303)
        return redirect(request, _url(agreement_id), _sent_message(data, url, request.user.email))

    @get("/app/agreements/{agreement_id:uuid}/docusign/sign", guards=[subscriber_admin_pages])
    async def docusign_sign(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep,
        settings: SettingsDep,
    ) -> Response[Any]:  # fmt: skip
        """Embedded DocuSign signing: opens DocuSign's signing view for the signed-in user, when they are the
        envelope's signer; DocuSign sends them back to `/docusign/return`. The view's URL is never stored."""
        account = request.app.state.get("docusign")
        if account is None:
            raise NotFound("DocuSign is not offered here.")
        back = f"{public_base_url(request, settings)}{_url(agreement_id, '/docusign/return')}"
        for _ in range(20):  # the envelope is being created (an outbox job, a second or two): wait for it a little
            try:
                url = await docusign.recipient_view(db, account, principal, agreement_id, back)
            except Conflict:
                await asyncio.sleep(0.5)
                continue
            return Redirect(path=url, status_code=303)
        return redirect(request, _url(agreement_id), "DocuSign is still preparing the envelope: try again shortly.")

    @get("/app/agreements/{agreement_id:uuid}/docusign/return")
    async def docusign_return(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep,
        event: FromQuery[str] = "",
    ) -> Response[Any]:  # fmt: skip
        """Where DocuSign's view sends the signer back (`?event=`): the agreement page, saying what happened. The
        agreement itself moves on DocuSign's Connect message, not on this redirect (anyone can type a URL)."""
        await services.get_agreement(db, principal, agreement_id)  # another tenant's: 404
        return redirect(request, _url(agreement_id), DOCUSIGN_OUTCOMES.get(event, DOCUSIGN_OUTCOMES["cancel"]))

    @get("/app/agreements/{agreement_id:uuid}/document")
    async def document(
        self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The executed, sealed PDF (with the signature page and certificate of completion); `X-Content-SHA256`."""
        doc = await services.document(db, renderer, principal, agreement_id)
        if not doc.executed:
            raise Conflict("The agreement is not executed yet: download the preview instead.")
        return _pdf(doc.content, doc.sha256, f"dpa-{agreement_id}-executed.pdf")

    @get("/app/agreements/{agreement_id:uuid}/certificate")
    async def certificate(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep
    ) -> Template:
        """The certificate of completion: part of the sealed PDF; the page says so and shows its facts."""
        agreement = await services.get_agreement(db, principal, agreement_id)
        evidence = await services.evidence(db, principal, agreement_id)
        return render(request, "agreements/app_certificate.html.j2", heading="Certificate of completion",
                      agreement=agreement, evidence=evidence)  # fmt: skip

    @get("/app/agreements/{agreement_id:uuid}/evidence")
    async def evidence(
        self, request: Request[Any, Any, Any], agreement_id: AgreementId, principal: PrincipalDep, db: DbDep
    ) -> Template:
        """The signing evidence: each signature's role, name, typed name, time, address and document SHA-256."""
        evidence = await services.evidence(db, principal, agreement_id)
        return render(request, "agreements/app_evidence.html.j2", heading="Signing evidence", evidence=evidence)
