"""DocuSign's side of a request after it is sent: Connect messages, completion and the polling fallback.

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

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import execution
from dpa_service.agreements.docusign import DocuSign, load_envelope
from dpa_service.agreements.lifecycle import move
from dpa_service.agreements.models import (
    ENVELOPE_RANK,
    Agreement,
    AgreementStatus,
    DocuSignEnvelope,
    DocuSignEvent,
    EmailVerification,
    EnvelopeStatus,
    RequestStatus,
    Signature,
    SignatureMethod,
    SignatureRequest,
)
from dpa_service.agreements.services import find, sha256
from dpa_service.core import registry
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import AuthenticationError, InvalidInput
from dpa_service.core.identity import Actor, Principal, Role

logger = logging.getLogger("dpa_service.agreements.docusign")
POLL_EVERY = timedelta(minutes=15)

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
                    col(DocuSignEnvelope.id),
                    col(DocuSignEnvelope.tenant_id),
                    col(DocuSignEnvelope.agreement_id),
                    col(DocuSignEnvelope.status),
                    col(DocuSignEnvelope.last_message_at),
                ).where(col(DocuSignEnvelope.envelope_id) == event.envelope_id)
            )
        ).first()
    if found is None:
        logger.warning(
            "DocuSign Connect message for envelope %s, which this service never created: ignored", event.envelope_id
        )
        return False
    row_id, tenant_id, agreement_id, seen_status, heard = found
    completed = False
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        if not await _record_once(session, row_id, tenant_id, event, source):
            return False  # a replay: applied before
        new = event.status
        if new is None or ENVELOPE_RANK[new] <= ENVELOPE_RANK[seen_status]:
            # A recipient event, or an old status arriving late: recorded, nothing moves back, no lock waited for.
            if source == "connect" and heard is None:
                await session.execute(
                    update(DocuSignEnvelope)
                    .where(col(DocuSignEnvelope.id) == row_id, col(DocuSignEnvelope.last_message_at).is_(None))
                    .values(last_message_at=utcnow())
                )
            return True
        agreement = await find(session, agreement_id, lock=True)  # locks: the agreement, then its envelope
        envelope = await load_envelope(session, row_id, lock=True)
        if source == "connect":
            envelope.last_message_at = utcnow()
        if ENVELOPE_RANK[new] <= ENVELOPE_RANK[envelope.status]:
            return True  # moved meanwhile
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
        envelope = await load_envelope(session, row_id)
    if envelope.status != EnvelopeStatus.COMPLETED or envelope.combined_sha256 or envelope.envelope_id is None:
        return
    combined = await docusign.client.document(envelope.envelope_id, "combined")
    certificate = await docusign.client.document(envelope.envelope_id, "certificate")
    trail = await docusign.client.audit_events(envelope.envelope_id)
    state = await docusign.client.envelope_state(envelope.envelope_id)
    processor: Signature | None = None
    async with db.transaction(Scope.tenant(envelope.tenant_id)) as session:
        agreement = await find(session, envelope.agreement_id, lock=True)
        envelope = await load_envelope(session, row_id, lock=True)
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
    """The evidence of a DocuSign signature, in the built-in shape, saying no more than happened: DocuSign had the
    signer accept its own disclosure (ERSD, on its certificate of completion, stored with its SHA-256 beside the
    envelope), so `consent` is true; our consent text and authority confirmation were never shown (stored "" and
    False, read back as null: `SignaturePublic.of`)."""
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
        consent_text_sha256="",
        authority_confirmed=False,
        method=SignatureMethod.DOCUSIGN.value,
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
                row = await load_envelope(session, envelope.id, lock=True)
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
