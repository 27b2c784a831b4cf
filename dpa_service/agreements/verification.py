"""Is this PDF one of our executed agreements (or one of the processor's deletion certificates, which are sealed the
same way), unchanged? Anyone holding a copy may ask.

Anyone means no key is needed, so a check must not tie up the document pool every tenant renders with: it runs
only on something that looks sealed, one anonymous check at a time, within `CHECK_TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements.models import AgreementDocument, DocumentVerification
from dpa_service.agreements.services import sha256
from dpa_service.core.db import Database, Scope
from dpa_service.core.exceptions import InvalidInput
from dpa_service.core.identity import Principal
from dpa_service.documents.seal import Seal, ValidationStatus
from dpa_service.obligations import services as obligations

CHECK_TIMEOUT = 20.0  # seconds; an executed DPA checks in well under one
MAX_PDF_BYTES = 10 * 1024 * 1024
_anonymous_checks = asyncio.Semaphore(1)


UNSEALED = {"status": "unknown", "detail": "no seal of this service"}


def looks_sealed(content: bytes) -> bool:
    """Whether the PDF carries any signature at all; every executed DPA carries the service's seal."""
    return b"/ByteRange" in content


async def verify_document(
    db: Database, seal: Seal, content: bytes, viewer: Principal | None = None, *, operator: bool = False
) -> dict[str, Any]:
    """Is this PDF one of our executed agreements, unchanged? `verified`, `tampered` or `unknown`.

    Verified needs both: the exact bytes on record (looked up across tenants, since a counterparty may hold a
    copy) and a valid seal. The agreement id is only shown to those who may read the agreement: its tenant, staff,
    or the operator at the command line (`operator`); never to an anonymous caller.
    """
    if len(content) > MAX_PDF_BYTES:
        raise InvalidInput.field("body", f"is larger than {MAX_PDF_BYTES // (1024 * 1024)} MB: not an executed DPA")
    digest = await asyncio.to_thread(sha256, content)  # up to 10 MB: not on the event loop
    query = select(
        col(AgreementDocument.agreement_id), col(AgreementDocument.tenant_id), col(AgreementDocument.sealed_at)
    ).where(col(AgreementDocument.sha256) == digest)
    # A copy held by anyone is looked up across tenants; only its agreement id is kept from non-owners.
    async with db.transaction(Scope.system(), write=False) as session:
        stored = (await session.execute(query)).one_or_none()
    certificate = await obligations.deletion_certificate_by_sha256(db, digest) if stored is None else None
    if not looks_sealed(content):  # no PDF signature at all: nothing for the pool to look at
        return dict(UNSEALED)
    async with _anonymous_checks if viewer is None and not operator else contextlib.nullcontext():
        check = await seal.check(content, within=CHECK_TIMEOUT)
    if check.status == ValidationStatus.UNREADABLE:
        raise InvalidInput.field("body", f"is {check.detail}: send the PDF file as it was downloaded")
    if check.status == ValidationStatus.INVALID:
        return {"status": "tampered", "sealed_at": check.sealed_at, "detail": check.detail}
    if check.status == ValidationStatus.VALID and stored is not None:
        visible = operator or (viewer is not None and (viewer.is_staff or viewer.tenant_id == stored[1]))
        return {
            "status": "verified",
            "kind": "agreement",
            "agreement_id": stored[0] if visible else None,
            "sealed_at": stored[2],
        }
    if check.status == ValidationStatus.VALID and certificate is not None:
        visible = operator or (viewer is not None and (viewer.is_staff or viewer.tenant_id == certificate.tenant_id))
        return {
            "status": "verified",
            "kind": "deletion_certificate",
            "deletion_certificate_id": certificate.id if visible else None,
            "sealed_at": certificate.sealed_at,
        }
    if check.status == ValidationStatus.VALID:
        return {"status": "unknown", "detail": "sealed by this service, but not an executed agreement on record"}
    return {"status": "unknown", "detail": check.detail}


async def verify(db: Database, seal: Seal, content: bytes, viewer: Principal | None = None) -> DocumentVerification:
    return DocumentVerification(**await verify_document(db, seal, content, viewer))
