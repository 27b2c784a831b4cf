"""Execution: the processor's countersignature, the sealed PDF, supersession, and the lifecycle event.

The PDF is built and sealed before the write transaction (it takes a while and needs no lock); the transaction then
re-checks the state, so of two concurrent countersignatures exactly one commits and the other is 409. Executing
publishes `AgreementExecuted` in the same transaction: the sub-processor authorization, the transfers it implies
and whatever else reacts commit with it, or nothing does (the agreement stays signed, nothing stored).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import documents, links
from dpa_service.agreements.lifecycle import move, next_status
from dpa_service.agreements.models import (
    Agreement,
    AgreementDocument,
    AgreementPublic,
    AgreementStatus,
    Signature,
    SignatureMethod,
    SignatureRequest,
)
from dpa_service.agreements.services import find, public, sha256
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import AgreementExecuted, AgreementSuperseded, checks, reactions
from dpa_service.core.exceptions import Conflict, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal
from dpa_service.subprocessors import services as subprocessors
from dpa_service.template_versions import services as templates
from dpa_service.users import services as users

logger = logging.getLogger("dpa_service.agreements")


def standing_authority(holder: str) -> str:
    """The default standing authority an automatic countersignature is applied under: the processor's, held by the
    configured legal signatory, to execute its standard DPA as the Subscriber signed it."""
    return (
        f"the standing authority of {registry.processor()['legal_name']}, held by {holder}, to execute its standard "
        "Data Processing Agreement as signed by the Subscriber"
    )


def _processor_title(email: str) -> str:
    signatory = registry.processor().get("signatory", {})
    if email == signatory.get("email"):
        return str(signatory.get("title", "Authorized signatory"))
    return "Authorized signatory (Legal)"


@dataclass(frozen=True)
class _Countersignable:
    """What executing an agreement reads first, outside the write transaction."""

    agreement: Agreement
    version: templates.TemplateVersion
    list_version: int
    listing: dict[str, Any]
    subscriber_signatures: list[Signature]
    chain_head: tuple[int, str]
    verified: users.Verification | None
    signing_request: SignatureRequest | None


def check_queue(agreement: Agreement, queued_at: datetime | None) -> None:
    """A countersignature queued for the worker (`deferred_execution`) is the one that executes: any other is 409
    until it has run or failed. `queued_at`: the time of the queued countersignature this call executes, if any."""
    waiting = agreement.execution_queued_at
    if waiting is not None and (queued_at is None or as_utc(waiting) != as_utc(queued_at)):
        raise Conflict(
            f"A countersignature of this agreement was queued at {rfc3339(waiting)} and is being executed; it "
            "needs no second one."
        )


async def _read(
    db: Database, principal: Principal, agreement_id: uuid.UUID, queued_at: datetime | None = None
) -> _Countersignable:
    """Everything a countersignature needs, and every reason to refuse it before anything is built (403, 409)."""
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Only the processor's legal team countersigns.")
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        next_status(agreement, "countersign")
        check_queue(agreement, queued_at)
        # Asked before the PDF is built and sealed, and again in the write transaction: `core.events.checks`
        # (a tenant in exit gets no new executed DPA, whenever the Subscriber signed).
        await checks.before_signing(db, principal.scope, agreement.tenant_id)
        version = await templates.version_by_id(db, principal.scope, agreement.template_id)
        list_version, listing = await subprocessors.listing_for(
            db, principal.scope, agreement.subprocessor_list_version
        )
        in_force = await subprocessors.current_version_number(db, principal.scope)
        subscriber_signatures = list(await links.signatures_of(session, agreement.id))
        # The certificate carries the tenant's audit chain head as it stands before the execution event (which
        # records this PDF's hash, so it cannot be in the PDF itself): the sealed PDF anchors the chain up to here.
        chain_head = await audit.head_of(session, agreement.tenant_id)
        # The evidence says how the countersigner's address was verified, as it does for the Subscriber's signer.
        verified = await users.verification_of(db, principal.scope, principal.user_id)
        request_id = subscriber_signatures[-1].request_id if subscriber_signatures else None
        signing_request = await session.get(SignatureRequest, request_id) if request_id else None
    if in_force is not None and in_force > list_version:
        # Executing now would authorize an outdated list, and the Subscriber was never told of the newer one.
        raise Conflict(
            f"The sub-processor list signed (version {list_version}) has been replaced by version "
            f"{in_force} since; request a new signature."
        )
    if not subscriber_signatures:
        raise Conflict("The agreement has no Subscriber signature to countersign.")
    return _Countersignable(
        agreement, version, list_version, listing, subscriber_signatures, chain_head, verified, signing_request
    )


async def countersignable(db: Database, principal: Principal, agreement_id: uuid.UUID) -> uuid.UUID:
    """Raise what `countersign` would refuse with before building anything (a queued countersignature asks);
    the agreement's tenant otherwise."""
    return (await _read(db, principal, agreement_id)).agreement.tenant_id


