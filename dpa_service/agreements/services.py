"""The DPA lifecycle: one state machine, each step one transaction, every step audited.

draft ──submit──▶ ready_for_signature            (no custom clauses)
draft ──submit──▶ in_legal_review ──approve──▶ ready_for_signature
                  in_legal_review ──request_changes──▶ changes_requested ──submit──▶ …
ready_for_signature ──send──▶ out_for_signature ──sign──▶ signed ──countersign──▶ executed
out_for_signature ──send──▶ out_for_signature     (a resend voids the previous link)
out_for_signature ──expire──▶ ready_for_signature
any state before executed ──void──▶ voided        (Subscribers: only before signed)
executed ──supersede──▶ superseded                (when the tenant executes a newer DPA)
"""

from __future__ import annotations

import copy
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.agreements import documents
from dpa_service.agreements import links as signing
from dpa_service.agreements.models import (
    Agreement,
    AgreementCreate,
    AgreementDocument,
    AgreementPatch,
    AgreementStatus,
    ReviewCreate,
    ReviewDecision,
    Signature,
    SignatureRequest,
    SignatureRequestCreate,
)
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal, ValidationStatus
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.variables import validate_variables
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers
from dpa_service.users.models import User

logger = logging.getLogger("dpa_service.agreements")

STATUS_CHANGED = "agreement.status_changed"

A = AgreementStatus
BEFORE_EXECUTION = (A.DRAFT, A.IN_LEGAL_REVIEW, A.CHANGES_REQUESTED, A.READY_FOR_SIGNATURE, A.OUT_FOR_SIGNATURE)

# The one lifecycle of an agreement: action -> {from status: to status}. Anything else is 409.
TRANSITIONS: dict[str, dict[str, str]] = {
    "edit": {A.DRAFT: A.DRAFT, A.CHANGES_REQUESTED: A.CHANGES_REQUESTED},
    "submit": {A.DRAFT: A.READY_FOR_SIGNATURE, A.CHANGES_REQUESTED: A.READY_FOR_SIGNATURE},
    "submit_for_review": {A.DRAFT: A.IN_LEGAL_REVIEW, A.CHANGES_REQUESTED: A.IN_LEGAL_REVIEW},
    "approve": {A.IN_LEGAL_REVIEW: A.READY_FOR_SIGNATURE},
    "request_changes": {A.IN_LEGAL_REVIEW: A.CHANGES_REQUESTED},
    "send_for_signature": {A.READY_FOR_SIGNATURE: A.OUT_FOR_SIGNATURE, A.OUT_FOR_SIGNATURE: A.OUT_FOR_SIGNATURE},
    "expire": {A.OUT_FOR_SIGNATURE: A.READY_FOR_SIGNATURE},
    "sign": {A.OUT_FOR_SIGNATURE: A.SIGNED},
    "countersign": {A.SIGNED: A.EXECUTED},
    "void": {**{status: A.VOIDED for status in BEFORE_EXECUTION}, A.SIGNED: A.VOIDED},
    "supersede": {A.EXECUTED: A.SUPERSEDED},
}


def next_status(agreement: Agreement, action: str) -> str:
    allowed = TRANSITIONS[action]
    if agreement.status not in allowed:
        raise Conflict(f"An agreement in status {agreement.status} does not allow '{action}'.")
    return allowed[agreement.status]


async def _move(
    session: AsyncSession, actor: Actor, agreement: Agreement, action: str, data: dict[str, Any] | None = None
) -> None:
    """Apply one transition, audit it and (when the status moves) notify webhooks, in the caller's transaction."""
    previous, agreement.status = agreement.status, next_status(agreement, action)
    agreement.updated_at = utcnow() if action == "edit" else agreement.updated_at
    event = await audit.record(
        session,
        actor,
        f"agreement.{action}",
        "agreement",
        agreement.id,
        tenant_id=agreement.tenant_id,
        data={"from": previous, "to": agreement.status, **(data or {})},
    )
    if previous != agreement.status:
        await enqueue_many(
            session,
            STATUS_CHANGED,
            [
                (
                    agreement.tenant_id,
                    f"{STATUS_CHANGED}:{event.id}",
                    {
                        "agreement_id": str(agreement.id),
                        "action": action,
                        "from": previous,
                        "to": agreement.status,
                        "notify_by_email": False,
                    },
                )
            ],
        )


