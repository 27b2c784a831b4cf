"""Assistance requests: a Subscriber asks the processor for help, and legal answers.

Art. 28(3)(e) GDPR: the processor "assists the controller by appropriate technical and organisational measures,
insofar as this is possible, for the fulfilment of the controller's obligation to respond to requests for
exercising the data subject's rights laid down in Chapter III"; Art. 28(3)(f): it "assists the controller in
ensuring compliance with the obligations pursuant to Articles 32 to 36" (security, breach notification, data
protection impact assessments and prior consultation). Hence the kinds `data_subject_request`, `dpia`, `other`.

The answer is due 30 days after the request. That figure is the processor's own promise in its privacy policy, not
a deadline the GDPR sets (Art. 28 says "assists", with no period; the controller's own one month to answer a data
subject under Art. 12(3) runs separately, and the processor's help has to fit inside it).

Any of the Subscriber's users asks (owner, admin or member: API.md says "subscriber asks", and a member handling a
data subject's request is often the one who needs the help; asking commits the Subscriber to nothing); legal
answers. `status` is `open` until the first answer, then `answered`; `late` is true when a
request is open past its due time or was answered after it. Legal is e-mailed of each new request, the tenant's
owners and admins of each answer, through the outbox; both are audited in the tenant's chain.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations.assistance_models import (
    AssistanceRequestCreate,
    AssistanceRequestDetail,
    AssistanceRequestPublic,
    AssistanceResponseCreate,
    AssistanceResponsePublic,
)
from dpa_service.obligations.models import AssistanceRequest, AssistanceResponse, AssistanceStatus
from dpa_service.tenants import services as tenants

ANSWER_WITHIN = timedelta(days=30)  # the processor's privacy-policy promise for requests (policy, not the GDPR)
KIND_LABELS = {
    "data_subject_request": "Data subject request (Art. 28(3)(e))",
    "dpia": "Data protection impact assessment (Art. 28(3)(f))",
    "other": "Other assistance",
}
STATUSES = ("open", "answered", "late")
REQUESTED_TOPIC = "assistance_request.created"
ANSWERED_TOPIC = "assistance_request.answered"


def is_late(request: AssistanceRequest, now: datetime) -> bool:
    due = as_utc(request.due_at)
    return as_utc(request.answered_at) > due if request.answered_at else now > due


def public(request: AssistanceRequest, now: datetime | None = None) -> AssistanceRequestPublic:
    return AssistanceRequestPublic.model_validate(
        request,
        from_attributes=True,
        update={
            "status": AssistanceStatus.ANSWERED.value if request.answered_at else AssistanceStatus.OPEN.value,
            "late": is_late(request, now or utcnow()),
        },
    )


async def create_request(
    db: Database, actor: Actor, principal: Principal, data: AssistanceRequestCreate, *, base_url: str = ""
) -> AssistanceRequestPublic:
    """A Subscriber's user (owner, admin or member) asks for assistance; due 30 days later; legal is e-mailed at
    once."""
    if principal.tenant_id is None or principal.role not in (Role.OWNER, Role.ADMIN, Role.MEMBER):
        raise PermissionDenied("Assistance is requested by a Subscriber's users.")
    tenant_id = principal.tenant_id
    async with db.transaction(principal.scope) as session:
        now = utcnow()
        request = AssistanceRequest(
            id=new_id(),
            tenant_id=tenant_id,
            kind=data.kind,
            description=data.description,
            requested_by=principal.user_id,
            requested_at=now,
            due_at=now + ANSWER_WITHIN,
        )
        session.add(request)
        await session.flush()
        facts = {"request_id": str(request.id), "kind": request.kind, "due_at": request.due_at.isoformat()}
        await audit.record(session, actor, REQUESTED_TOPIC, "assistance_request", request.id, tenant_id=tenant_id,
                           data=facts)  # fmt: skip
        tenant = await tenants.get_tenant(db, principal.scope, tenant_id)
        mail = {
            "subject": f"Assistance requested by {tenant.name}: {KIND_LABELS[request.kind]}",
            "text": (
                f"{tenant.legal_name} asks for assistance ({KIND_LABELS[request.kind]}), requested by "
                f"{principal.name} ({principal.email}):\n\n{request.description}\n\n"
                f"Answer by {request.due_at.date().isoformat()}: {base_url}/staff/assistance/{request.id}"
            ),
            "email_staff": Role.LEGAL.value,  # to legal, not the tenant's owners (notifications.worker)
        }
        await enqueue_many(
            session, REQUESTED_TOPIC, [(tenant_id, f"{REQUESTED_TOPIC}:{request.id}", {**facts, **mail})]
        )
        return public(request, now)


def _status_filter(status: str, now: datetime) -> Any:
    answered = col(AssistanceRequest.answered_at).is_not(None)
    if status == "open":
        return ~answered
    if status == "answered":
        return answered
    return or_(
        and_(~answered, col(AssistanceRequest.due_at) < now),
        and_(answered, col(AssistanceRequest.answered_at) > col(AssistanceRequest.due_at)),
    )


async def list_requests(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[AssistanceRequestPublic]:
    """Requests oldest first (the first due first): a Subscriber's own; legal all, or `tenant_id`'s.
    `status`: `open`, `answered` or `late`."""
    if status is not None and status not in STATUSES:
        raise InvalidInput.field("status", f"must be one of {', '.join(STATUSES)}")
    now = utcnow()
    query = select(AssistanceRequest).order_by(col(AssistanceRequest.id)).limit(limit + 1)
    if status is not None:
        query = query.where(_status_filter(status, now))
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(AssistanceRequest.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(AssistanceRequest.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, lambda r: public(r, now), lambda r: str(r.id))


async def get_request(db: Database, principal: Principal, request_id: uuid.UUID) -> AssistanceRequestDetail:
    """One request with its answers (another tenant's is not found)."""
    async with db.transaction(principal.scope, write=False) as session:
        request = await _find(session, request_id)
        responses = (
            await session.execute(
                select(AssistanceResponse)
                .where(col(AssistanceResponse.tenant_id) == request.tenant_id,
                       col(AssistanceResponse.request_id) == request.id)
                .order_by(col(AssistanceResponse.answered_at), col(AssistanceResponse.id))
            )
        ).scalars().all()  # fmt: skip
    return AssistanceRequestDetail(
        **public(request).model_dump(),
        responses=[AssistanceResponsePublic.model_validate(r, from_attributes=True) for r in responses],
    )


async def _find(session: Any, request_id: uuid.UUID, *, lock: bool = False) -> AssistanceRequest:
    query = select(AssistanceRequest).where(col(AssistanceRequest.id) == request_id)
    if (tenant := tenant_of(session)) is not None:  # SQLite has no row-level security: filter here too
        query = query.where(col(AssistanceRequest.tenant_id) == tenant)
    found = await session.scalar(query.with_for_update() if lock else query)
    if found is None:
        raise NotFound("Assistance request not found.")
    return found


async def answer(
    db: Database,
    actor: Actor,
    principal: Principal,
    request_id: uuid.UUID,
    data: AssistanceResponseCreate,
    *,
    base_url: str = "",
) -> AssistanceResponsePublic:
    """Legal answers; the first answer makes the request `answered` (later ones are added to it). The tenant's
    owners and admins are e-mailed the answer."""
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Assistance requests are answered by the processor's legal team.")
    async with db.transaction(principal.scope) as session:
        request = await _find(session, request_id, lock=True)
        now = utcnow()
        response = AssistanceResponse(
            id=new_id(),
            tenant_id=request.tenant_id,
            request_id=request.id,
            text=data.text,
            answered_by=principal.user_id,
            answered_at=now,
        )
        session.add(response)
        first = request.answered_at is None
        if first:
            request.answered_at = now
        await session.flush()
        facts = {
            "request_id": str(request.id),
            "response_id": str(response.id),
            "late": is_late(request, now),
            "first_answer": first,
        }
        await audit.record(session, actor, ANSWERED_TOPIC, "assistance_request", request.id,
                           tenant_id=request.tenant_id, data=facts)  # fmt: skip
        mail = {
            "subject": f"Answer to your assistance request ({KIND_LABELS[request.kind]})",
            "text": (
                f"The processor's legal team answered your request of {request.requested_at:%Y-%m-%d}:\n\n"
                f"{response.text}\n\nThe request and its answers: {base_url}/app/assistance/{request.id}"
            ),
        }
        await enqueue_many(session, ANSWERED_TOPIC,
                           [(request.tenant_id, f"{ANSWERED_TOPIC}:{response.id}", {**facts, **mail})])  # fmt: skip
        return AssistanceResponsePublic.model_validate(response, from_attributes=True)