async def countersign(
    db: Database,
    renderer: Renderer,
    seal: Seal,
    actor: Actor,
    principal: Principal,
    agreement_id: uuid.UUID,
    *,
    before_commit: Callable[[], Awaitable[None]] | None = None,
    base_url: str = "",
    automatic_authority: str | None = None,
    processor: Signature | None = None,
    countersigned_at: datetime | None = None,
) -> AgreementPublic:
    """Execute a signed agreement: processor signature, sealed PDF, supersession, reactions, all committed at once.

    A crash before the commit leaves the agreement signed with nothing stored; retrying completes it. The signer
    and the tenant's owners and admins are e-mailed where to download the executed PDF (`base_url` + the
    agreement's page), through the outbox in the same transaction, so the notice goes out exactly when it executes.
    `countersigned_at`: when legal countersigned, if earlier than now (a queued countersignature,
    `deferred_execution`); the effective date is that day.
    """
    read = await _read(db, principal, agreement_id, countersigned_at)
    agreement, version, listing, list_version = read.agreement, read.version, read.listing, read.list_version
    subscriber_signatures, verified, signing_request = read.subscriber_signatures, read.verified, read.signing_request
    signed_sha = subscriber_signatures[-1].document_sha256
    # The executed PDF is built from what the Subscriber signed: if rebuilding that draft no longer gives the
    # same bytes (reference data changed since), sealing would put words in its mouth.
    signed_draft = await documents.draft_pdf(renderer, version, agreement, listing)
    if signed_draft.sha256 != signed_sha:
        raise Conflict("The document changed since it was signed (reference data moved); request a new signature.")
    requested_by = (
        await users.tenant_user_label(db, agreement.tenant_id, signing_request.requested_by)
        if signing_request is not None
        else None
    )
    executed_at = utcnow()
    now = countersigned_at or executed_at
    # `processor`: the countersignature taken elsewhere (DocuSign, routing order 2), recorded as it was given.
    processor_signature = processor or Signature(
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.id,
        role="processor",
        user_id=principal.user_id,
        name=principal.name,
        email=principal.email,
        title=_processor_title(principal.email),
        # The countersignature is legal's action in the product, signed in as themselves: no name was typed, no
        # consent text shown and no authority confirmed on a form (stored "" and False, read back as null).
        typed_name="",
        signed_at=now,
        ip=actor.ip,
        user_agent=actor.user_agent,
        consent=False,
        consent_text_sha256="",
        authority_confirmed=False,
        document_sha256=signed_sha,
        email_verified_at=verified.at if verified else None,
        email_verification=verified.method.value if verified else None,
        method=SignatureMethod.ACTION.value,
    )
    if automatic_authority is not None:
        # Nobody typed a name, consented or confirmed authority: the service applied the countersignature under a
        # standing authority, which the evidence names. The stored columns are NOT NULL: "" and False say "none".
        processor_signature.typed_name, processor_signature.consent_text_sha256 = "", ""
        processor_signature.consent = processor_signature.authority_confirmed = False
        processor_signature.method, processor_signature.authority = SignatureMethod.AUTOMATIC.value, automatic_authority
        processor_signature.ip = None
    sealed = await documents.executed_pdf(
        renderer,
        seal,
        version,
        agreement,
        [*subscriber_signatures, processor_signature],
        effective_date=now.date(),
        executed_at=executed_at,
        signed_document_sha256=signed_sha,
        subprocessors=listing,
        chain_head=read.chain_head,
        signed_draft=signed_draft.content,
        request=signing_request,
        requested_by=requested_by,
        verify_url=f"{base_url}/verify",
    )
    async with db.transaction(Scope.tenant(agreement.tenant_id)) as session:
        agreement = await find(session, agreement_id, lock=True)
        next_status(agreement, "countersign")
        check_queue(agreement, countersigned_at)
        await checks.before_signing(db, Scope.tenant(agreement.tenant_id), agreement.tenant_id)
        digest = sha256(sealed)
        session.add(processor_signature)
        session.add(
            AgreementDocument(
                agreement_id=agreement.id,
                tenant_id=agreement.tenant_id,
                sha256=digest,
                content=sealed,
                sealed_at=executed_at,
            )
        )
        agreement.executed_at, agreement.effective_date, agreement.sealed_at = executed_at, now.date(), executed_at
        agreement.execution_queued_at = agreement.execution_error = None  # a queued one has run, or an earlier failed
        agreement.document_sha256, agreement.subprocessor_list_version = digest, list_version
        await move(
            session,
            actor,
            agreement,
            "countersign",
            {"document_sha256": digest, "effective_date": now.date().isoformat()},
            email=executed_notice(agreement, subscriber_signatures[-1], base_url),
        )
        superseded = await _supersede_previous(db, session, actor, agreement)
        await reactions.publish(
            db,
            AgreementExecuted(
                actor=actor,
                tenant_id=agreement.tenant_id,
                agreement_id=agreement.id,
                template_id=agreement.template_id,
                executed_at=executed_at,
                effective_date=now.date(),
                subprocessor_list_version=list_version,
                subprocessors=tuple(listing["items"]),
                superseded=superseded,
                contact_email=(agreement.variables.get("controller") or {}).get("contact_email"),
                controller_country=(agreement.variables.get("controller") or {}).get("country"),
                mechanisms=tuple((agreement.variables.get("transfers") or {}).get("mechanisms") or ()),
            ),
        )
        if before_commit is not None:
            await before_commit()
        return public(agreement)


