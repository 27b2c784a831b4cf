"""The built-in signer: single-use signing links and the evidence recorded when someone signs.

A link's token carries 256 random bits; only its SHA-256 is stored. Opening a new request for an agreement
voids the previous link. Lifecycle decisions about the agreement itself belong to the agreements domain.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements.models import RequestStatus, Signature, SignatureRequest
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.exceptions import Gone, NotFound
from dpa_service.core.registry import data_root


@cache
def consent_text() -> str:
    return (data_root("registry") / "esignature_consent.txt").read_text(encoding="utf-8")


def consent_sha256() -> str:
    return hashlib.sha256(consent_text().encode()).hexdigest()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def open_request(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    agreement_id: uuid.UUID,
    provider: str,
    signer_name: str,
    signer_email: str,
    signer_title: str,
    document_sha256: str,
    requested_by: uuid.UUID | None,
    valid_for: timedelta,
    embedded_for: tuple[datetime, str] | None = None,
) -> tuple[SignatureRequest, str]:
    """A new signing link (returned in clear once); any earlier pending link of the agreement stops working.
    `embedded_for` is (when, how) the calling signer's address was verified, when the link is handed back to them
    for embedded signing."""
    now = utcnow()
    await session.execute(
        update(SignatureRequest)
        .where(
            col(SignatureRequest.agreement_id) == agreement_id, col(SignatureRequest.status) == RequestStatus.PENDING
        )
        .values(status=RequestStatus.VOIDED.value, closed_at=now)
    )
    token = secrets.token_urlsafe(32)
    request = SignatureRequest(
        tenant_id=tenant_id,
        agreement_id=agreement_id,
        provider=provider,
        signer_name=signer_name,
        signer_email=signer_email.lower(),
        signer_title=signer_title,
        token_hash=token_hash(token),
        document_sha256=document_sha256,
        requested_by=requested_by,
        created_at=now,
        expires_at=now + valid_for,
        signer_email_verified_at=embedded_for[0] if embedded_for else None,
        signer_email_verification=embedded_for[1] if embedded_for else None,
    )
    session.add(request)
    await session.flush()
    return request, token


async def void_pending(session: AsyncSession, agreement_id: uuid.UUID) -> None:
    await session.execute(
        update(SignatureRequest)
        .where(
            col(SignatureRequest.agreement_id) == agreement_id, col(SignatureRequest.status) == RequestStatus.PENDING
        )
        .values(status=RequestStatus.VOIDED.value, closed_at=utcnow())
    )


async def find_by_token(session: AsyncSession, token: str, *, lock: bool = False) -> SignatureRequest:
    """The request behind a token, or NotFound; never says more about unknown tokens."""
    if not token or len(token) > 200:
        raise NotFound("This signing link does not exist.")
    query = select(SignatureRequest).where(col(SignatureRequest.token_hash) == token_hash(token))
    if lock:
        query = query.with_for_update()
    request = (await session.execute(query)).scalar_one_or_none()
    if request is None:
        raise NotFound("This signing link does not exist.")
    return request


def ensure_usable(request: SignatureRequest, now: datetime | None = None) -> None:
    """Raise Gone for a link that was used, replaced, or has expired."""
    now = now or utcnow()
    if request.status == RequestStatus.SIGNED:
        raise Gone("This signing link has already been used: the agreement is signed.")
    if request.status == RequestStatus.VOIDED:
        raise Gone("This signing link was replaced by a newer one or the agreement was voided.")
    if request.status == RequestStatus.EXPIRED or as_utc(request.expires_at) <= now:
        raise Gone("This signing link has expired. Ask for a new one.")


async def signatures_of(session: AsyncSession, agreement_id: uuid.UUID) -> Sequence[Signature]:
    query = select(Signature).where(col(Signature.agreement_id) == agreement_id).order_by(col(Signature.signed_at))
    return (await session.execute(query)).scalars().all()


async def overdue(session: AsyncSession, now: datetime | None = None) -> Sequence[tuple[uuid.UUID, uuid.UUID]]:
    """(request id, agreement id) of pending links past their expiry (not locked: see `expire`)."""
    query = select(col(SignatureRequest.id), col(SignatureRequest.agreement_id)).where(
        col(SignatureRequest.status) == RequestStatus.PENDING, col(SignatureRequest.expires_at) <= (now or utcnow())
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def expire(session: AsyncSession, request_id: uuid.UUID, now: datetime | None = None) -> bool:
    """Expire one link if it is still pending and overdue; the caller has locked its agreement first."""
    now = now or utcnow()
    request = await session.get(SignatureRequest, request_id, with_for_update=True)
    if request is None or request.status != RequestStatus.PENDING or as_utc(request.expires_at) > now:
        return False
    request.status, request.closed_at = RequestStatus.EXPIRED.value, now
    return True
