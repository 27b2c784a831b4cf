"""DocuSign as a signature provider: envelopes from the exact PDF the signer reviews, embedded or e-mail signing,
Connect messages, and the evidence kept on completion.

The lifecycle does not care who took the signature: a DocuSign request opens a `SignatureRequest` like the built-in
one, and completion records `Signature` rows and moves the agreement with the same `move` steps.

* Request: one transaction opens the request, stores the PDF (the bytes the built-in signer would show, by SHA-256)
  on a `creating` envelope and queues the envelope's creation as an outbox job. The agreement stays
  `ready_for_signature` until DocuSign has accepted the envelope; then it is `out_for_signature`. A job that keeps
  meeting 429/5xx/timeouts is retried with backoff and then gives up: the request `failed`, with the reason, the
  agreement still `ready_for_signature`, no envelope made.
* Connect (`POST /webhooks/docusign`): the HMAC is checked on the raw body before anything is parsed. Each message
  is stored once (its key: the event, envelope, recipient and time): a replay changes nothing. Statuses only move
  forward (`ENVELOPE_RANK`); once an envelope ended (completed, declined, voided) nothing moves it again, so a late
  `completed` never revives a declined request. Only `completed` makes the agreement `signed` (or `executed`, when
  the processor signed in the envelope). A message naming an envelope the service never created is logged and
  ignored: it is never attached to a tenant.
* Completion: the combined document and the certificate of completion are downloaded and stored with their
  SHA-256, with DocuSign's audit events; then the usual execution seals the executed PDF.
* Polling (housekeeping) only for envelopes no Connect message ever reached, at most once per 15 minutes each.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import envelopes, execution, links
from dpa_service.agreements.docusign_client import DocuSignClient, DocuSignRefused, pdf_base64
from dpa_service.agreements.lifecycle import move, next_status
from dpa_service.agreements.models import (
    ENVELOPE_RANK,
    Agreement,
    AgreementStatus,
    DocuSignEnvelope,
    DocuSignEvent,
    EmailVerification,
    EnvelopePublic,
    EnvelopeStatus,
    RequestStatus,
    Signature,
    SignatureRequest,
    SignatureRequestCreate,
    SignatureRequestPublic,
)
from dpa_service.agreements.services import find, sha256
from dpa_service.agreements.signing import PreparedDocument
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import checks
from dpa_service.core.exceptions import AuthenticationError, Conflict, InvalidInput, NotFound
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.settings import DocuSignSettings
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal
from dpa_service.notifications.outbox import JobFailed, enqueue_job, enqueue_many, register_job
from dpa_service.users import services as users

logger = logging.getLogger("dpa_service.agreements.docusign")

CREATE_JOB = "docusign.create_envelope"
FAILED_TOPIC = "agreement.signature_request_failed"
POLL_EVERY = timedelta(minutes=15)
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
        agreement = await find(session, prepared.agreement_id, lock=True)
        next_status(agreement, "send_for_signature")
        await checks.before_signing(db, principal.scope, agreement.tenant_id)
        if agreement.updated_at != prepared.updated_at:
            raise Conflict("The agreement changed while its document was being prepared; send the request again.")
        if await _creating(session, agreement.id):
            raise Conflict("A DocuSign envelope for this agreement is being created; wait for it, or void it.")
        embedded_for = None
        if data.signer.email.lower() == principal.email.lower():
            verified = await users.verification_of(db, principal.scope, principal.user_id)
            embedded_for = (verified.at, verified.method.value) if verified else None
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
        envelope = await _envelope(session, envelope_row, lock=True)
        request = await session.get(SignatureRequest, envelope.request_id, with_for_update=True)
        assert request is not None
        envelope.envelope_id = envelope_id
        if (
            envelope.status != EnvelopeStatus.CREATING
            or request.status != RequestStatus.PENDING
            or (agreement.status not in (AgreementStatus.READY_FOR_SIGNATURE, AgreementStatus.OUT_FOR_SIGNATURE))
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
        envelope = await _envelope(session, envelope_row, lock=True)
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


async def _envelope(session: AsyncSession, row_id: uuid.UUID, *, lock: bool = False) -> DocuSignEnvelope:
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


# --- Connect ----------------------------------------------------------------------------------------------------


def verify_connect(keys: tuple[bytes, ...], body: bytes, headers: Mapping[str, str]) -> None:
    """Raise AuthenticationError unless one `X-DocuSign-Signature-N` is the base64 HMAC-SHA256 of the raw body
    under one of the configured keys (several keys: rotation). Constant-time comparisons, nothing parsed."""
    given = [
        value.strip().encode() for name, value in headers.items() if name.lower().startswith("x-docusign-signature-")
    ]
    matched = False
    for key in keys:
        expected = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest())
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise AuthenticationError("The DocuSign Connect signature is missing or does not match.")


@dataclass(frozen=True)
class ConnectEvent:
    envelope_id: str
    event: str
    status: str | None
    occurred_at: datetime | None
    recipient_email: str | None
    recipient_status: str | None
    reason: str | None
    recipients: list[dict[str, Any]]

    @property
    def key(self) -> str:
        at = self.occurred_at.isoformat() if self.occurred_at else ""
        raw = f"{self.envelope_id}|{self.event}|{self.recipient_email or ''}|{self.recipient_status or ''}|{at}"
        return hashlib.sha256(raw.encode()).hexdigest()


def parse_connect(body: bytes) -> ConnectEvent:
    """A Connect JSON (SIM) message: `{event, generatedDateTime, data: {envelopeId, recipientId?, envelopeSummary}}`."""
    try:
        message = json.loads(body)
        data = message["data"]
        envelope_id = str(data["envelopeId"])
        event = str(message["event"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput.field("data.envelopeId", "is not a DocuSign Connect JSON message") from exc
    summary = data.get("envelopeSummary") or {}
    status = summary.get("status") or (event.removeprefix("envelope-") if event.startswith("envelope-") else None)
    signers = list((summary.get("recipients") or {}).get("signers") or [])
    recipient = next((s for s in signers if str(s.get("recipientId")) == str(data.get("recipientId"))), None)
    reason = summary.get("voidedReason") or next(
        (s.get("declinedReason") for s in signers if s.get("declinedReason")), None
    )
    return ConnectEvent(
        envelope_id=envelope_id,
        event=event[:100],
        status=status if status in ENVELOPE_RANK else None,
        occurred_at=_time(message.get("generatedDateTime")),
        recipient_email=(recipient or {}).get("email") if event.startswith("recipient-") else None,
        recipient_status=(recipient or {}).get("status") if event.startswith("recipient-") else None,
        reason=str(reason)[:1000] if reason else None,
        recipients=signers,
    )


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


async def receive_connect(db: Database, docusign: DocuSign, body: bytes, headers: Mapping[str, str]) -> bool:
    """Verify, then apply a Connect message; True if it changed something. Unknown envelopes are ignored."""
    keys = tuple(k.get_secret_value().encode() for k in docusign.settings.connect_hmac_keys)
    verify_connect(keys, body, headers)
    return await apply_event(db, docusign, parse_connect(body), source="connect")


async def apply_event(db: Database, docusign: DocuSign, event: ConnectEvent, *, source: str) -> bool:
    async with db.transaction(Scope.system(), write=False) as session:
        found = (
            await session.execute(
                select(
                    col(DocuSignEnvelope.id), col(DocuSignEnvelope.tenant_id), col(DocuSignEnvelope.agreement_id)
                ).where(col(DocuSignEnvelope.envelope_id) == event.envelope_id)
            )
        ).first()
    if found is None:
        logger.warning(
            "DocuSign Connect message for envelope %s, which this service never created: ignored", event.envelope_id
        )
        return False
    row_id, tenant_id, agreement_id = found
    completed = False
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        if not await _record_once(session, row_id, tenant_id, event, source):
            return False  # a replay: applied before
        agreement = await find(session, agreement_id, lock=True)
        envelope = await _envelope(session, row_id, lock=True)
        envelope.last_message_at = utcnow() if source == "connect" else envelope.last_message_at
        new = event.status
        if new is None or ENVELOPE_RANK[new] <= ENVELOPE_RANK[envelope.status]:
            return True  # a recipient event, or an old status arriving late: recorded, nothing moves back
        envelope.status, envelope.status_changed_at = new, event.occurred_at or utcnow()
        if new in (EnvelopeStatus.DECLINED, EnvelopeStatus.VOIDED):
            await _end_request(session, agreement, envelope, new, event.reason)
        completed = new == EnvelopeStatus.COMPLETED
    if completed:
        await complete(db, docusign, row_id)
    return True


async def _record_once(
    session: AsyncSession, row_id: uuid.UUID, tenant_id: uuid.UUID, event: ConnectEvent, source: str
) -> bool:
    row = {
        "id": uuid.uuid4(),
        "tenant_id": tenant_id,
        "envelope_row_id": row_id,
        "key": event.key,
        "event": event.event,
        "source": source,
        "recipient_email": event.recipient_email,
        "recipient_status": event.recipient_status,
        "occurred_at": event.occurred_at,
        "received_at": utcnow(),
    }
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert(DocuSignEvent).values(row).on_conflict_do_nothing(index_elements=["key"])
    result = await session.execute(statement.returning(col(DocuSignEvent.id)))
    return result.first() is not None


async def _end_request(
    session: AsyncSession, agreement: Agreement, envelope: DocuSignEnvelope, status: str, reason: str | None
) -> None:
    envelope.reason = reason or envelope.reason
    request = await session.get(SignatureRequest, envelope.request_id, with_for_update=True)
    if request is None or request.status != RequestStatus.PENDING:
        return
    request.status = RequestStatus.DECLINED.value if status == EnvelopeStatus.DECLINED else RequestStatus.VOIDED.value
    request.closed_at = utcnow()
    if agreement.status == AgreementStatus.OUT_FOR_SIGNATURE:
        await move(
            session,
            Actor.system("docusign"),
            agreement,
            "signature_declined",
            {
                "request_id": str(request.id),
                "envelope_id": envelope.envelope_id,
                "envelope_status": status,
                "reason": reason,
            },
        )


# --- Completion -------------------------------------------------------------------------------------------------


async def complete(db: Database, docusign: DocuSign, row_id: uuid.UUID) -> None:
    """The envelope completed: keep DocuSign's documents and audit trail, record the signatures, sign (and, when
    DocuSign carried the countersignature, execute). A failed download leaves the envelope `completed` without
    documents; the housekeeping poll completes it later."""
    async with db.transaction(Scope.system(), write=False) as session:
        envelope = await _envelope(session, row_id)
    if envelope.status != EnvelopeStatus.COMPLETED or envelope.combined_sha256 or envelope.envelope_id is None:
        return
    combined = await docusign.client.document(envelope.envelope_id, "combined")
    certificate = await docusign.client.document(envelope.envelope_id, "certificate")
    trail = await docusign.client.audit_events(envelope.envelope_id)
    state = await docusign.client.envelope_state(envelope.envelope_id)
    processor: Signature | None = None
    async with db.transaction(Scope.tenant(envelope.tenant_id)) as session:
        agreement = await find(session, envelope.agreement_id, lock=True)
        envelope = await _envelope(session, row_id, lock=True)
        if envelope.combined_sha256:
            return
        request = await session.get(SignatureRequest, envelope.request_id, with_for_update=True)
        assert request is not None
        envelope.combined_pdf, envelope.combined_sha256 = combined, sha256(combined)
        envelope.certificate_pdf, envelope.certificate_sha256 = certificate, sha256(certificate)
        envelope.audit_events, envelope.completed_at = trail, utcnow()
        if request.status != RequestStatus.PENDING or agreement.status != AgreementStatus.OUT_FOR_SIGNATURE:
            logger.warning(
                "envelope %s completed after its request ended: documents kept, agreement unchanged",
                envelope.envelope_id,
            )
            return
        signers = {str(s.get("recipientId")): s for s in state.recipients}
        subscriber = _signature(agreement, request, envelope, signers.get("1"), "subscriber")
        session.add(subscriber)
        request.status, request.closed_at = RequestStatus.SIGNED.value, utcnow()
        agreement.signed_at = subscriber.signed_at
        signer = Actor(user_id=None, role="signer", tenant_id=agreement.tenant_id, user_agent="DocuSign")
        await move(
            session,
            signer,
            agreement,
            "sign",
            {
                "provider": "docusign",
                "envelope_id": envelope.envelope_id,
                "signer_email": request.signer_email,
                "document_sha256": request.document_sha256,
                "combined_sha256": envelope.combined_sha256,
                "certificate_sha256": envelope.certificate_sha256,
            },
        )
        if envelope.countersign_in_envelope:
            processor = _signature(agreement, request, envelope, signers.get("2"), "processor")
    if processor is not None and docusign.renderer is not None and docusign.seal is not None:
        await _execute(db, docusign, agreement.id, processor)


def _signature(
    agreement: Agreement,
    request: SignatureRequest,
    envelope: DocuSignEnvelope,
    recipient: dict[str, Any] | None,
    role: str,
) -> Signature:
    """The evidence of a DocuSign signature, in the built-in shape. DocuSign showed its own consent disclosure
    (ERSD), recorded on its certificate of completion: `consent_text_sha256` is that certificate's SHA-256."""
    recipient = recipient or {}
    signatory = registry.processor().get("signatory", {}) if role == "processor" else {}
    signed_at = _time(recipient.get("signedDateTime")) or utcnow()
    name = signatory.get("name") or request.signer_name
    return Signature(
        tenant_id=agreement.tenant_id,
        agreement_id=agreement.id,
        request_id=request.id if role == "subscriber" else None,
        role=role,
        name=name,
        email=(signatory.get("email") or request.signer_email).lower(),
        title=signatory.get("title") or request.signer_title,
        typed_name=str(recipient.get("name") or name)[:200],
        signed_at=signed_at,
        ip=(str(recipient["ipAddress"])[:64] if recipient.get("ipAddress") else None),
        user_agent="DocuSign",
        consent=True,
        consent_text_sha256=envelope.certificate_sha256 or "",
        authority_confirmed=True,
        document_sha256=envelope.document_sha256,
        email_verified_at=signed_at,
        email_verification=EmailVerification.DOCUSIGN.value
        if not (role == "subscriber" and request.signer_email_verification)
        else request.signer_email_verification,
        provider="docusign",
    )


