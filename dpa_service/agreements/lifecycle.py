"""The DPA lifecycle: one state machine, checked in one place; every step audited.

draft ──submit──▶ ready_for_signature            (no custom clauses)
draft ──submit──▶ in_legal_review ──approve──▶ ready_for_signature
                  in_legal_review ──request_changes──▶ changes_requested ──submit──▶ …
ready_for_signature ──send──▶ out_for_signature ──sign──▶ signed ──countersign──▶ executed
out_for_signature ──send──▶ out_for_signature     (a resend voids the previous link)
out_for_signature ──expire──▶ ready_for_signature
out_for_signature ──signature_declined──▶ ready_for_signature   (DocuSign: declined or voided)
any state before executed ──void──▶ voided        (Subscribers: only before signed)
executed ──supersede──▶ superseded                (when the tenant executes a newer DPA)
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from dpa_service.agreements.models import Agreement, AgreementStatus
from dpa_service.audit import services as audit
from dpa_service.core.clock import utcnow
from dpa_service.core.exceptions import Conflict
from dpa_service.core.identity import Actor
from dpa_service.notifications.outbox import enqueue_job, enqueue_many

STATUS_CHANGED = "agreement.status_changed"
PRERENDER_JOB = "agreement.prerender_draft"  # run by `agreements.prerender`

BEFORE_EXECUTION = (
    AgreementStatus.DRAFT,
    AgreementStatus.IN_LEGAL_REVIEW,
    AgreementStatus.CHANGES_REQUESTED,
    AgreementStatus.READY_FOR_SIGNATURE,
    AgreementStatus.OUT_FOR_SIGNATURE,
)
_EDITABLE = (AgreementStatus.DRAFT, AgreementStatus.CHANGES_REQUESTED)

# The one lifecycle of an agreement: action -> {from status: to status}. Anything else is 409.
TRANSITIONS: dict[str, dict[str, str]] = {
    "edit": {status: status for status in _EDITABLE},
    "submit": {status: AgreementStatus.READY_FOR_SIGNATURE for status in _EDITABLE},
    "submit_for_review": {status: AgreementStatus.IN_LEGAL_REVIEW for status in _EDITABLE},
    "approve": {AgreementStatus.IN_LEGAL_REVIEW: AgreementStatus.READY_FOR_SIGNATURE},
    "request_changes": {AgreementStatus.IN_LEGAL_REVIEW: AgreementStatus.CHANGES_REQUESTED},
    "send_for_signature": {
        AgreementStatus.READY_FOR_SIGNATURE: AgreementStatus.OUT_FOR_SIGNATURE,
        AgreementStatus.OUT_FOR_SIGNATURE: AgreementStatus.OUT_FOR_SIGNATURE,
    },
    "expire": {AgreementStatus.OUT_FOR_SIGNATURE: AgreementStatus.READY_FOR_SIGNATURE},
    # The signer declined, or DocuSign voided the envelope: the request ends, a new one may be sent.
    "signature_declined": {AgreementStatus.OUT_FOR_SIGNATURE: AgreementStatus.READY_FOR_SIGNATURE},
    "sign": {AgreementStatus.OUT_FOR_SIGNATURE: AgreementStatus.SIGNED},
    "countersign": {AgreementStatus.SIGNED: AgreementStatus.EXECUTED},
    "void": {status: AgreementStatus.VOIDED for status in (*BEFORE_EXECUTION, AgreementStatus.SIGNED)},
    "supersede": {AgreementStatus.EXECUTED: AgreementStatus.SUPERSEDED},
}


def next_status(agreement: Agreement, action: str) -> str:
    allowed = TRANSITIONS[action]
    if agreement.status not in allowed:
        raise Conflict(f"An agreement in status {agreement.status} does not allow '{action}'.")
    return allowed[agreement.status]


async def move(
    session: AsyncSession,
    actor: Actor,
    agreement: Agreement,
    action: str,
    data: dict[str, Any] | None = None,
    *,
    email: dict[str, Any] | None = None,
) -> None:
    """Apply one transition, audit it and (when the status moves) notify webhooks, in the caller's transaction.

    `email` (`subject`, `text`, `email_also`) also e-mails the notice to the tenant's owners and admins and to the
    `email_also` addresses, through the same outbox message."""
    previous, agreement.status = agreement.status, next_status(agreement, action)
    agreement.updated_at = utcnow()
    if action == "edit":
        agreement.content_changed_at = agreement.updated_at
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
        payload = {
            "agreement_id": str(agreement.id),
            "action": action,
            "from": previous,
            "to": agreement.status,
            "notify_by_email": email is not None,
            **(email or {}),
        }
        await enqueue_many(session, STATUS_CHANGED, [(agreement.tenant_id, f"{STATUS_CHANGED}:{event.id}", payload)])
        if agreement.status == AgreementStatus.READY_FOR_SIGNATURE:  # its draft is final: render it ahead
            await enqueue_job(
                session,
                PRERENDER_JOB,
                agreement.tenant_id,
                f"{PRERENDER_JOB}:{event.id}",
                {"agreement_id": str(agreement.id), "tenant_id": str(agreement.tenant_id)},
            )
