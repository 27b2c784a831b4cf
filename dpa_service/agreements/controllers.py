"""Agreements (DPAs): Subscribers request, customize, submit and send them for signature; legal reviews,
countersigns and voids; both read documents and evidence. Another tenant's agreement is always 404."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from dpa_service.agreements import (
    deferred_execution,
    docusign_connect,
    execution,
    providers,
    services,
    signing,
    verification,
)
from dpa_service.agreements import docusign as docusign_service
from dpa_service.agreements.models import (
    AgreementCreate,
    AgreementPage,
    AgreementPatch,
    AgreementPublic,
    AgreementStatus,
    DocumentVerification,
    EnvelopePublic,
    Evidence,
    ReviewCreate,
    ReviewView,
    SignatureRequestCreate,
    SignatureRequestPublic,
    VoidCreate,
)
from dpa_service.core.exceptions import AuthenticationError, InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, optional_principal, require_roles, subscriber_admin, subscriber_only
from dpa_service.http.deps import (
    ActorDep,
    DbDep,
    MailerDep,
    PrincipalDep,
    RendererDep,
    SealDep,
    SettingsDep,
    public_base_url,
)
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit

readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.SALES)
# API.md: documents and evidence are for the owner tenant and all staff.
document_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN)
voiders = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

StatusFilter = Annotated[AgreementStatus | None, QueryParameter(name="status")]
TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
AgreementId = FromPath[uuid.UUID]


def docusign_of(request: Request[Any, Any, Any]) -> docusign_service.DocuSign | None:
    """The configured DocuSign account (app state), or None."""
    account: docusign_service.DocuSign | None = request.app.state.get("docusign")
    return account


class AgreementsController(Controller):
    path = "/api/v1/agreements"
    tags = ["Agreements"]

    @post("/", guards=[subscriber_only], operation_id="createAgreement", responses=created(AgreementPublic))
    async def create(
        self, data: JSONBody[AgreementCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        """A Subscriber requests a DPA: a draft from the key's current approved template, the controller's part
        pre-filled from its tenant profile; every failing variable is named in the 422."""
        work = partial(services.create_agreement, db, actor, request.user, data)
        return await create_once(db, request, request.user, work)

    @get("/", guards=[readers], operation_id="listAgreements")
    async def list_agreements(
        self,
        principal: PrincipalDep,
        db: DbDep,
        status: StatusFilter = None,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> AgreementPage:  # a msgspec twin of Page[AgreementPublic]
        """A Subscriber's own agreements; legal and sales see all (`?tenant_id=` narrows); `?status=` filters."""
        return await services.list_agreements(
            db, principal, tenant_id=tenant_id, status=status, cursor=cursor, limit=limit
        )

    @get("/{agreement_id:uuid}", guards=[readers], operation_id="getAgreement")
    async def get_agreement(self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep) -> AgreementPublic:
        """One agreement with its variables, custom clauses and lifecycle dates."""
        return await services.get_agreement(db, principal, agreement_id)

    @patch("/{agreement_id:uuid}", guards=[subscriber_only], operation_id="updateAgreement")
    async def update(
        self,
        agreement_id: AgreementId,
        data: JSONBody[AgreementPatch],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> AgreementPublic:
        """A JSON merge patch (RFC 7396) of the variables and/or new custom clauses; only in `draft` or
        `changes_requested` (else 409)."""
        return await services.update_agreement(db, actor, principal, agreement_id, data)

    @post("/{agreement_id:uuid}/submit", guards=[subscriber_only], operation_id="submitAgreement", status_code=200)
    async def submit(
        self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> AgreementPublic:
        """To `ready_for_signature`, or to `in_legal_review` when the agreement has custom clauses."""
        return await services.submit(db, actor, principal, agreement_id)

    @post("/{agreement_id:uuid}/review", guards=[legal_only], operation_id="reviewAgreement", status_code=200)
    async def review(
        self,
        agreement_id: AgreementId,
        data: JSONBody[ReviewCreate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> AgreementPublic:
        """Legal's decision on custom clauses: `approve` (to `ready_for_signature`) or `request_changes` with a
        comment."""
        return await services.review(db, actor, principal, agreement_id, data)

    @get("/{agreement_id:uuid}/review", guards=[readers], operation_id="getAgreementReview")
    async def review_view(
        self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> ReviewView:
        """The custom clauses, and a unified diff of the agreement's text against the standard text."""
        return await services.review_view(db, renderer, principal, agreement_id)

    @post("/{agreement_id:uuid}/void", guards=[voiders], operation_id="voidAgreement", status_code=200)
    async def void(
        self,
        agreement_id: AgreementId,
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
        data: JSONBody[VoidCreate | None] = None,
    ) -> AgreementPublic:
        """To `voided`: a Subscriber only before `signed` (later 409); legal also after, never once executed."""
        return await services.void(db, actor, principal, agreement_id, data.reason if data else "")

    @get(
        "/{agreement_id:uuid}/document",
        guards=[document_readers],
        operation_id="getAgreementDocument",
        media_type="application/pdf",
    )
    async def document(
        self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        """The PDF: the draft render, or the sealed executed document once executed; `X-Content-SHA256` is its
        hash."""
        doc = await services.document(db, renderer, principal, agreement_id)
        filename = f"dpa-{agreement_id}-{'executed' if doc.executed else 'draft'}.pdf"
        return Response(
            doc.content,
            media_type="application/pdf",
            headers={"X-Content-SHA256": doc.sha256, "Content-Disposition": f'inline; filename="{filename}"'},
        )

    @post(
        "/{agreement_id:uuid}/signature-requests",
        guards=[subscriber_admin],
        operation_id="requestSignature",
        responses=created(SignatureRequestPublic),
    )
    async def request_signature(
        self,
        agreement_id: AgreementId,
        data: JSONBody[SignatureRequestCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        renderer: RendererDep,
        mailer: MailerDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """Send the agreement for signature (`provider`, `signer`): a single-use link e-mailed to the signer, and
        `signing_url` for embedded signing only when the signer is the calling user and that user's e-mail address
        is verified (otherwise the link goes to the signer's inbox alone); agreement -> `out_for_signature`.
        `provider: "docusign"` (when configured, else 422 naming `provider`) creates a DocuSign envelope from the same
        PDF: `envelope_status` is `creating` until DocuSign accepts it, and the agreement is `out_for_signature`
        from then; embedded signing (`signing_url`) opens DocuSign's view for the calling user."""
        base = public_base_url(request, settings)
        provider = providers.chosen(data.provider, docusign_of(request), mailer, base, settings.signing_link_days)
        prepared = await signing.prepare_signature(db, renderer, request.user, agreement_id, data, provider.offered)
        work = partial(provider.open, db, actor, request.user, prepared, data)
        response = await create_once(db, request, request.user, work)
        await provider.after_commit()
        return response

    @post(
        "/{agreement_id:uuid}/countersign",
        guards=[legal_only],
        operation_id="countersignAgreement",
        status_code=200,
        responses={
            202: ResponseSpec(
                AgreementPublic,
                description="Asked with `Prefer: respond-async`: checked and queued; still `signed`, with "
                "`execution_queued_at` set, until the worker executes it. Headers: `Preference-Applied: "
                "respond-async`, `Location`: the agreement",
            )
        },
    )
    async def countersign(
        self,
        agreement_id: AgreementId,
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
        renderer: RendererDep,
        seal: SealDep,
        request: Request[Any, Any, Any],
        settings: SettingsDep,
        prefer: Annotated[
            str | None,
            HeaderParameter(name="Prefer", description="`respond-async` (RFC 7240): queue the execution, answer 202"),
        ] = None,
    ) -> Response[AgreementPublic]:
        """`signed -> executed`: the processor's signature, the sealed PDF, `effective_date` and `document_sha256`;
        the tenant's previous executed DPA is superseded; the signer and the tenant's owners are e-mailed where to
        download it.

        With `Prefer: respond-async` the countersignature is checked and recorded at once and the execution (render,
        seal, commit) runs in the worker: 202, the agreement still `signed` with `execution_queued_at`. It executes
        as if legal had waited, dated when they countersigned; if it cannot (the tenant entered its exit, say),
        the agreement stays signed with `execution_error` saying why, and legal is e-mailed."""
        base = public_base_url(request, settings)
        # `prefer` documents the header; Litestar hands it only the first of several, so all are read here.
        if deferred_execution.wants_async(", ".join(request.headers.getall("prefer", []))):
            queued = await deferred_execution.queue_countersign(db, actor, principal, agreement_id, base_url=base)
            headers = {"Preference-Applied": "respond-async", "Location": f"{base}/api/v1/agreements/{agreement_id}"}
            return Response(queued, status_code=202, headers=headers)
        return Response(await execution.countersign(db, renderer, seal, actor, principal, agreement_id, base_url=base))

    @get("/{agreement_id:uuid}/evidence", guards=[document_readers], operation_id="getAgreementEvidence")
    async def evidence(self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep) -> Evidence:
        """Each signature's evidence: name, e-mail, how and when that address was verified (`email_verification`:
        `confirmation_link`, `sign_in_link` or `signing_link`; `email_verified_at`), typed name, time, address, user
        agent, consent and the SHA-256 of the exact document signed."""
        return await services.evidence(db, principal, agreement_id)

    @get("/{agreement_id:uuid}/docusign", guards=[document_readers], operation_id="listAgreementEnvelopes")
    async def envelopes(self, agreement_id: AgreementId, principal: PrincipalDep, db: DbDep) -> list[EnvelopePublic]:
        """The agreement's DocuSign envelopes: status (`creating`, `sent`, `delivered`, `completed`, `declined`,
        `voided`, `failed`) with the reason, the recipient events Connect reported, DocuSign's audit events, and the
        SHA-256 of the PDF sent and of the combined document and certificate of completion DocuSign returned."""
        return await docusign_service.envelopes_of(db, principal, agreement_id)


class DocuSignConnectController(Controller):
    path = "/webhooks"
    tags = ["Agreements"]

    @post(
        "/docusign",
        operation_id="receiveDocuSignConnect",
        status_code=200,
        exclude_from_auth=True,
        security=[],
        responses={401: ResponseSpec(None, description="The X-DocuSign-Signature-N HMAC is missing or wrong")},
    )
    async def connect(self, request: Request[Any, Any, Any], db: DbDep) -> dict[str, str]:
        """DocuSign Connect (JSON SIM): `X-DocuSign-Signature-1..N` must be the base64 HMAC-SHA256 of the raw body
        under a configured key (401 before anything is parsed, also when DocuSign is not configured); a replay is a
        no-op; a message for an envelope this service never created is ignored."""
        account = docusign_of(request)
        body = await request.body()
        if account is None:
            raise AuthenticationError("DocuSign is not configured on this service.")
        changed = await docusign_connect.receive_connect(db, account, body, request.headers)
        return {"status": "applied" if changed else "ignored"}


class DocumentsController(Controller):
    path = "/api/v1/documents"
    tags = ["Agreements"]

    @post("/verify", operation_id="verifyDocument", status_code=200, exclude_from_auth=True, security=[])
    async def verify(self, request: Request[Any, Any, Any], db: DbDep, seal: SealDep) -> DocumentVerification:
        """Is this PDF (the request body, `Content-Type: application/pdf`) one of our executed agreements, unchanged?
        `verified`, `tampered` or `unknown`; no key needed (rate-limited); `agreement_id` only for its own tenant or
        staff."""
        content = await request.body()
        if not content:
            raise InvalidInput.field("body", "send the PDF bytes as the request body (Content-Type: application/pdf)")
        return await verification.verify(db, seal, content, viewer=await optional_principal(request))