async def _execute(db: Database, docusign: DocuSign, agreement_id: uuid.UUID, processor: Signature) -> None:
    """The processor signed in the envelope: execute and seal at once, as its countersignature."""
    assert docusign.renderer is not None and docusign.seal is not None
    principal = Principal(uuid.UUID(int=0), None, Role.LEGAL, processor.email, processor.name, uuid.UUID(int=0))
    actor = Actor(user_id=None, role="signer", tenant_id=None, user_agent="DocuSign (processor signatory)")
    try:
        await execution.countersign(
            db,
            docusign.renderer,
            docusign.seal,
            actor,
            principal,
            agreement_id,
            base_url=docusign.public_base_url,
            processor=processor,
        )
    except Exception:  # the agreement stays signed, for legal to countersign by hand
        logger.exception("executing agreement %s after its DocuSign completion failed", agreement_id)


# --- Polling fallback -------------------------------------------------------------------------------------------


async def poll_silent(db: Database, docusign: DocuSign, *, now: datetime | None = None, limit: int = 50) -> int:
    """Ask DocuSign about envelopes no Connect message ever reached (at most once per 15 minutes each), and finish
    completions whose documents could not be fetched. Returns how many envelopes were asked about."""
    now = now or utcnow()
    quiet = now - POLL_EVERY
    query = (
        select(DocuSignEnvelope)
        .where(
            col(DocuSignEnvelope.envelope_id).is_not(None),
            (
                col(DocuSignEnvelope.status).in_([EnvelopeStatus.SENT.value, EnvelopeStatus.DELIVERED.value])
                & col(DocuSignEnvelope.last_message_at).is_(None)
                & (col(DocuSignEnvelope.sent_at) <= quiet)
                & (col(DocuSignEnvelope.last_polled_at).is_(None) | (col(DocuSignEnvelope.last_polled_at) <= quiet))
            )
            | (
                (col(DocuSignEnvelope.status) == EnvelopeStatus.COMPLETED.value)
                & col(DocuSignEnvelope.combined_sha256).is_(None)
            ),
        )
        .limit(limit)
    )
    async with db.transaction(Scope.system(), write=False) as session:
        envelopes = list((await session.execute(query)).scalars())
    for envelope in envelopes:
        assert envelope.envelope_id is not None
        try:
            if envelope.status == EnvelopeStatus.COMPLETED:
                await complete(db, docusign, envelope.id)
                continue
            state = await docusign.client.envelope_state(envelope.envelope_id)
            async with db.transaction(Scope.tenant(envelope.tenant_id)) as session:
                row = await _envelope(session, envelope.id, lock=True)
                row.last_polled_at = now
            event = ConnectEvent(
                envelope.envelope_id,
                f"envelope-{state.status}",
                state.status if state.status in ENVELOPE_RANK else None,
                _time(state.status_changed_at),
                None,
                None,
                None,
                state.recipients,
            )
            await apply_event(db, docusign, event, source="poll")
        except Exception:
            logger.exception("polling DocuSign envelope %s failed; the next round retries", envelope.envelope_id)
    return len(envelopes)


# --- Reading ------------------------------------------------------------------------------------------------------


async def envelopes_of(db: Database, principal: Principal, agreement_id: uuid.UUID) -> list[EnvelopePublic]:
    """The agreement's DocuSign envelopes with their recipient events and audit trail (another tenant's: 404)."""
    async with db.transaction(principal.scope, write=False) as session:
        agreement = await find(session, agreement_id)
        return await envelopes.envelopes_in(session, agreement.id)
