"""Sending a DPA for signature and the built-in signer: the exact PDF, a single-use link, the evidence of signing.

The signer is shown the SHA-256 of the PDF they sign; the link's token carries 256 random bits and only its hash is
stored (`links`). A link e-mailed to a signer is absolute, from PUBLIC_BASE_URL. The calling user gets it back for
embedded signing only when they are the signer and their address is verified (users.verification): otherwise an
owner could add a user "real.ceo@their-company", nobody having checked the address, and sign in the CEO's name.
Anyone else's link goes to their inbox alone, and using it proves the mailbox (`signing_link` in the evidence).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import documents, envelopes, links
from dpa_service.agreements.lifecycle import move, next_status
from dpa_service.agreements.models import (
    Agreement,
    AgreementPublic,
    AgreementStatus,
    EmailVerification,
    Signature,
    SignatureMethod,
    SignatureRequest,
    SignatureRequestCreate,
    SignatureRequestPublic,
)
from dpa_service.agreements.services import find, public
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import checks
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.mailer import Mail, Mailer
from dpa_service.core.validation import text_problem
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.rendering import RenderedPdf
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.users import services as users

logger = logging.getLogger("dpa_service.agreements")


@dataclass(frozen=True)
class PreparedDocument:
    """The PDF a signer will be shown, rendered before the write transaction (which only re-checks it)."""

    agreement_id: uuid.UUID
    updated_at: datetime
    sha256: str
    subprocessor_list_version: int
    content: bytes = b""  # the PDF itself (a DocuSign envelope carries these very bytes)


async def prepare_signature(
    db: Database,
    renderer: Renderer,
    principal: Principal,
    agreement_id: uuid.UUID,
    data: SignatureRequestCreate,
    offered: frozenset[str] = frozenset({"builtin"}),
) -> PreparedDocument:
    """Render the document to sign first, outside any write transaction. `offered`: the providers configured."""
    if data.provider not in offered:
        raise InvalidInput.field("provider", "DocuSign is not configured on this service; use builtin")
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        next_status(agreement, "send_for_signature")
        await checks.before_signing(db, principal.scope, agreement.tenant_id)
    # The signer signs the list in force now; the agreement keeps that version from here on.
    list_version, pdf = await draft_to_sign(db, renderer, principal.scope, agreement, None)
    return PreparedDocument(agreement.id, agreement.updated_at, pdf.sha256, list_version, pdf.content)


async def draft_to_sign(
    db: Database, renderer: Renderer, scope: Scope, agreement: Agreement, list_version: int | None
) -> tuple[int, RenderedPdf]:
    """The draft a signer of `agreement` is shown, on sub-processor list `list_version` (None: the one in force,
    which a new signature request pins), and that list's number. Both reads on one connection, released before the
    render."""
    async with db.transaction(scope, write=False):
        version = await templates.version_by_id(db, scope, agreement.template_id)
        number, listing = await subprocessors.listing_for(db, scope, list_version)
    return number, await documents.draft_pdf(renderer, version, agreement, listing)


@dataclass
class OpenedLinks:
    """Links opened by `open_request`, to be e-mailed once its transaction has committed (a replay opens none)."""

    base_url: str
    opened: list[tuple[SignatureRequest, str, Agreement]] = field(default_factory=list)

    def url(self, token: str) -> str:
        return f"{self.base_url}/sign/{token}"


async def lock_for_sending(
    db: Database, session: AsyncSession, principal: Principal, prepared: PreparedDocument, data: SignatureRequestCreate
) -> tuple[Agreement, tuple[datetime, str] | None]:
    """What every provider's request does first, in its transaction: lock the agreement, check that it may go out
    for signature now and is the one the document was prepared from; and, when the signer is the calling user, how
    their address was verified (embedded signing needs it; None otherwise)."""
    agreement = await find(session, prepared.agreement_id, lock=True)
    next_status(agreement, "send_for_signature")
    await checks.before_signing(db, principal.scope, agreement.tenant_id)
    if agreement.updated_at != prepared.updated_at:
        raise Conflict("The agreement changed while its document was being prepared; send the request again.")
    embedded_for = None
    if data.signer.email.lower() == principal.email.lower():
        verified = await users.verification_of(db, principal.scope, principal.user_id)
        embedded_for = (verified.at, verified.method.value) if verified else None
    return agreement, embedded_for


async def open_request(
    db: Database,
    actor: Actor,
    principal: Principal,
    prepared: PreparedDocument,
    data: SignatureRequestCreate,
    *,
    valid_for: timedelta,
    links_out: OpenedLinks,
) -> SignatureRequestPublic:
    """Open a signing link for the prepared document (locks: agreement, then its requests)."""
    async with db.transaction(principal.scope) as session:
        agreement, embedded_for = await lock_for_sending(db, session, principal, prepared, data)
        agreement.subprocessor_list_version = prepared.subprocessor_list_version
        await envelopes.void_active(session, agreement.id, "Replaced by a new signature request")
        request, token = await links.open_request(
            session,
            tenant_id=agreement.tenant_id,
            agreement_id=agreement.id,
            provider=data.provider,
            signer_name=data.signer.name,
            signer_email=data.signer.email,
            signer_title=data.signer.title,
            document_sha256=prepared.sha256,
            requested_by=principal.user_id,
            valid_for=valid_for,
            embedded_for=embedded_for,
        )
        await move(
            session,
            actor,
            agreement,
            "send_for_signature",
            {
                "request_id": str(request.id),
                "signer_email": request.signer_email,
                "document_sha256": prepared.sha256,
                "embedded": embedded_for is not None,
            },
        )
        links_out.opened.append((request, token, agreement))
        return SignatureRequestPublic.model_validate(
            request, from_attributes=True, update={"signing_url": links_out.url(token) if embedded_for else None}
        )


async def send_links(mailer: Mailer, links_out: OpenedLinks) -> None:
    """E-mail each fresh link to its signer. A failure is logged: the request is committed, and a resend (which
    voids this link) recovers."""
    for request, token, agreement in links_out.opened:
        try:
            await mailer.send(_link_mail(request, agreement, links_out.url(token)))
        except Exception:
            logger.exception("could not e-mail the signing link of request %s", request.id)


def _link_mail(request: SignatureRequest, agreement: Agreement, url: str) -> Mail:
    controller = agreement.variables.get("controller", {}).get("legal_name", "your organisation")
    body = (
        f"Dear {request.signer_name},\n\n"
        f"You are asked to sign the Data Processing Agreement between {controller} and the processor, "
        f"as {request.signer_title}.\n\nReview and sign it here (the link works once, until "
        f"{request.expires_at:%Y-%m-%d %H:%M} UTC):\n{url}\n\n"
        f"Fingerprint (SHA-256) of the document to sign: {request.document_sha256}\n\n"
        "If you did not expect this, ignore this e-mail; nothing is signed without you."
    )
    return Mail(to=request.signer_email, subject="Please sign your Data Processing Agreement", body=body)


@dataclass(frozen=True)
class SigningForm:
    typed_name: str
    consent: bool
    authority_confirmed: bool
    document_sha256: str | None = None


def check_signing_form(form: SigningForm) -> None:
    errors = []
    if not form.typed_name.strip():
        errors.append(("typed_name", "type your full name to sign"))
    elif len(form.typed_name) > 200:
        errors.append(("typed_name", "is longer than 200 characters"))
    elif (problem := text_problem(form.typed_name, plain=True)) is not None:
        errors.append(("typed_name", problem))
    if form.consent is not True:
        errors.append(("consent", "you must agree to sign electronically"))
    if form.authority_confirmed is not True:
        errors.append(("authority_confirmed", "you must confirm you are authorized to sign for the Subscriber"))
    if errors:
        raise InvalidInput("The signature is not complete.", [FieldError(f, m) for f, m in errors])


async def signing_view(db: Database, token: str) -> tuple[SignatureRequest, Agreement]:
    """What a signing link shows (read-only): Gone for used, replaced or expired links."""
    async with db.transaction(Scope.system(), write=False) as session:
        request = await links.find_by_token(session, token)
        links.ensure_usable(request)
        agreement = await session.get(Agreement, request.agreement_id)
    assert agreement is not None
    return request, agreement


async def mark_opened(db: Database, request: SignatureRequest) -> None:
    """Record the first time the signing page was shown (the certificate's timeline); later views change nothing."""
    if request.opened_at is not None:
        return
    async with db.transaction(Scope.tenant(request.tenant_id)) as session:
        await session.execute(
            update(SignatureRequest)
            .where(col(SignatureRequest.id) == request.id, col(SignatureRequest.opened_at).is_(None))
            .values(opened_at=utcnow())
        )


async def refuse_unsignable(db: Database, agreement: Agreement) -> None:
    """Raise (409, with the reason) if another domain refuses signing the agreement now: a link sent, or a DPA
    signed, before its tenant's main agreement got an end date leads to no new executed DPA (`checks`)."""
    await checks.before_signing(db, Scope.tenant(agreement.tenant_id), agreement.tenant_id)


async def signing_document(db: Database, renderer: Renderer, token: str) -> bytes:
    """The exact PDF the signer is asked to sign (rebuilt deterministically, checked against the request)."""
    request, agreement = await signing_view(db, token)
    _, pdf = await draft_to_sign(
        db, renderer, Scope.tenant(agreement.tenant_id), agreement, agreement.subprocessor_list_version
    )
    if pdf.sha256 != request.document_sha256:
        raise Conflict("The document changed since the signing link was sent; ask for a new link.")
    return pdf.content


async def sign_with_token(
    db: Database, token: str, form: SigningForm, *, ip: str | None, user_agent: str | None
) -> AgreementPublic:
    """Record the signer's evidence, burn the token, mark the agreement signed: one transaction.

    The link is checked first (404/410 say more than a form error), then whether signing is refused (409: a
    tenant in exit; nothing to correct in the form then), then the form; the refusal is asked again inside the
    write transaction. Locks are taken in the order every writer uses: the agreement, then its signature requests.
    """
    request, agreement = await signing_view(db, token)
    await refuse_unsignable(db, agreement)
    check_signing_form(form)
    if form.document_sha256 and form.document_sha256.lower() != request.document_sha256:
        raise Conflict("The document you reviewed is not the one this link is for; reload the page.")
    async with db.transaction(Scope.tenant(agreement.tenant_id)) as session:
        agreement = await find(session, request.agreement_id, lock=True)
        await refuse_unsignable(db, agreement)
        request = await links.find_by_token(session, token, lock=True)
        links.ensure_usable(request)
        now = utcnow()
        session.add(
            Signature(
                tenant_id=agreement.tenant_id,
                agreement_id=agreement.id,
                request_id=request.id,
                role="subscriber",
                name=request.signer_name,
                email=request.signer_email,
                title=request.signer_title,
                typed_name=form.typed_name.strip(),
                signed_at=now,
                ip=ip,
                user_agent=(user_agent or "")[:500] or None,
                consent=True,
                consent_text_sha256=links.consent_sha256(),
                authority_confirmed=True,
                document_sha256=request.document_sha256,
                method=SignatureMethod.TYPED.value,
                **_verified_evidence(request, now),
            )
        )
        request.status, request.closed_at = "signed", now
        agreement.signed_at = now
        signer = Actor(user_id=None, role="signer", tenant_id=agreement.tenant_id, ip=ip, user_agent=user_agent)
        await move(
            session,
            signer,
            agreement,
            "sign",
            {
                "signer_email": request.signer_email,
                "typed_name": form.typed_name.strip(),
                "document_sha256": request.document_sha256,
            },
        )
    return public(agreement)


def _verified_evidence(request: SignatureRequest, now: datetime) -> dict[str, Any]:
    """How the signer's address was verified: as the calling user, before the link was handed back to them; or,
    for a link that went to the inbox only, by using it now."""
    if request.signer_email_verified_at is not None and request.signer_email_verification is not None:
        return {"email_verified_at": request.signer_email_verified_at,
                "email_verification": request.signer_email_verification}  # fmt: skip
    return {"email_verified_at": now, "email_verification": EmailVerification.SIGNING_LINK.value}


async def expire_overdue(db: Database) -> int:
    """Close expired signing links; their agreements go back to ready_for_signature for a new request."""
    expired = 0
    async with db.transaction(Scope.system()) as session:
        for request_id, agreement_id in await links.overdue(session):
            agreement = await session.get(Agreement, agreement_id, with_for_update=True)
            if not await links.expire(session, request_id):
                continue  # signed or replaced meanwhile
            expired += 1
            if agreement is not None and agreement.status == AgreementStatus.OUT_FOR_SIGNATURE:
                await move(session, Actor.system("expiry"), agreement, "expire", {"request_id": str(request_id)})
    return expired
