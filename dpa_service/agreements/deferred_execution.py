"""Countersigning without waiting for the seal: `Prefer: respond-async` (RFC 7240) on a countersignature.

Executing renders the DPA as executed and its certificate of completion and seals them: a second or two of a core.
An integration countersigning a campaign's worth of DPAs, or a legal user on a busy service, need not wait for it.

Legal's decision is taken, and checked, in the request: the agreement must be signed and signable (`checks`), on
the sub-processor list in force, with a Subscriber signature, and not already queued; anything else is 403 or 409
at once, as for the synchronous countersignature. The request records who countersigned, when and from where, and
queues an outbox job in the same transaction (`execution_queued_at` says so on the agreement, and the audit chain
records `agreement.execution_queued`). A worker (`dpa worker`, or `dpa serve`'s own) then runs the same
`execution.countersign` as the synchronous path, the countersignature dated when legal gave it.

If the execution can no longer happen (the document changed, the tenant entered its exit, the requester left the
legal team) the job is dead at once: the agreement stays signed, `execution_error` says why, the chain records
`agreement.execution_failed` and legal is e-mailed. A render that fails for want of resources is retried first. An
agreement executed by hand or voided meanwhile needs nothing more: the job ends without doing anything.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from dpa_service.agreements import execution
from dpa_service.agreements.lifecycle import next_status
from dpa_service.agreements.models import AgreementPublic, AgreementStatus
from dpa_service.agreements.services import find, public
from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import checks
from dpa_service.core.exceptions import Conflict, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.documents.renderer import Renderer
from dpa_service.documents.seal import Seal
from dpa_service.notifications.outbox import JobFailed, enqueue_job, enqueue_many, register_job
from dpa_service.users import services as users

logger = logging.getLogger("dpa_service.agreements")

EXECUTE_JOB = "agreement.execute"
FAILED_TOPIC = "agreement.execution_failed"
# A render can fail for want of resources (a worker replaced, a timeout on a busy machine): worth a few tries.
ATTEMPTS = 4
FIRST_RETRY = timedelta(seconds=15)


def wants_async(prefer: str | None) -> bool:
    """Whether a `Prefer` header asks for `respond-async` (RFC 7240: comma-separated, parameters after `;`)."""
    if not prefer:
        return False
    return any(part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async" for part in prefer.split(","))


async def queue_countersign(
    db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID, *, base_url: str = ""
) -> AgreementPublic:
    """Check the countersignature as `execution.countersign` would, record it and queue the execution (202)."""
    if principal.role != Role.LEGAL:
        raise PermissionDenied("Only the processor's legal team countersigns.")
    tenant_id = await execution.countersignable(db, principal, agreement_id)
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        agreement = await find(session, agreement_id, lock=True)
        next_status(agreement, "countersign")
        execution.check_queue(agreement, None)
        await checks.before_signing(db, Scope.tenant(tenant_id), tenant_id)
        now = utcnow()
        agreement.execution_queued_at, agreement.execution_error, agreement.updated_at = now, None, now
        await audit.record(
            session,
            actor,
            "agreement.execution_queued",
            "agreement",
            agreement.id,
            tenant_id=agreement.tenant_id,
            data={"countersigned_at": rfc3339(now)},
        )
        payload = {
            "agreement_id": str(agreement.id),
            "tenant_id": str(agreement.tenant_id),
            "user_id": str(principal.user_id),
            "email": principal.email,
            "ip": actor.ip,
            "user_agent": actor.user_agent,
            "countersigned_at": now.isoformat(),
            "base_url": base_url,
        }
        await enqueue_job(session, EXECUTE_JOB, agreement.tenant_id, f"{EXECUTE_JOB}:{agreement.id}:{now}", payload)
        return public(agreement)


async def run_queued(db: Database, renderer: Renderer, seal: Seal, payload: dict[str, Any]) -> None:
    """The job: execute as the legal user who countersigned, with the time and address of their request."""
    agreement_id, tenant_id = uuid.UUID(payload["agreement_id"]), uuid.UUID(payload["tenant_id"])
    countersigned_at = datetime.fromisoformat(payload["countersigned_at"])
    if not await _still_queued(db, tenant_id, agreement_id, countersigned_at):
        return
    staff = await users.staff_member(db, payload["email"], Role.LEGAL)
    if staff is None or str(staff.id) != payload["user_id"]:
        raise JobFailed(f"{payload['email']} is no longer a member of the processor's legal team.")
    principal = Principal(staff.id, None, Role.LEGAL, staff.email, staff.name, api_key_id=None)
    actor = Actor(staff.id, Role.LEGAL.value, None, ip=payload.get("ip"), user_agent=payload.get("user_agent"))
    try:
        await execution.countersign(
            db, renderer, seal, actor, principal, agreement_id,
            base_url=payload.get("base_url", ""), countersigned_at=countersigned_at,
        )  # fmt: skip
    except Conflict as exc:
        if await _still_queued(db, tenant_id, agreement_id, countersigned_at):
            raise JobFailed(exc.detail) from exc


async def _still_queued(db: Database, tenant_id: uuid.UUID, agreement_id: uuid.UUID, queued_at: datetime) -> bool:
    """Whether the agreement still waits for this very execution; a stale mark (voided meanwhile) is cleared."""
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        agreement = await find(session, agreement_id, lock=True)
        queued = agreement.execution_queued_at
        if queued is None or as_utc(queued) != as_utc(queued_at):
            return False  # executed by hand, or countersigned again since: that one's job decides
        if agreement.status != AgreementStatus.SIGNED:
            agreement.execution_queued_at = None
            return False
        return True


async def execution_failed(db: Database, payload: dict[str, Any], reason: str) -> None:
    """The job is dead: the agreement stays signed and says why; the chain records it; legal is e-mailed."""
    agreement_id, tenant_id = uuid.UUID(payload["agreement_id"]), uuid.UUID(payload["tenant_id"])
    async with db.transaction(Scope.tenant(tenant_id)) as session:
        agreement = await find(session, agreement_id, lock=True)
        queued = agreement.execution_queued_at
        if queued is None or as_utc(queued) != as_utc(datetime.fromisoformat(payload["countersigned_at"])):
            return  # executed (an expired lease's second run may have), voided, or countersigned again since
        if agreement.status != AgreementStatus.SIGNED:
            agreement.execution_queued_at = None
            return
        agreement.execution_queued_at, agreement.execution_error = None, reason[:500]
        agreement.updated_at = utcnow()
        event = await audit.record(
            session,
            Actor.system("worker"),
            FAILED_TOPIC,
            "agreement",
            agreement.id,
            tenant_id=tenant_id,
            data={"reason": reason[:500], "countersigned_by": payload["email"], "status": agreement.status},
        )
        # E-mailed to legal; a tenant's webhook gets the same event (its own agreement), so it names no staff member.
        text = (
            f"The countersignature given to agreement {agreement.id} at {payload['countersigned_at']} could not be "
            f"executed, so nothing was sealed and the agreement is still signed. Reason: {reason[:300]}"
        )
        message = {
            "agreement_id": str(agreement.id),
            "reason": reason[:500],
            "email_staff": Role.LEGAL.value,
            "subject": "A countersignature could not be executed",
            "text": text,
        }
        await enqueue_many(session, FAILED_TOPIC, [(tenant_id, f"{FAILED_TOPIC}:{event.id}", message)])


def install(renderer: Renderer, seal: Seal) -> None:
    """Register the job with this process's renderer and seal (at start: `dpa serve` and `dpa worker`)."""

    async def run(db: Database, payload: dict[str, Any]) -> None:
        await run_queued(db, renderer, seal, payload)

    register_job(EXECUTE_JOB, run, on_dead=execution_failed, max_attempts=ATTEMPTS, first_retry=FIRST_RETRY)
