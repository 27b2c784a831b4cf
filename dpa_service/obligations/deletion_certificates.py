"""The processor's own deletion after a tenant's exit (Art. 28(3)(g) GDPR; clause 10.2 of standard-dpa): legal issues
a certificate, rendered and sealed like an executed DPA and stored write-once, that the tenant and legal download and
anyone holding it can verify. The termination it follows is `exit`'s."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.documents.seal import Seal
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations import exit_document
from dpa_service.obligations.exit import (
    CERTIFICATE_TOPIC,
    _executed_agreements,
    _target_tenant,
    certificate_public,
    export_ends_on,
    find_termination,
)
from dpa_service.obligations.exit_models import (
    DeletionCertificateCreate,
    DeletionCertificatePublic,
)
from dpa_service.obligations.models import DeletionCertificate, Termination


@dataclass(frozen=True)
class PreparedCertificate:
    """A sealed certificate, made before the write transaction (rendering and sealing take a while)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    data: DeletionCertificateCreate
    content: bytes
    sha256: str
    sealed_at: datetime


async def prepare_certificate(
    db: Database, seal: Seal, principal: Principal, data: DeletionCertificateCreate
) -> PreparedCertificate:
    """Check the request and build the sealed PDF (legal only; the tenant must be in exit; `deleted_on` between
    the end of the Subscriber's export window, 30 days after the main agreement ends, and today)."""
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Deletion certificates are issued by the processor's legal team.")
    tenant = await _target_tenant(db, principal, data.tenant_id)
    termination = await find_termination(db, principal, tenant.id)
    if termination is None:
        raise Conflict("This tenant's main agreement has no recorded end: record the termination first.")
    errors = []
    if data.deleted_on < (earliest := export_ends_on(termination.ends_on)):
        errors.append(
            FieldError(
                "deleted_on",
                f"is inside the Subscriber's export window: clause 10.2 lets it export its data for 30 days after "
                f"the main agreement ends ({termination.ends_on}), so the processor deletes on {earliest} at the "
                "earliest",
            )
        )
    if data.deleted_on > utcnow().date():
        errors.append(FieldError("deleted_on", "is in the future: certify a deletion once it is done"))
    if errors:
        raise InvalidInput("The certificate cannot be issued.", errors)
    certificate_id = new_id()
    issued_at = utcnow()
    context = exit_document.certificate_context(
        certificate_id=certificate_id,
        tenant=tenant.model_dump(mode="json"),
        termination=termination.model_dump(mode="json"),
        agreements=[
            {
                "reference": str(a.id),
                "template": f"{a.template_key} v{a.template_version}",
                "effective_date": a.effective_date.isoformat() if a.effective_date else "",
                "status": a.status,
                "document_sha256": a.document_sha256 or "",
            }
            for a in await _executed_agreements(db, principal, tenant.id)
        ],
        deleted_on=data.deleted_on,
        systems=data.systems,
        statement=data.statement,
        issued_by={"name": principal.name, "email": principal.email},
        issued_at=rfc3339(issued_at),
    )
    pdf = await seal.renderer.run(exit_document.build_certificate, context)
    sealed = await seal.seal(pdf, reason=f"Deletion certificate {certificate_id}",
                             location=registry.processor().get("country"))  # fmt: skip
    return PreparedCertificate(certificate_id, tenant.id, data, sealed, agreements.sha256(sealed), issued_at)