def executed_notice(agreement: Agreement, signer: Signature, base_url: str) -> dict[str, Any]:
    """The e-mail that keeps the signing page's promise: the executed agreement, where to get it, its SHA-256."""
    controller = (agreement.variables.get("controller") or {}).get("legal_name", "your organisation")
    page = f"{base_url}/app/agreements/{agreement.id}"
    text = (
        f"The Data Processing Agreement between {controller} and {registry.processor()['legal_name']} is executed: "
        f"both parties have signed it and the processor has sealed it. It is effective from "
        f"{agreement.effective_date}.\n\n"
        f"Download the executed PDF and its certificate of completion (sign in with this e-mail address):\n"
        f"{page}\n\n"
        f"SHA-256 of the executed PDF: {agreement.document_sha256}\n"
        f"Anyone holding a copy can check it at {base_url}/verify.\n\n"
        f"Signed for {controller} by {signer.name} ({signer.email}).\n"
        f"Reference: {agreement.id}"
    )
    return {"subject": "Your Data Processing Agreement is executed", "text": text, "email_also": [signer.email]}


async def _supersede_previous(
    db: Database, session: AsyncSession, actor: Actor, agreement: Agreement
) -> tuple[uuid.UUID, ...]:
    """Executing a new DPA supersedes the tenant's previous executed one."""
    previous = (
        await session.execute(
            select(Agreement)
            .where(
                col(Agreement.tenant_id) == agreement.tenant_id,
                col(Agreement.status) == AgreementStatus.EXECUTED,
                col(Agreement.id) != agreement.id,
            )
            .with_for_update()
        )
    ).scalars()
    superseded = []
    for old in list(previous):
        old.superseded_by, old.superseded_at = agreement.id, agreement.executed_at
        await move(session, actor, old, "supersede", {"superseded_by": str(agreement.id)})
        await reactions.publish(db, AgreementSuperseded(actor, old.tenant_id, old.id, agreement.id))
        superseded.append(old.id)
    return tuple(superseded)


async def auto_countersign(
    db: Database,
    renderer: Renderer,
    seal: Seal,
    email: str | None,
    agreement: AgreementPublic,
    *,
    base_url: str = "",
    authority: str | None = None,
) -> AgreementPublic:
    """Countersign at once as the configured legal signatory (DPA_AUTO_COUNTERSIGN_EMAIL), when one is set, under the
    standing authority DPA_AUTO_COUNTERSIGN_AUTHORITY names (else `standing_authority`): the evidence says so, with
    no typed name, consent or authority confirmation, which nobody gave.

    A failure leaves the agreement signed, for legal to countersign by hand; it never undoes the signature.
    """
    if not email:
        return agreement
    signer = await users.staff_member(db, email, Role.LEGAL)
    if signer is None:
        logger.error(
            "DPA_AUTO_COUNTERSIGN_EMAIL %s is not a legal user: agreement %s waits for legal", email, agreement.id
        )
        return agreement
    principal = Principal(signer.id, None, Role.LEGAL, signer.email, signer.name, api_key_id=uuid.UUID(int=0))
    actor = Actor(user_id=signer.id, role=signer.role.value, tenant_id=None, user_agent="dpa auto-countersign")
    try:
        return await countersign(
            db, renderer, seal, actor, principal, agreement.id, base_url=base_url,
            automatic_authority=authority or standing_authority(signer.name),
        )  # fmt: skip
    except Exception:
        logger.exception(
            "automatic countersignature of agreement %s failed; legal can countersign by hand", agreement.id
        )
        return agreement
