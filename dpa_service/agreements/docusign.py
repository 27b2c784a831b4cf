"""DocuSign as a signature provider: envelopes from the exact PDF the signer reviews, embedded or e-mail signing,
Connect messages, and the evidence kept on completion.

The lifecycle does not care who took the signature: a DocuSign request opens a `SignatureRequest` like the built-in
one, and completion records `Signature` rows and moves the agreement with the same `move` steps.

* Request: one transaction opens the request, stores the PDF (the bytes the built-in signer would show, by SHA-256)
  on a `creating` envelope and queues the envelope's creation as an outbox job. The agreement stays
  `ready_for_signature` until DocuSign has accepted the envelope; then it is `out_for_signature`. A job that keeps
  meeting 429/5xx/timeouts is retried with backoff and then gives up: the request `failed`, with the reason, the
  agreement still `ready_for_signature`, no envelope made.
* What DocuSign reports afterwards (Connect, completion, polling) is `docusign_connect`.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from docusign_esign import (
    DateSigned,
    Document,
    EnvelopeDefinition,
    EventNotification,
    Expirations,
    FullName,
    Notification,
    Recipients,
    RecipientViewRequest,
    Reminders,
    SignHere,
    Tabs,
    Title,
)
from docusign_esign import Signer as DsSigner
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import envelopes, links
from dpa_service.agreements.docusign_client import DocuSignClient, DocuSignRefused, pdf_base64
from dpa_service.agreements.lifecycle import move
from dpa_service.agreements.models import (
    Agreement,
    AgreementStatus,
    DocuSignEnvelope,
    EnvelopePublic,
    EnvelopeStatus,
    RequestStatus,
    SignatureRequest,
    SignatureRequestCreate,
    SignatureRequestPublic,
)
from dpa_service.agreements.services import find
from dpa_service.agreements.signing import PreparedDocument, lock_for_sending
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import Conflict, NotFound
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.settings import DocuSignSettings
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal
from dpa_service.notifications.outbox import JobFailed, enqueue_job, enqueue_many, register_job

logger = logging.getLogger("dpa_service.agreements.docusign")

CREATE_JOB = "docusign.create_envelope"
FAILED_TOPIC = "agreement.signature_request_failed"
# The template's hidden anchors (standard-dpa's signature block): text in the PDF, invisible on paper.
SUBSCRIBER_ANCHORS = {"sign": "[[SIG_SUBSCRIBER]]", "name": "[[NAME_SUBSCRIBER]]", "date": "[[DATE_SUBSCRIBER]]"}
PROCESSOR_ANCHORS = {"sign": "[[SIG_PROCESSOR]]", "name": "[[NAME_PROCESSOR]]", "date": "[[DATE_PROCESSOR]]"}
VOID_JOB, ACTIVE = envelopes.VOID_JOB, envelopes.ACTIVE


@dataclass
class DocuSign:
    """The configured DocuSign account and what the service needs around it (built once at start)."""

    settings: DocuSignSettings
    client: DocuSignClient
    public_base_url: str
    signing_link_days: int
    renderer: Renderer | None = None
    seal: Seal | None = None

    @classmethod
    def configure(cls, settings: DocuSignSettings, public_base_url: str, signing_link_days: int) -> DocuSign:
        return cls(settings, DocuSignClient(settings), public_base_url.rstrip("/"), signing_link_days)


def install(docusign: DocuSign) -> None:
    """Register the outbox jobs (at start, with this process's settings)."""

    async def create(database: Database, payload: dict[str, Any]) -> None:
        await create_envelope(database, docusign, uuid.UUID(payload["envelope"]))

    async def failed(database: Database, payload: dict[str, Any], reason: str) -> None:
        await creation_failed(database, uuid.UUID(payload["envelope"]), reason)

    async def void(database: Database, payload: dict[str, Any]) -> None:
        await docusign.client.void(payload["envelope_id"], payload.get("reason", ""))

    first = timedelta(seconds=docusign.settings.first_retry_seconds)
    register_job(CREATE_JOB, create, on_dead=failed, max_attempts=docusign.settings.create_attempts, first_retry=first)
    register_job(VOID_JOB, void, max_attempts=docusign.settings.create_attempts, first_retry=first)


# --- Request --------------------------------------------------------------------------------------------------


def signing_page(base_url: str, agreement_id: uuid.UUID) -> str:
    """Where an embedded signer starts: the product's page opens DocuSign's view for the session's user."""
    return f"{base_url}/app/agreements/{agreement_id}/docusign/sign"


async def open_request(
    db: Database,
    docusign: DocuSign,
    actor: Actor,
    principal: Principal,
    prepared: PreparedDocument,
    data: SignatureRequestCreate,
) -> SignatureRequestPublic:
    """Open a DocuSign request for the prepared PDF and queue the envelope's creation (one transaction)."""
    async with db.transaction(principal.scope) as session:
        agreement, embedded_for = await lock_for_sending(db, session, principal, prepared, data)
        if await _creating(session, agreement.id):
            raise Conflict("A DocuSign envelope for this agreement is being created; wait for it, or void it.")
        await envelopes.void_active(session, agreement.id, "Replaced by a new signature request")
        request, _token = await links.open_request(  # the token is never handed out: DocuSign signs, not a link
            session,
            tenant_id=agreement.tenant_id,
            agreement_id=agreement.id,
            provider="docusign",
            signer_name=data.signer.name,
            signer_email=data.signer.email,
            signer_title=data.signer.title,
            document_sha256=prepared.sha256,
            requested_by=principal.user_id,
            valid_for=timedelta(days=docusign.signing_link_days),
            embedded_for=embedded_for,
        )
        agreement.subprocessor_list_version = prepared.subprocessor_list_version
        envelope = DocuSignEnvelope(
            tenant_id=agreement.tenant_id,
            agreement_id=agreement.id,
            request_id=request.id,
            embedded=embedded_for is not None,
            client_user_id=str(principal.user_id) if embedded_for else None,
            countersign_in_envelope=docusign.settings.countersign_in_envelope,
            document_pdf=prepared.content,
            document_sha256=prepared.sha256,
        )
        session.add(envelope)
        await session.flush()
        await audit.record(
            session,
            actor,
            "agreement.docusign_requested",
            "agreement",
            agreement.id,
            tenant_id=agreement.tenant_id,
            data={
                "request_id": str(request.id),
                "signer_email": request.signer_email,
                "document_sha256": prepared.sha256,
                "embedded": envelope.embedded,
            },
        )
        await enqueue_job(
            session, CREATE_JOB, agreement.tenant_id, f"{CREATE_JOB}:{envelope.id}", {"envelope": str(envelope.id)}
        )
        return SignatureRequestPublic.model_validate(
            request,
            from_attributes=True,
            update={
                "signing_url": signing_page(docusign.public_base_url, agreement.id) if embedded_for else None,
                "envelope_status": envelope.status,
            },
        )


async def _creating(session: AsyncSession, agreement_id: uuid.UUID) -> bool:
    query = select(col(DocuSignEnvelope.id)).where(
        col(DocuSignEnvelope.agreement_id) == agreement_id, col(DocuSignEnvelope.status) == EnvelopeStatus.CREATING
    )
    return (await session.execute(query.limit(1))).first() is not None


def envelope_definition(
    docusign: DocuSign, envelope: DocuSignEnvelope, request: SignatureRequest, agreement: Agreement
) -> EnvelopeDefinition:
    """The envelope: the exact PDF, the Subscriber's signatory at routing order 1 on the template's anchors, the
    processor's signatory at 2 when it countersigns in DocuSign, reminders and expiry from the signing-link
    settings, and Connect messages (JSON, HMAC-signed) for its events."""
    controller = (agreement.variables.get("controller") or {}).get("legal_name", "the Subscriber")
    signers = [
        DsSigner(
            email=request.signer_email,
            name=request.signer_name,
            recipient_id="1",
            routing_order="1",
            client_user_id=envelope.client_user_id,
            tabs=_tabs(SUBSCRIBER_ANCHORS, request.signer_title),
        )
    ]
    if envelope.countersign_in_envelope:
        signatory = registry.processor().get("signatory", {})
        signers.append(
            DsSigner(
                email=signatory.get("email"),
                name=signatory.get("name"),
                recipient_id="2",
                routing_order="2",
                tabs=_tabs(PROCESSOR_ANCHORS, signatory.get("title", "Authorized signatory")),
            )
        )
    days = docusign.signing_link_days
    return EnvelopeDefinition(
        email_subject=f"Please sign the Data Processing Agreement for {controller}"[:100],
        email_blurb=f"Fingerprint (SHA-256) of the document to sign: {envelope.document_sha256}",
        documents=[
            Document(
                document_base64=pdf_base64(envelope.document_pdf),
                name=f"DPA {agreement.id}",
                file_extension="pdf",
                document_id="1",
            )
        ],
        recipients=Recipients(signers=signers),
        notification=Notification(
            use_account_defaults="false",
            reminders=Reminders(reminder_enabled="true", reminder_delay=str(min(3, days)), reminder_frequency="3"),
            expirations=Expirations(expire_enabled="true", expire_after=str(days), expire_warn=str(min(2, days))),
        ),
        event_notification=EventNotification(
            url=f"{docusign.public_base_url}/webhooks/docusign",
            include_hmac="true",
            require_acknowledgment="true",
            logging_enabled="true",
            delivery_mode="SIM",
            events=[
                "envelope-sent",
                "envelope-delivered",
                "envelope-completed",
                "envelope-declined",
                "envelope-voided",
                "recipient-sent",
                "recipient-delivered",
                "recipient-completed",
                "recipient-declined",
            ],
            event_data={"version": "restv2.1", "format": "json", "includeData": ["recipients"]},
        ),
        custom_fields={"textCustomFields": [{"name": "dpa_request_id", "value": str(request.id), "show": "false"}]},
        status="sent",
    )


def _tabs(anchors: dict[str, str], title: str) -> Tabs:
    def at(anchor: str) -> dict[str, Any]:
        return {
            "anchor_string": anchor,
            "anchor_units": "pixels",
            "anchor_x_offset": "0",
            "anchor_y_offset": "0",
            "anchor_ignore_if_not_present": "false",
        }

    return Tabs(
        sign_here_tabs=[SignHere(**at(anchors["sign"]))],
        full_name_tabs=[FullName(**at(anchors["name"]))],
        date_signed_tabs=[DateSigned(**at(anchors["date"]))],
        # The template has no title anchor: the title goes beside the name, locked to the value requested.
        title_tabs=[Title(**{**at(anchors["name"]), "anchor_x_offset": "220"}, value=title, locked="true")],
    )


async def create_envelope(db: Database, docusign: DocuSign, envelope_row: uuid.UUID) -> None:
    """The outbox job: create the envelope in DocuSign, then the agreement is out for signature.

    DocuSign refusing (a 4xx) fails the job at once; 429/5xx/timeouts raise for the outbox to retry."""
    async with db.transaction(Scope.system(), write=False) as session:
        envelope = await session.get(DocuSignEnvelope, envelope_row)
        if envelope is None or envelope.status != EnvelopeStatus.CREATING:
            return  # done already, or replaced meanwhile
        request = await session.get(SignatureRequest, envelope.request_id)
        agreement = await session.get(Agreement, envelope.agreement_id)
    assert request is not None and agreement is not None
    if request.status != RequestStatus.PENDING:
        return
    try:
        envelope_id = await docusign.client.create_envelope(envelope_definition(docusign, envelope, request, agreement))
    except DocuSignRefused as exc:
        raise JobFailed(str(exc)) from exc
    async with db.transaction(Scope.tenant(envelope.tenant_id)) as session:
        agreement = await find(session, envelope.agreement_id, lock=True)
        envelope = await load_envelope(session, envelope_row, lock=True)
        request = await session.get(SignatureRequest, envelope.request_id, with_for_update=True)
        assert request is not None
        if envelope.status != EnvelopeStatus.CREATING:  # another run got there first: ours is a duplicate
            reason = "A duplicate of the envelope sent for this request"
            await enqueue_job(session, VOID_JOB, envelope.tenant_id, f"{VOID_JOB}:{envelope_id}",
                              {"envelope_id": envelope_id, "reason": reason})  # fmt: skip
            return
        envelope.envelope_id = envelope_id
        if request.status != RequestStatus.PENDING or (
            agreement.status not in (AgreementStatus.READY_FOR_SIGNATURE, AgreementStatus.OUT_FOR_SIGNATURE)
        ):  # replaced or voided while DocuSign was creating it: take it back
            envelope.status = EnvelopeStatus.VOIDED.value
            await enqueue_job(
                session,
                VOID_JOB,
                envelope.tenant_id,
                f"{VOID_JOB}:{envelope_id}",
                {"envelope_id": envelope_id, "reason": "The request was replaced"},
            )
            return
        now = utcnow()
        envelope.status, envelope.sent_at, envelope.status_changed_at = EnvelopeStatus.SENT.value, now, now
        await move(
            session,
            Actor.system("docusign"),
            agreement,
            "send_for_signature",
            {
                "request_id": str(request.id),
                "provider": "docusign",
                "envelope_id": envelope_id,
                "signer_email": request.signer_email,
                "document_sha256": envelope.document_sha256,
                "embedded": envelope.embedded,
            },
        )


async def creation_failed(db: Database, envelope_row: uuid.UUID, reason: str) -> None:
    """The job gave up: the request failed, with the reason; the agreement stays ready for signature."""
    async with db.transaction(Scope.system(), write=False) as session:
        found = await session.get(DocuSignEnvelope, envelope_row)
    if found is None:
        return
    async with db.transaction(Scope.tenant(found.tenant_id)) as session:
        agreement = await find(session, found.agreement_id, lock=True)
        envelope = await load_envelope(session, envelope_row, lock=True)
        if envelope.status != EnvelopeStatus.CREATING:
            return
        request = await session.get(SignatureRequest, envelope.request_id, with_for_update=True)
        now = utcnow()
        envelope.status, envelope.reason, envelope.status_changed_at = EnvelopeStatus.FAILED.value, reason[:1000], now
        if request is not None and request.status == RequestStatus.PENDING:
            request.status, request.closed_at = RequestStatus.FAILED.value, now
        event = await audit.record(
            session,
            Actor.system("docusign"),
            "agreement.docusign_failed",
            "agreement",
            agreement.id,
            tenant_id=agreement.tenant_id,
            data={"request_id": str(envelope.request_id), "reason": reason[:500], "status": agreement.status},
        )
        text = (
            "DocuSign could not create the envelope for your Data Processing Agreement, so nothing was sent for "
            f"signature (the agreement is still ready for signature). Reason: {reason[:300]}\n\n"
            "Send the signature request again, or sign with the built-in signer."
        )
        payload = {
            "agreement_id": str(agreement.id),
            "request_id": str(envelope.request_id),
            "provider": "docusign",
            "reason": reason[:500],
            "subject": "Your DPA could not be sent to DocuSign",
            "text": text,
        }
        await enqueue_many(session, FAILED_TOPIC, [(agreement.tenant_id, f"{FAILED_TOPIC}:{event.id}", payload)])


async def load_envelope(session: AsyncSession, row_id: uuid.UUID, *, lock: bool = False) -> DocuSignEnvelope:
    envelope = await session.get(DocuSignEnvelope, row_id, with_for_update=lock)
    if envelope is None:
        raise NotFound("Envelope not found.")
    return envelope


# --- Embedded signing -----------------------------------------------------------------------------------------


async def recipient_view(
    db: Database, docusign: DocuSign, principal: Principal, agreement_id: uuid.UUID, return_url: str
) -> str:
    """DocuSign's signing view for the calling user, when they are the embedded signer of the agreement's envelope.
    The URL is handed to the browser at once and never stored (it is short-lived and single-use)."""
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        envelope = await _active_envelope(session, agreement.id)
        request = await session.get(SignatureRequest, envelope.request_id) if envelope else None
    if (
        envelope is None
        or request is None
        or not envelope.embedded
        or envelope.client_user_id != str(principal.user_id)
    ):
        raise NotFound("There is no DocuSign envelope for you to sign here.")
    if envelope.envelope_id is None:
        raise Conflict("DocuSign is still preparing the envelope; try again in a moment.")
    view = RecipientViewRequest(
        authentication_method="email",
        client_user_id=envelope.client_user_id,
        recipient_id="1",
        email=request.signer_email,
        user_name=request.signer_name,
        return_url=return_url,
    )
    return await docusign.client.recipient_view(envelope.envelope_id, view)


async def _active_envelope(session: AsyncSession, agreement_id: uuid.UUID) -> DocuSignEnvelope | None:
    query = (
        select(DocuSignEnvelope)
        .where(col(DocuSignEnvelope.agreement_id) == agreement_id, col(DocuSignEnvelope.status).in_(ACTIVE))
        .order_by(col(DocuSignEnvelope.created_at).desc())
    )
    return (await session.execute(query.limit(1))).scalars().first()


# --- Reading ------------------------------------------------------------------------------------------------------


async def envelopes_of(db: Database, principal: Principal, agreement_id: uuid.UUID) -> list[EnvelopePublic]:
    """The agreement's DocuSign envelopes with their recipient events and audit trail (another tenant's: 404)."""
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        return await envelopes.envelopes_in(session, agreement.id)