async def issue_certificate(
    db: Database, actor: Actor, principal: Principal, prepared: PreparedCertificate, *, base_url: str = ""
) -> DeletionCertificatePublic:
    """Store the sealed certificate once, audited, and tell the tenant's owners and admins."""
    async with db.transaction(principal.scope) as session:
        ends_on = await session.scalar(
            select(col(Termination.ends_on)).where(col(Termination.tenant_id) == prepared.tenant_id)
        )
        if ends_on is None:  # cannot happen (terminations are append-only), but never certify without one
            raise Conflict("This tenant's main agreement has no recorded end.")
        certificate = DeletionCertificate(
            id=prepared.id,
            tenant_id=prepared.tenant_id,
            deleted_on=prepared.data.deleted_on,
            systems=list(prepared.data.systems),
            statement=prepared.data.statement,
            document_sha256=prepared.sha256,
            content=prepared.content,
            sealed_at=prepared.sealed_at,
            issued_by=principal.user_id,
            issued_at=prepared.sealed_at,
        )
        session.add(certificate)
        await session.flush()
        facts = {
            "certificate_id": str(certificate.id),
            "deleted_on": certificate.deleted_on.isoformat(),
            "systems": certificate.systems,
            "document_sha256": certificate.document_sha256,
        }
        await audit.record(
            session, actor, CERTIFICATE_TOPIC, "deletion_certificate", certificate.id,
            tenant_id=certificate.tenant_id, data=facts,
        )  # fmt: skip
        await enqueue_many(
            session,
            CERTIFICATE_TOPIC,
            [(certificate.tenant_id, f"{CERTIFICATE_TOPIC}:{certificate.id}", {**facts, **_certificate_mail(
                certificate, base_url)})],
        )  # fmt: skip
        return certificate_public(certificate)


def _certificate_mail(certificate: DeletionCertificate, base_url: str) -> dict[str, str]:
    processor = registry.processor()["legal_name"]
    text = (
        f"{processor} certifies that on {certificate.deleted_on} it deleted the personal data it processed for you "
        f"on these systems: {', '.join(certificate.systems)}.\n\n"
        f"The sealed certificate (PDF): {base_url}/app/exit\n"
        f"SHA-256: {certificate.document_sha256}\n"
        f"Anyone holding a copy can check it at {base_url}/verify.\n\nReference: {certificate.id}"
    )
    return {"subject": "Deletion certificate: the processor has deleted your data", "text": text}


async def list_certificates(
    db: Database, principal: Principal, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[DeletionCertificatePublic]:
    """Deletion certificates: a Subscriber's own; legal all, or `tenant_id`'s."""
    query = select(*_CERTIFICATE_COLUMNS).order_by(col(DeletionCertificate.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(DeletionCertificate.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(DeletionCertificate.tenant_id) == tenant)
        rows = (await session.execute(query)).all()
    return page_of(rows, limit, lambda r: DeletionCertificatePublic(**r._mapping), lambda r: str(r.id))


# Everything but the PDF bytes, so a list never loads them.
_CERTIFICATE_COLUMNS = [col(getattr(DeletionCertificate, name)) for name in DeletionCertificatePublic.model_fields]


async def get_certificate(db: Database, principal: Principal, certificate_id: uuid.UUID) -> DeletionCertificatePublic:
    query = select(*_CERTIFICATE_COLUMNS).where(col(DeletionCertificate.id) == certificate_id)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session)) is not None:  # SQLite has no row-level security: filter here too
            query = query.where(col(DeletionCertificate.tenant_id) == tenant)
        row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFound("Deletion certificate not found.")
    return DeletionCertificatePublic(**row._mapping)


@dataclass(frozen=True)
class CertificateDocument:
    content: bytes
    sha256: str


async def certificate_document(db: Database, principal: Principal, certificate_id: uuid.UUID) -> CertificateDocument:
    """The sealed PDF, exactly as stored (its tenant's users and legal)."""
    query = select(DeletionCertificate).where(col(DeletionCertificate.id) == certificate_id)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session)) is not None:
            query = query.where(col(DeletionCertificate.tenant_id) == tenant)
        found = await session.scalar(query)
    if found is None:
        raise NotFound("Deletion certificate not found.")
    if agreements.sha256(found.content) != found.document_sha256:
        raise Conflict("The stored certificate does not match its recorded hash; it is withheld.")
    return CertificateDocument(found.content, found.document_sha256)
