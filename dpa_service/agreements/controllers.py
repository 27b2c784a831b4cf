"""Agreements (DPAs): Subscribers request, customize, submit and send them for signature; legal reviews,
countersigns and voids; both read documents and evidence. Another tenant's agreement is always 404."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.agreements import services
from dpa_service.agreements.models import (
    AgreementCreate,
    AgreementPatch,
    AgreementPublic,
    AgreementStatus,
    DocumentVerification,
    Evidence,
    ReviewCreate,
    ReviewView,
    SignaturePublic,
    SignatureRequestCreate,
    SignatureRequestPublic,
    VoidCreate,
)
from dpa_service.core.db import Scope
from dpa_service.core.exceptions import DPAError, InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.core.mailer import Mail, Mailer
from dpa_service.http.auth import require_roles, subscriber_admin, subscriber_only
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, RendererDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page, decode_id_cursor, page_of

logger = logging.getLogger("dpa_service.agreements")

legal_only = require_roles(Role.LEGAL)
readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.SALES)
# API.md: documents and evidence are for the owner tenant and all staff.
document_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL, Role.SALES, Role.PLATFORM_ADMIN)
voiders = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

StatusFilter = Annotated[AgreementStatus | None, QueryParameter(name="status")]
TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]


def public(agreement: Any) -> AgreementPublic:
    return AgreementPublic.model_validate(agreement, from_attributes=True)


def signing_url(request: Request[Any, Any, Any], token: str) -> str:
    """Absolute link from PUBLIC_BASE_URL. Only in development without it does the request's own base URL
    stand in (settings refuse production without PUBLIC_BASE_URL, and `dpa serve` sets it): a Host header must
    never decide where a link e-mailed to someone else points."""
    base = request.app.state.settings.public_base_url or str(request.base_url).rstrip("/")
    return f"{base}/sign/{token}"


class AgreementsController(Controller):
    path = "/api/v1/agreements"
    tags = ["Agreements"]

    @post("/", guards=[subscriber_only], operation_id="createAgreement", responses=created(AgreementPublic))
    async def create(
        self, data: JSONBody[AgreementCreate], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> Response[bytes]:
        async def work(session: Any) -> AgreementPublic:
            return public(await services.create_agreement(session, actor, request.user, data))

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
    ) -> Page[AgreementPublic]:
        async with db.transaction(principal.scope, write=False) as session:
            rows = await services.list_agreements(
                session, tenant_id=tenant_id, status=status, after=decode_id_cursor(cursor), limit=limit
            )
        return page_of(rows, limit, public, lambda a: str(a.id))

    @get("/{agreement_id:uuid}", guards=[readers], operation_id="getAgreement")
    async def get_agreement(
        self, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> AgreementPublic:
        async with db.transaction(principal.scope, write=False) as session:
            return public(await services.get_agreement(session, agreement_id))

    @patch("/{agreement_id:uuid}", guards=[subscriber_only], operation_id="updateAgreement")
    async def update(
        self,
        agreement_id: FromPath[uuid.UUID],
        data: JSONBody[AgreementPatch],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> AgreementPublic:
        async with db.transaction(principal.scope) as session:
            return public(await services.update_agreement(session, actor, agreement_id, data))

    @post("/{agreement_id:uuid}/submit", guards=[subscriber_only], operation_id="submitAgreement", status_code=200)
    async def submit(
        self, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, actor: ActorDep
    ) -> AgreementPublic:
        async with db.transaction(principal.scope) as session:
            return public(await services.submit(session, actor, agreement_id))

    @post("/{agreement_id:uuid}/review", guards=[legal_only], operation_id="reviewAgreement", status_code=200)
    async def review(
        self,
        agreement_id: FromPath[uuid.UUID],
        data: JSONBody[ReviewCreate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> AgreementPublic:
        async with db.transaction(principal.scope) as session:
            return public(await services.review(session, actor, agreement_id, data))

    @get("/{agreement_id:uuid}/review", guards=[readers], operation_id="getAgreementReview")
    async def review_view(self, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> ReviewView:
        """The custom clauses, and a unified diff of the agreement's text against the standard text."""
        return ReviewView(**await services.review_view(db, principal.scope, agreement_id))

    @post("/{agreement_id:uuid}/void", guards=[voiders], operation_id="voidAgreement", status_code=200)
    async def void(
        self,
        agreement_id: FromPath[uuid.UUID],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
        data: JSONBody[VoidCreate | None] = None,
    ) -> AgreementPublic:
        async with db.transaction(principal.scope) as session:
            return public(await services.void(session, actor, principal, agreement_id, data.reason if data else ""))

    @get(
        "/{agreement_id:uuid}/document",
        guards=[document_readers],
        operation_id="getAgreementDocument",
        media_type="application/pdf",
    )
    async def document(
        self, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep, renderer: RendererDep
    ) -> Response[bytes]:
        try:
            doc = await services.document(db, renderer, principal.scope, agreement_id)
        except services.StoredDocumentCorrupted as exc:
            logger.critical("ALARM: refusing to serve an executed DPA whose bytes changed: %s", exc)
            raise DPAError("The stored document failed its integrity check; the operator has been alerted.") from exc
        kind = "executed" if doc.executed else "draft"
        return Response(
            doc.content,
            media_type="application/pdf",
            headers={
                "X-Content-SHA256": doc.sha256,
                "Content-Disposition": f'inline; filename="dpa-{agreement_id}-{kind}.pdf"',
            },
        )

    @post(
        "/{agreement_id:uuid}/signature-requests",
        guards=[subscriber_admin],
        operation_id="requestSignature",
        responses=created(SignatureRequestPublic),
    )
    async def request_signature(
        self,
        agreement_id: FromPath[uuid.UUID],
        data: JSONBody[SignatureRequestCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        renderer: RendererDep,
    ) -> Response[bytes]:
        principal: Principal = request.user
        settings = request.app.state.settings
        opened: list[services.OpenedRequest] = []
        # Render first, outside any write transaction; the transaction then only re-checks and records.
        prepared = await services.prepare_signature(db, renderer, principal.scope, agreement_id, data)

        async def work(session: Any) -> SignatureRequestPublic:
            result = await services.request_signature(
                session, actor, principal, prepared, data, valid_for=timedelta(days=settings.signing_link_days)
            )
            opened.append(result)
            url = signing_url(request, result.token)
            embedded = result.request.signer_email == principal.email.lower()
            return SignatureRequestPublic.model_validate(
                result.request, from_attributes=True, update={"signing_url": url if embedded else None}
            )

        response = await create_once(db, request, principal, work)
        if opened:  # a fresh request (not a replay): the link goes to the signer's inbox
            try:
                await _send_link(request.app.state.mailer, opened[0], signing_url(request, opened[0].token))
            except Exception:  # the request is committed; a resend (which voids this link) recovers
                logger.exception("could not e-mail the signing link of request %s", opened[0].request.id)
        return response

    @post("/{agreement_id:uuid}/countersign", guards=[legal_only], operation_id="countersignAgreement", status_code=200)
    async def countersign(
        self, agreement_id: FromPath[uuid.UUID], request: Request[Principal, Any, Any], db: DbDep, actor: ActorDep
    ) -> AgreementPublic:
        state = request.app.state
        return public(await services.countersign(db, state.renderer, state.seal, actor, request.user, agreement_id))

    @get("/{agreement_id:uuid}/evidence", guards=[document_readers], operation_id="getAgreementEvidence")
    async def evidence(self, agreement_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep) -> Evidence:
        async with db.transaction(principal.scope, write=False) as session:
            agreement, signatures = await services.evidence(session, agreement_id)
        return Evidence(
            agreement_id=agreement.id,
            status=agreement.status,
            signatures=[SignaturePublic.model_validate(s, from_attributes=True) for s in signatures],
            executed_sha256=agreement.document_sha256,
            sealed_at=agreement.sealed_at,
        )


async def _send_link(mailer: Mailer, opened: services.OpenedRequest, url: str) -> None:
    agreement, signing_request = opened.agreement, opened.request
    controller = agreement.variables.get("controller", {}).get("legal_name", "your organisation")
    body = (
        f"Dear {signing_request.signer_name},\n\n"
        f"You are asked to sign the Data Processing Agreement between {controller} and the processor, "
        f"as {signing_request.signer_title}.\n\nReview and sign it here (the link works once, until "
        f"{signing_request.expires_at:%Y-%m-%d %H:%M} UTC):\n{url}\n\n"
        f"Fingerprint (SHA-256) of the document to sign: {signing_request.document_sha256}\n\n"
        "If you did not expect this, ignore this e-mail; nothing is signed without you."
    )
    await mailer.send(
        Mail(to=signing_request.signer_email, subject="Please sign your Data Processing Agreement", body=body)
    )


class DocumentsController(Controller):
    path = "/api/v1/documents"
    tags = ["Agreements"]

    @post("/verify", operation_id="verifyDocument", status_code=200)
    async def verify(self, request: Request[Principal, Any, Any], db: DbDep) -> DocumentVerification:
        """Body: the PDF's bytes (`Content-Type: application/pdf`)."""
        content = await request.body()
        if not content:
            raise InvalidInput.field("body", "send the PDF bytes as the request body (Content-Type: application/pdf)")
        principal: Principal = request.user
        # A copy held by anyone is looked up across tenants; only its agreement id is kept from non-owners.
        async with db.transaction(Scope.system(), write=False) as session:
            result = await services.verify_document(session, request.app.state.seal, content, viewer=principal)
        return DocumentVerification(**result)
