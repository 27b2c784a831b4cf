"""What is asked about a tenant's exit: whether it is in exit (the check `reactions.refuse_in_exit` registers for
the agreements domain), and whether a PDF is one of the processor's deletion certificates (document verification).
Only this package's own tables and `core`, so the agreements domain can import it (through `obligations.services`)
without a cycle. (The ledger reads terminations with its own facts: `ledger_facts`.)"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.core.db import Database, Scope
from dpa_service.obligations.models import DeletionCertificate, Termination


async def exit_of(db: Database, scope: Scope, tenant_id: uuid.UUID) -> date | None:
    """The day the tenant's main agreement ends, once a termination is recorded (the tenant is then in exit and
    may sign no new DPA); None while it is not. Joins the caller's open transaction when there is one."""
    async with db.transaction(scope, write=False) as session:
        return await session.scalar(select(col(Termination.ends_on)).where(col(Termination.tenant_id) == tenant_id))


async def exits_of(db: Database, scope: Scope, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, date]:
    """`exit_of` for many tenants in one query per thousand: the end date of each one in exit."""
    found: dict[uuid.UUID, date] = {}
    async with db.transaction(scope, write=False) as session:
        for start in range(0, len(tenant_ids), 1000):
            rows = await session.execute(
                select(col(Termination.tenant_id), col(Termination.ends_on)).where(
                    col(Termination.tenant_id).in_(list(tenant_ids[start : start + 1000]))
                )
            )
            found.update((tenant_id, ends_on) for tenant_id, ends_on in rows.all())
    return found


async def first_certificates(session: AsyncSession, tenant_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Each tenant's first deletion certificate (its id), for the tenants that have one: one query per page."""
    if not tenant_ids:
        return {}
    query = (
        select(col(DeletionCertificate.tenant_id), col(DeletionCertificate.id))
        .where(col(DeletionCertificate.tenant_id).in_(list(tenant_ids)))
        .order_by(col(DeletionCertificate.issued_at).desc(), col(DeletionCertificate.id).desc())
    )
    # Newest first, so the last write per tenant is its first certificate (a tenant has a handful).
    return {tenant_id: certificate_id for tenant_id, certificate_id in (await session.execute(query)).all()}


@dataclass(frozen=True)
class CertificateOnRecord:
    id: uuid.UUID
    tenant_id: uuid.UUID
    sealed_at: datetime


async def deletion_certificate_by_sha256(db: Database, digest: str) -> CertificateOnRecord | None:
    """The deletion certificate whose sealed PDF has this SHA-256, looked up across tenants (whoever holds a copy
    may check it; the caller decides who is shown its id)."""
    query = select(
        col(DeletionCertificate.id), col(DeletionCertificate.tenant_id), col(DeletionCertificate.sealed_at)
    ).where(col(DeletionCertificate.document_sha256) == digest)
    async with db.transaction(Scope.system(), write=False) as session:
        row = (await session.execute(query)).one_or_none()
    return CertificateOnRecord(row[0], row[1], row[2]) if row is not None else None
