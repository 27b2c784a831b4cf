"""The Subscriber's obligations as controller: the ledger with derived statuses, and attestations."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, QueryParameter

from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import require_roles, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page
from dpa_service.obligations import ledger
from dpa_service.obligations.ledger_models import AttestationCreate, AttestationPublic, ObligationPublic
from dpa_service.obligations.models import ObligationStatus

ledger_readers = require_roles(Role.OWNER, Role.ADMIN, Role.MEMBER, Role.LEGAL)

TenantFilter = Annotated[uuid.UUID | None, QueryParameter(name="tenant_id")]
AgreementFilter = Annotated[
    uuid.UUID | None, QueryParameter(name="agreement_id", description="One DPA's rows, current or superseded.")
]
StatusFilter = Annotated[ObligationStatus | None, QueryParameter(name="status")]
CodeFilter = Annotated[str | None, QueryParameter(name="code", max_length=100)]
Code = FromPath[str]


class ObligationsController(Controller):
    path = "/api/v1/obligations"
    tags = ["Obligations"]

    @get("/", guards=[ledger_readers], operation_id="listObligations")
    async def list_obligations(
        self,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        agreement_id: AgreementFilter = None,
        status: StatusFilter = None,
        code: CodeFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[ObligationPublic]:
        """The obligations the tenant's executed DPA imposes, each with its status as of now (`open`, `met`,
        `overdue`, `not_applicable`), `due_at` where its rule gives one, and what to do next. Legal sees every
        tenant's (`?tenant_id=` narrows); `?agreement_id=` shows one DPA's rows, a superseded one's as history."""
        return await ledger.list_obligations(
            db,
            principal,
            tenant_id=tenant_id,
            agreement_id=agreement_id,
            status=status,
            code=code,
            cursor=cursor,
            limit=limit,
        )

    @post(
        "/{code:str}/attestations",
        guards=[subscriber_admin],
        operation_id="attestObligation",
        responses=created(AttestationPublic),
    )
    async def attest(
        self,
        code: Code,
        data: JSONBody[AttestationCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
    ) -> Response[bytes]:
        """An owner or admin attests that the tenant keeps an obligation of its current ledger (`statement`,
        `evidence?`, `period?`, and `personnel_count`, a whole number, for `personnel_awareness`); append-only and
        audited. 409 where an attestation would change nothing: obligations kept by events (breach notices,
        inquiries, transfer notices), the deletion before the main agreement's end is recorded, the continuous ones
        after the end; the message says what keeps the obligation."""
        return await create_once(db, request, request.user, partial(ledger.attest, db, actor, request.user, code, data))

    @get("/{code:str}/attestations", guards=[ledger_readers], operation_id="listObligationAttestations")
    async def attestations(
        self,
        code: Code,
        principal: PrincipalDep,
        db: DbDep,
        tenant_id: TenantFilter = None,
        limit: Limit = DEFAULT_LIMIT,
        cursor: Cursor = None,
    ) -> Page[AttestationPublic]:
        """The append-only history of an obligation's attestations, oldest first; legal sees every tenant's
        (`?tenant_id=` narrows)."""
        return await ledger.list_attestations(db, principal, code, tenant_id=tenant_id, cursor=cursor, limit=limit)
