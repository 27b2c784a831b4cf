"""The exit's JSON API: the termination of the main agreement and the processor's deletion certificates."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import legal_only, require_roles
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, SealDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.obligations import deletion_certificates, exit
from dpa_service.obligations.exit_models import (
    DeletionCertificateCreate,
    DeletionCertificatePublic,
    TerminationCreate,
    TerminationPublic,
)

# Members read their tenant's exit; only its owner ends the main agreement (an admin manages the service, but
# ending the contract is the owner's call), and legal records it for any tenant.
exit_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)
terminators = require_roles(Role.OWNER, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]


class ExitController(Controller):
    path = "/api/v1/tenant"
    tags = ["Obligations"]

    @post("/termination", guards=[terminators], operation_id="recordTermination", responses=created(TerminationPublic))
    async def terminate(
        self,
        data: JSONBody[TerminationCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """The main agreement ends on `ends_on` (owner: its own tenant, today or later; legal: `tenant_id`'s, up to a
        year back). The deletion obligation falls due `deletion_days` later; from now on new DPAs are refused (409).
        One per tenant: a second is 409."""
        work = partial(exit.record_termination, db, actor, request.user, data,
                       base_url=public_base_url(request, settings))  # fmt: skip
        return await create_once(db, request, request.user, work)

    @get("/termination", guards=[exit_readers], operation_id="getTermination")
    async def termination(
        self, principal: PrincipalDep, db: DbDep, tenant_id: TenantFilter = None
    ) -> TerminationPublic:
        """The tenant's termination (404 if none): a Subscriber's own; legal names the tenant with `?tenant_id=`.
        `processor_deletion_due_on` is when the processor must have deleted the tenant's data (clause 10.2: 30 days
        to export, then 30 to delete), and `deletion_certificate_id` its first deletion certificate once issued."""
        return await exit.get_termination(db, principal, tenant_id)

    @post(
        "/deletion-certificate",
        guards=[legal_only],
        operation_id="issueDeletionCertificate",
        responses=created(DeletionCertificatePublic),
    )
    async def certify_deletion(
        self,
        data: JSONBody[DeletionCertificateCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        seal: SealDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """Legal certifies the processor's own deletion (Art. 28(3)(g) GDPR) for a tenant in exit (else 409):
        `deleted_on` (not in the future, nor inside the Subscriber's export window: clause 10.2 gives it 30 days
        after the end of the main agreement to export, so 422 before `ends_on` + 30), `systems`, `statement`. The
        certificate is a sealed PDF, verifiable with `POST /documents/verify`."""
        prepared = await deletion_certificates.prepare_certificate(db, seal, request.user, data)
        work = partial(deletion_certificates.issue_certificate, db, actor, request.user, prepared,
                       base_url=public_base_url(request, settings))  # fmt: skip
        return await create_once(db, request, request.user, work)


class DeletionCertificatesController(Controller):
    path = "/api/v1/deletion-certificates"
    tags = ["Obligations"]
    guards = [exit_readers]

    @get("/", operation_id="listDeletionCertificates")
    async def list_certificates(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[DeletionCertificatePublic]:
        """Deletion certificates: a Subscriber's own; legal all (`?tenant_id=` narrows)."""
        return await deletion_certificates.list_certificates(
            db, principal, tenant_id=tenant_id, cursor=cursor, limit=limit
        )

    @get("/{certificate_id:uuid}", operation_id="getDeletionCertificate")
    async def certificate(
        self, certificate_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> DeletionCertificatePublic:
        """One deletion certificate's facts (without the PDF)."""
        return await deletion_certificates.get_certificate(db, principal, certificate_id)

    @get("/{certificate_id:uuid}/document", operation_id="getDeletionCertificateDocument", media_type="application/pdf")
    async def document(
        self, certificate_id: FromPath[uuid.UUID], principal: PrincipalDep, db: DbDep
    ) -> Response[bytes]:
        """The sealed PDF exactly as issued; `X-Content-SHA256` is its hash. Never cached."""
        found = await deletion_certificates.certificate_document(db, principal, certificate_id)
        return Response(found.content, media_type="application/pdf", headers=document_headers(certificate_id, found))


def document_headers(certificate_id: uuid.UUID, found: deletion_certificates.CertificateDocument) -> dict[str, str]:
    return {
        "X-Content-SHA256": found.sha256,
        "Content-Disposition": f'inline; filename="deletion-certificate-{certificate_id}.pdf"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