# --- Reading -------------------------------------------------------------------------------------------------


async def get_agreement(session: AsyncSession, agreement_id: uuid.UUID, *, lock: bool = False) -> Agreement:
    """Within the session's tenant scope: another tenant's agreement is simply not found."""
    query = select(Agreement).where(Agreement.id == agreement_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(Agreement.tenant_id == tenant)
    if lock:
        query = query.with_for_update()
    agreement = (await session.execute(query)).scalar_one_or_none()
    if agreement is None:
        raise NotFound("Agreement not found.")
    return agreement


async def list_agreements(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, status: str | None, after: uuid.UUID | None, limit: int
) -> Sequence[Agreement]:
    query = select(Agreement).order_by(Agreement.id).limit(limit + 1)
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(Agreement.tenant_id == tenant)
    if status:
        query = query.where(Agreement.status == status)
    if after:
        query = query.where(Agreement.id > after)
    return (await session.execute(query)).scalars().all()


# --- Request and customize -----------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _controller_from_profile(profile: Any) -> dict[str, Any]:
    fields = {
        "legal_name": profile.legal_name,
        "address": profile.address,
        "country": profile.country,
        "contact_email": profile.contact_email,
        "registration_number": profile.registration_number,
    }
    return {key: value for key, value in fields.items() if value}


async def create_agreement(
    session: AsyncSession, actor: Actor, principal: Principal, data: AgreementCreate
) -> Agreement:
    """A draft from the key's current approved template; the controller is pre-filled from the tenant profile."""
    if principal.tenant_id is None:
        raise PermissionDenied("Agreements are requested by a Subscriber.")
    version = await templates.current_version(session, data.template_key)
    if version is None:
        raise InvalidInput.field("template_key", "has no approved template version")
    profile = await tenants.get_tenant(session, principal.tenant_id)
    variables = merge_patch({"controller": _controller_from_profile(profile)}, data.variables)
    validate_variables(version.variables_schema, variables)
    agreement = Agreement(
        tenant_id=principal.tenant_id,
        template_id=version.id,
        template_key=version.key,
        template_version=version.version,
        template_sha256=version.sha256,
        variables=variables,
        custom_clauses=[clause.model_dump() for clause in data.custom_clauses],
        created_by=principal.user_id,
    )
    session.add(agreement)
    await session.flush()
    await audit.record(
        session,
        actor,
        "agreement.created",
        "agreement",
        agreement.id,
        tenant_id=agreement.tenant_id,
        data={
            "template": f"{version.key} v{version.version}",
            "template_sha256": version.sha256,
            "custom_clauses": len(agreement.custom_clauses),
        },
    )
    return agreement


async def update_agreement(
    session: AsyncSession, actor: Actor, agreement_id: uuid.UUID, patch: AgreementPatch
) -> Agreement:
    agreement = await get_agreement(session, agreement_id, lock=True)
    next_status(agreement, "edit")
    version = await templates.version_by_id(session, agreement.template_id)
    changed: list[str] = []
    if "variables" in patch.model_fields_set and patch.variables is not None:
        variables = merge_patch(agreement.variables, patch.variables)
        validate_variables(version.variables_schema, variables)
        if variables != agreement.variables:
            agreement.variables, changed = variables, [*changed, "variables"]
    if "custom_clauses" in patch.model_fields_set:
        clauses = [clause.model_dump() for clause in patch.custom_clauses or []]
        if clauses != agreement.custom_clauses:
            agreement.custom_clauses, changed = clauses, [*changed, "custom_clauses"]
    if changed:
        await _move(session, actor, agreement, "edit", {"changed": changed})
    return agreement


async def submit(session: AsyncSession, actor: Actor, agreement_id: uuid.UUID) -> Agreement:
    agreement = await get_agreement(session, agreement_id, lock=True)
    version = await templates.version_by_id(session, agreement.template_id)
    action = "submit_for_review" if agreement.custom_clauses else "submit"
    next_status(agreement, action)
    validate_variables(version.variables_schema, agreement.variables)
    agreement.submitted_at = utcnow()
    await _move(session, actor, agreement, action, {"custom_clauses": len(agreement.custom_clauses)})
    return agreement


async def review(session: AsyncSession, actor: Actor, agreement_id: uuid.UUID, data: ReviewCreate) -> Agreement:
    if data.decision == ReviewDecision.REQUEST_CHANGES and not data.comment:
        raise InvalidInput.field("comment", "is required when requesting changes: say what to change")
    agreement = await get_agreement(session, agreement_id, lock=True)
    action = "approve" if data.decision == ReviewDecision.APPROVE else "request_changes"
    next_status(agreement, action)
    agreement.review_comment = data.comment or None
    agreement.reviewed_by, agreement.reviewed_at = actor.user_id, utcnow()
    await _move(session, actor, agreement, action, {"comment": data.comment})
    return agreement


async def void(
    session: AsyncSession, actor: Actor, principal: Principal, agreement_id: uuid.UUID, reason: str
) -> Agreement:
    agreement = await get_agreement(session, agreement_id, lock=True)
    if not principal.is_staff and agreement.status not in BEFORE_EXECUTION:
        raise Conflict("A signed agreement can only be voided by the processor's legal team.")
    next_status(agreement, "void")
    await signing.void_pending(session, agreement.id)
    agreement.voided_at, agreement.void_reason = utcnow(), reason or None
    await _move(session, actor, agreement, "void", {"reason": reason})
    return agreement


# --- Documents -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    content: bytes
    sha256: str
    executed: bool


class StoredDocumentCorrupted(RuntimeError):
    """The stored executed PDF no longer matches its recorded SHA-256."""


async def document(db: Database, renderer: Renderer, scope: Scope, agreement_id: uuid.UUID) -> Document:
    """The draft render, or the stored sealed bytes once executed (checked against their hash first).

    Drafts render after the read transaction has ended: no connection is held while waiting for layout.
    """
    async with db.transaction(scope, write=False) as session:
        agreement = await get_agreement(session, agreement_id)
        if agreement.status in (A.EXECUTED, A.SUPERSEDED):
            stored = await session.get(AgreementDocument, agreement.id)
            if stored is None or stored.sha256 != agreement.document_sha256:
                raise StoredDocumentCorrupted(f"agreement {agreement.id}: executed document missing or re-labelled")
            actual = _sha256(stored.content)
            if actual != stored.sha256:
                raise StoredDocumentCorrupted(
                    f"agreement {agreement.id}: stored PDF hashes to {actual}, recorded {stored.sha256}"
                )
            return Document(stored.content, stored.sha256, executed=True)
        version = await templates.version_by_id(session, agreement.template_id)
        _, listing = await subprocessors.listing_for(session, agreement.subprocessor_list_version)
    rendered = await documents.draft_pdf(renderer, version, agreement, listing)
    return Document(rendered.content, rendered.sha256, executed=False)


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# --- Signature requests and signing --------------------------------------------------------------------------


@dataclass(frozen=True)
class PreparedDocument:
    """The PDF a signer will be shown, rendered before the write transaction (which only re-checks it)."""

    agreement_id: uuid.UUID
    updated_at: Any
    sha256: str
    subprocessor_list_version: int


async def prepare_signature(
    db: Database, renderer: Renderer, scope: Scope, agreement_id: uuid.UUID, data: SignatureRequestCreate
) -> PreparedDocument:
    if data.provider != "builtin":
        raise InvalidInput.field("provider", "DocuSign is not configured on this service; use builtin")
    async with db.transaction(scope, write=False) as session:
        agreement = await get_agreement(session, agreement_id)
        next_status(agreement, "send_for_signature")
        version = await templates.version_by_id(session, agreement.template_id)
        # The signer signs the list in force now; the agreement keeps that version from here on.
        list_version, listing = await subprocessors.listing_for(session, None)
    pdf = await documents.draft_pdf(renderer, version, agreement, listing)
    return PreparedDocument(agreement.id, agreement.updated_at, pdf.sha256, list_version)


@dataclass(frozen=True)
class OpenedRequest:
    request: SignatureRequest
    token: str
    agreement: Agreement


async def request_signature(
    session: AsyncSession,
    actor: Actor,
    principal: Principal,
    prepared: PreparedDocument,
    data: SignatureRequestCreate,
    *,
    valid_for: timedelta,
) -> OpenedRequest:
    """Open a signing link for the prepared document (locks: agreement, then its requests)."""
    agreement = await get_agreement(session, prepared.agreement_id, lock=True)
    next_status(agreement, "send_for_signature")
    if agreement.updated_at != prepared.updated_at:
        raise Conflict("The agreement changed while its document was being prepared; send the request again.")
    agreement.subprocessor_list_version = prepared.subprocessor_list_version
    request, token = await signing.open_request(
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
    )
    await _move(
        session,
        actor,
        agreement,
        "send_for_signature",
        {"request_id": str(request.id), "signer_email": request.signer_email, "document_sha256": prepared.sha256},
    )
    return OpenedRequest(request, token, agreement)


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
    if form.consent is not True:
        errors.append(("consent", "you must agree to sign electronically"))
    if form.authority_confirmed is not True:
        errors.append(("authority_confirmed", "you must confirm you are authorized to sign for the Subscriber"))
    if errors:
        raise InvalidInput("The signature is not complete.", [FieldError(f, m) for f, m in errors])


async def signing_view(db: Database, token: str) -> tuple[SignatureRequest, Agreement]:
    """What a signing link shows (read-only): Gone for used, replaced or expired links."""
    async with db.transaction(Scope.system(), write=False) as session:
        request = await signing.find_by_token(session, token)
        signing.ensure_usable(request)
        agreement = await session.get(Agreement, request.agreement_id)
    assert agreement is not None
    return request, agreement


async def signing_document(db: Database, renderer: Renderer, token: str) -> bytes:
    """The exact PDF the signer is asked to sign (rebuilt deterministically, checked against the request)."""
    request, agreement = await signing_view(db, token)
    async with db.transaction(Scope.tenant(agreement.tenant_id), write=False) as session:
        version = await templates.version_by_id(session, agreement.template_id)
        _, listing = await subprocessors.listing_for(session, agreement.subprocessor_list_version)
    pdf = await documents.draft_pdf(renderer, version, agreement, listing)
    if pdf.sha256 != request.document_sha256:
        raise Conflict("The document changed since the signing link was sent; ask for a new link.")
    return pdf.content


async def sign_with_token(
    db: Database, token: str, form: SigningForm, *, ip: str | None, user_agent: str | None
) -> Agreement:
    """Record the signer's evidence, burn the token, mark the agreement signed: one transaction.

    The link is checked first (404/410 say more than a form error), then the form. Locks are taken in the
    order every writer uses: the agreement, then its signature requests.
    """
    request, agreement = await signing_view(db, token)
    check_signing_form(form)
    if form.document_sha256 and form.document_sha256.lower() != request.document_sha256:
        raise Conflict("The document you reviewed is not the one this link is for; reload the page.")
    async with db.transaction(Scope.tenant(agreement.tenant_id)) as session:
        agreement = await get_agreement(session, request.agreement_id, lock=True)
        request = await signing.find_by_token(session, token, lock=True)
        signing.ensure_usable(request)
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
                consent_text_sha256=signing.consent_sha256(),
                authority_confirmed=True,
                document_sha256=request.document_sha256,
            )
        )
        request.status, request.closed_at = "signed", now
        agreement.signed_at = now
        signer = Actor(user_id=None, role="signer", tenant_id=agreement.tenant_id, ip=ip, user_agent=user_agent)
        await _move(
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
    return agreement


async def expire_overdue(db: Database) -> int:
    """Close expired signing links; their agreements go back to ready_for_signature for a new request."""
    expired = 0
    async with db.transaction(Scope.system()) as session:
        for request_id, agreement_id in await signing.overdue(session):
            agreement = await session.get(Agreement, agreement_id, with_for_update=True)
            if not await signing.expire(session, request_id):
                continue  # signed or replaced meanwhile
            expired += 1
            if agreement is not None and agreement.status == A.OUT_FOR_SIGNATURE:
                await _move(session, Actor.system("expiry"), agreement, "expire", {"request_id": str(request_id)})
    return expired


# --- Countersignature and execution --------------------------------------------------------------------------


async def countersign(
    db: Database,
    renderer: Renderer,
    seal: Seal,
    actor: Actor,
    principal: Principal,
    agreement_id: uuid.UUID,
    *,
    before_commit: Callable[[], Awaitable[None]] | None = None,
) -> Agreement:
    """Execute a signed agreement: processor signature, sealed PDF, supersession, all committed at once.

    The PDF is built and sealed before the transaction (it takes a while and needs no lock); the transaction
    then re-checks the state, so of two concurrent countersignatures exactly one commits and the other is 409.
    A crash before the commit leaves the agreement signed with nothing stored; retrying completes it.
    """
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Only the processor's legal team countersigns.")
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await get_agreement(session, agreement_id)
        next_status(agreement, "countersign")
        version = await templates.version_by_id(session, agreement.template_id)
        list_version, listing = await subprocessors.listing_for(session, agreement.subprocessor_list_version)
        in_force = await subprocessors.current_version(session)
        subscriber_signatures = list(await signing.signatures_of(session, agreement.id))
    if in_force is not None and in_force.number > list_version:
        # Executing now would authorize an outdated list, and the Subscriber was never told of the newer one.
        raise Conflict(
            f"The sub-processor list signed (version {list_version}) has been replaced by version "
            f"{in_force.number} since; request a new signature."
        )
    if not subscriber_signatures:
        raise Conflict("The agreement has no Subscriber signature to countersign.")
    signed_sha = subscriber_signatures[-1].document_sha256
    # The executed PDF is built from what the Subscriber signed: if rebuilding that draft no longer gives the
    # same bytes (reference data changed since), sealing would put words in its mouth.
    if (await documents.draft_pdf(renderer, version, agreement, listing)).sha256 != signed_sha:
        raise Conflict("The document changed since it was signed (reference data moved); request a new signature.")
    now = utcnow()
    processor_signature = Signature(
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.id,
        role="processor",
        user_id=principal.user_id,
        name=principal.name,
        email=principal.email,
        title=registry.processor().get("signatory", {}).get("title", "Authorized signatory")
        if principal.email == registry.processor().get("signatory", {}).get("email")
        else "Authorized signatory (Legal)",
        typed_name=principal.name,
        signed_at=now,
        ip=actor.ip,
        user_agent=actor.user_agent,
        consent=True,
        consent_text_sha256=signing.consent_sha256(),
        authority_confirmed=True,
        document_sha256=signed_sha,
    )
    sealed = await documents.executed_pdf(
        seal,
        version,
        agreement,
        [*subscriber_signatures, processor_signature],
        effective_date=now.date(),
        executed_at=now,
        signed_document_sha256=signed_sha,
        subprocessors=listing,
    )
    digest = _sha256(sealed)
    async with db.transaction(Scope.tenant(agreement.tenant_id)) as session:
        agreement = await get_agreement(session, agreement_id, lock=True)
        next_status(agreement, "countersign")
        session.add(processor_signature)
        session.add(
            AgreementDocument(
                agreement_id=agreement.id, tenant_id=agreement.tenant_id, sha256=digest, content=sealed, sealed_at=now
            )
        )
        agreement.executed_at, agreement.effective_date, agreement.sealed_at = now, now.date(), now
        agreement.document_sha256, agreement.subprocessor_list_version = digest, list_version
        await _move(
            session,
            actor,
            agreement,
            "countersign",
            {"document_sha256": digest, "effective_date": now.date().isoformat()},
        )
        previous = (
            (
                await session.execute(
                    select(Agreement)
                    .where(
                        Agreement.tenant_id == agreement.tenant_id,
                        Agreement.status == A.EXECUTED,
                        Agreement.id != agreement.id,
                    )
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        for old in previous:
            old.superseded_by, old.superseded_at = agreement.id, now
            await _move(session, actor, old, "supersede", {"superseded_by": str(agreement.id)})
        await transfers.record_from_dpa(
            session,
            actor,
            tenant_id=agreement.tenant_id,
            agreement_id=agreement.id,
            effective=now.date(),
            subprocessors=list(listing["items"]),
            superseded=[old.id for old in previous],
        )
        contact = (agreement.variables.get("controller") or {}).get("contact_email")
        await subprocessors.notify_pending_changes(session, agreement.tenant_id, list_version, contact)
        if before_commit is not None:
            await before_commit()
    return agreement


async def review_view(db: Database, scope: Scope, agreement_id: uuid.UUID) -> dict[str, Any]:
    """What legal reviews: the custom clauses, and the agreement's text against the standard text."""
    async with db.transaction(scope, write=False) as session:
        agreement = await get_agreement(session, agreement_id)
        version = await templates.version_by_id(session, agreement.template_id)
        _, listing = await subprocessors.listing_for(session, agreement.subprocessor_list_version)
    diff = await anyio.to_thread.run_sync(documents.custom_clause_diff, version, agreement, listing)
    return {
        "agreement_id": agreement.id,
        "status": agreement.status,
        "template": {"key": version.key, "version": version.version, "sha256": version.sha256},
        "custom_clauses": agreement.custom_clauses,
        "review_comment": agreement.review_comment,
        "diff": diff,
    }


async def evidence(session: AsyncSession, agreement_id: uuid.UUID) -> tuple[Agreement, Sequence[Signature]]:
    agreement = await get_agreement(session, agreement_id)
    return agreement, await signing.signatures_of(session, agreement.id)


# --- Verification --------------------------------------------------------------------------------------------


async def verify_document(
    session: AsyncSession, seal: Seal, content: bytes, viewer: Principal | None = None
) -> dict[str, Any]:
    """Is this PDF one of our executed agreements, unchanged? `verified`, `tampered` or `unknown`.

    Verified needs both: the exact bytes on record (looked up across tenants, since a counterparty may hold a
    copy) and a valid seal. The agreement id is only shown to those who may read the agreement.
    """
    digest = _sha256(content)
    query = select(AgreementDocument.agreement_id, AgreementDocument.tenant_id, AgreementDocument.sealed_at).where(
        AgreementDocument.sha256 == digest
    )
    stored = (await session.execute(query)).one_or_none()
    check = await seal.check(content)
    if check.status == ValidationStatus.INVALID:
        return {"status": "tampered", "sealed_at": check.sealed_at, "detail": check.detail}
    if check.status == ValidationStatus.VALID and stored is not None:
        visible = viewer is None or viewer.is_staff or viewer.tenant_id == stored[1]
        return {"status": "verified", "agreement_id": stored[0] if visible else None, "sealed_at": stored[2]}
    if check.status == ValidationStatus.VALID:
        return {"status": "unknown", "detail": "sealed by this service, but not an executed agreement on record"}
    return {"status": "unknown", "detail": check.detail}


async def auto_countersign(db: Database, renderer: Renderer, seal: Seal, email: str, agreement: Agreement) -> Agreement:
    """Countersign at once as the configured legal signatory (DPA_AUTO_COUNTERSIGN_EMAIL), when one is set.

    A failure leaves the agreement signed, for legal to countersign by hand; it never undoes the signature.
    """
    async with db.transaction(Scope.system(), write=False) as session:
        user = await session.scalar(
            select(User).where(User.tenant_id.is_(None), User.email == email.lower(), User.role == Role.LEGAL.value)
        )
    if user is None:
        logger.error(
            "DPA_AUTO_COUNTERSIGN_EMAIL %s is not a legal user: agreement %s waits for legal", email, agreement.id
        )
        return agreement
    principal = Principal(user.id, None, Role.LEGAL, user.email, user.name, api_key_id=uuid.UUID(int=0))
    actor = Actor(user_id=user.id, role=user.role, tenant_id=None, user_agent="dpa auto-countersign")
    try:
        return await countersign(db, renderer, seal, actor, principal, agreement.id)
    except Exception:
        logger.exception(
            "automatic countersignature of agreement %s failed; legal can countersign by hand", agreement.id
        )
        return agreement
