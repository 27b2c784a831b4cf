"""DocuSign envelopes as the rest of the agreements domain sees them: read beside the evidence, and ended when their
agreement is voided or re-sent (DocuSign itself is told by an outbox job, `docusign.VOID_JOB`)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements.models import (
    DocuSignEnvelope,
    DocuSignEvent,
    DocuSignEventPublic,
    EnvelopePublic,
    EnvelopeStatus,
)
from dpa_service.notifications.outbox import enqueue_job

VOID_JOB = "docusign.void_envelope"
ACTIVE = (EnvelopeStatus.CREATING.value, EnvelopeStatus.SENT.value, EnvelopeStatus.DELIVERED.value)


async def void_active(session: AsyncSession, agreement_id: uuid.UUID, reason: str) -> None:
    """End the agreement's envelopes still out, in the caller's transaction."""
    query = select(DocuSignEnvelope).where(
        col(DocuSignEnvelope.agreement_id) == agreement_id, col(DocuSignEnvelope.status).in_(ACTIVE)
    )
    for envelope in (await session.execute(query.with_for_update())).scalars():
        envelope.status, envelope.reason = EnvelopeStatus.VOIDED.value, reason
        if envelope.envelope_id:
            payload = {"envelope_id": envelope.envelope_id, "reason": reason}
            await enqueue_job(session, VOID_JOB, envelope.tenant_id, f"{VOID_JOB}:{envelope.envelope_id}", payload)


async def envelopes_in(session: AsyncSession, agreement_id: uuid.UUID) -> list[EnvelopePublic]:
    """The agreement's envelopes, oldest first, each with its recipient events (two queries)."""
    envelopes = list(
        (
            await session.execute(
                select(DocuSignEnvelope)
                .where(col(DocuSignEnvelope.agreement_id) == agreement_id)
                .order_by(col(DocuSignEnvelope.created_at))
            )
        ).scalars()
    )
    if not envelopes:
        return []
    events = (
        await session.execute(
            select(DocuSignEvent)
            .where(col(DocuSignEvent.envelope_row_id).in_([e.id for e in envelopes]))
            .order_by(col(DocuSignEvent.received_at))
        )
    ).scalars()
    by_envelope: dict[uuid.UUID, list[DocuSignEventPublic]] = {e.id: [] for e in envelopes}
    for event in events:
        by_envelope[event.envelope_row_id].append(DocuSignEventPublic.model_validate(event, from_attributes=True))
    return [
        EnvelopePublic.model_validate(e, from_attributes=True, update={"recipient_events": by_envelope[e.id]})
        for e in envelopes
    ]
