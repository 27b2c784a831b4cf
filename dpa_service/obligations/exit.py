"""The exit: the main agreement ends on a date, the Subscriber's deletion obligation gets its due date, and the
processor certifies its own deletion.

* Termination (one per tenant). The Subscriber's owner records its own end date, today or later; legal records one
  for any tenant, also after the fact (a termination legal learns of late), but not more than a year back: older
  ends are a records clean-up, not an exit to run. Nobody records an end more than ten years ahead. From the
  moment it is recorded the tenant is in exit and signs no new DPA (`reactions.refuse_in_exit`, a check agreements
  asks through `core.events.checks`), not even one already out for signature or signed.
* The deletion obligation (`delete_end_user_data`, clause 9.7 of the standard DPA) is due `ends_on` + the days the
  tenant's executed DPA's template version gives (`within_days_of_termination.days`; 30 when it has none). The
  figure is stored with the termination, so a later template change does not move a deadline already running.
* The processor's own deletion (Art. 28(3)(g) GDPR: "at the choice of the controller, deletes or returns all the
  personal data to the controller after the end of the provision of services relating to processing, and deletes
  existing copies unless Union or Member State law requires storage"). Clause 10.2 of the standard DPA times it:
  the Subscriber may export its data for 30 days after the end, and "within a further thirty (30) days the
  Processor shall delete" it. So a deletion is certified no earlier than `ends_on` + 30 days (before, the
  Subscriber could still be exporting), and is due by `ends_on` + 60 (`processor_deletion_due_on`; overdue after
  it while no certificate is issued). No data file carries these two figures (the template's obligations list
  is the Subscriber's duties, not the processor's), hence the constants below. Legal issues a deletion certificate,
  a PDF listing the parties, the agreements, what was deleted on which systems and when, sealed with the service's key
  like an executed DPA and stored once with its SHA-256, so `POST /documents/verify` and `dpa verify` check it.

Every step is audited in the tenant's chain and told to the tenant's owners and admins through the outbox.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.obligations import exit_lookup
from dpa_service.obligations.exit_models import (
    DeletionCertificatePublic,
    TerminationCreate,
    TerminationPublic,
)
from dpa_service.obligations.models import DeletionCertificate, Termination
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants

DELETION_CODE = "delete_end_user_data"
DEFAULT_DELETION_DAYS = 30  # clause 9.7 of standard-dpa ("within 30 days after the Main Agreement ends")
# Clause 10.2 of the standard DPA: the Subscriber "may export ... for thirty (30) days after termination or expiry
# of the Main Agreement. Within a further thirty (30) days the Processor shall delete".
EXPORT_WINDOW = timedelta(days=30)
PROCESSOR_DELETION_WITHIN = timedelta(days=30)
LEGAL_BACKDATING = timedelta(days=365)
FURTHEST_END = timedelta(days=3650)
TERMINATION_TOPIC = "tenant.termination_recorded"
CERTIFICATE_TOPIC = "deletion_certificate.issued"


def deletion_days(obligations: list[dict[str, Any]]) -> int:
    """The days a template version's `delete_end_user_data` entry gives after termination (default 30)."""
    for entry in obligations:
        deadline = entry.get("deadline") or {}
        if entry.get("code") == DELETION_CODE and deadline.get("rule") == "within_days_of_termination":
            days = deadline.get("days")
            if isinstance(days, int) and days >= 0:
                return days
    return DEFAULT_DELETION_DAYS


def export_ends_on(ends_on: date) -> date:
    """The last day of the Subscriber's export window, and the first on which the processor may delete (10.2)."""
    return ends_on + EXPORT_WINDOW


def processor_deletion_due_on(ends_on: date) -> date:
    """When the processor must have deleted the tenant's data: the export window, then 30 days (clause 10.2)."""
    return export_ends_on(ends_on) + PROCESSOR_DELETION_WITHIN


def processor_deletion_overdue(termination: TerminationPublic, today: date) -> bool:
    return termination.deletion_certificate_id is None and termination.processor_deletion_due_on < today


def public(termination: Termination, certificate_id: uuid.UUID | None = None) -> TerminationPublic:
    return TerminationPublic.model_validate(
        termination,
        from_attributes=True,
        update={
            "processor_deletion_due_on": processor_deletion_due_on(termination.ends_on),
            "deletion_certificate_id": certificate_id,
        },
    )


def certificate_public(certificate: DeletionCertificate) -> DeletionCertificatePublic:
    return DeletionCertificatePublic.model_validate(certificate, from_attributes=True)


async def _executed_agreements(db: Database, principal: Principal, tenant_id: uuid.UUID) -> list[Any]:
    """The tenant's executed and superseded DPAs (a tenant has a handful: one page is all of them)."""
    page = await agreements.list_agreements(db, principal, tenant_id=tenant_id, status=None, cursor=None, limit=200)
    return [a for a in page.items if a.status in ("executed", "superseded")]


async def _deletion_days_for(db: Database, principal: Principal, tenant_id: uuid.UUID) -> int:
    executed = [a for a in await _executed_agreements(db, principal, tenant_id) if a.status == "executed"]
    if not executed:
        return DEFAULT_DELETION_DAYS
    version = await templates.version_by_id(db, principal.scope, executed[-1].template_id)
    return deletion_days(version.obligations)


async def _target_tenant(db: Database, principal: Principal, requested: uuid.UUID | None) -> tenants.TenantPublic:
    """Whose exit this is: a Subscriber's own tenant (naming another is 404, as for any other tenant's object),
    or for legal the tenant the body names."""
    if principal.tenant_id is not None:
        if requested is not None and requested != principal.tenant_id:
            raise NotFound("Tenant not found.")
        return await tenants.get_tenant(db, principal.scope, principal.tenant_id)
    if requested is None:
        raise InvalidInput.field("tenant_id", "name the tenant whose main agreement ends")
    try:
        return await tenants.get_tenant(db, principal.scope, requested)
    except NotFound as exc:
        raise InvalidInput.field("tenant_id", "is not a tenant of this service") from exc


def _check_ends_on(principal: Principal, ends_on: date) -> None:
    today = utcnow().date()
    if principal.role == Role.LEGAL and ends_on < today - LEGAL_BACKDATING:
        raise InvalidInput.field("ends_on", f"is more than a year ago (the earliest is {today - LEGAL_BACKDATING})")
    if principal.role != Role.LEGAL and ends_on < today:
        raise InvalidInput.field("ends_on", "is in the past: the main agreement can end today at the earliest")
    if ends_on > today + FURTHEST_END:
        raise InvalidInput.field("ends_on", "is more than ten years ahead")


async def record_termination(
    db: Database, actor: Actor, principal: Principal, data: TerminationCreate, *, base_url: str = ""
) -> TerminationPublic:
    """Record that the tenant's main agreement ends on `ends_on` (owner: its own; legal: `tenant_id`'s)."""
    if principal.role not in (Role.OWNER, Role.LEGAL):
        raise PermissionDenied("The tenant's owner or the processor's legal team records the end of the agreement.")
    tenant = await _target_tenant(db, principal, data.tenant_id)
    _check_ends_on(principal, data.ends_on)
    days = await _deletion_days_for(db, principal, tenant.id)
    async with db.transaction(principal.scope) as session:
        existing = await session.scalar(select(Termination).where(col(Termination.tenant_id) == tenant.id))
        if existing is not None:
            raise Conflict(f"The main agreement of this tenant already ends on {existing.ends_on}.")
        termination = Termination(
            id=new_id(),
            tenant_id=tenant.id,
            ends_on=data.ends_on,
            reason=data.reason or None,
            deletion_days=days,
            deletion_due_on=data.ends_on + timedelta(days=days),
            recorded_by=principal.user_id,
            recorded_by_role=principal.role.value,
            recorded_at=utcnow(),
        )
        session.add(termination)
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError as exc:  # recorded by someone else a moment ago
            raise Conflict("The main agreement of this tenant already has an end date.") from exc
        facts = {
            "termination_id": str(termination.id),
            "ends_on": termination.ends_on.isoformat(),
            "deletion_due_on": termination.deletion_due_on.isoformat(),
            "deletion_days": days,
            "processor_deletion_due_on": processor_deletion_due_on(termination.ends_on).isoformat(),
        }
        await audit.record(
            session,
            actor,
            TERMINATION_TOPIC,
            "tenant",
            tenant.id,
            tenant_id=tenant.id,
            data={**facts, "recorded_by_role": termination.recorded_by_role, "reason": termination.reason},
        )
        await enqueue_many(
            session,
            TERMINATION_TOPIC,
            [(tenant.id, f"{TERMINATION_TOPIC}:{termination.id}", {**facts, **_termination_mail(tenant, termination,
                                                                                                   base_url)})],
        )  # fmt: skip
        return public(termination)


def _termination_mail(tenant: tenants.TenantPublic, termination: Termination, base_url: str) -> dict[str, str]:
    processor = registry.processor()["legal_name"]
    text = (
        f"The main agreement between {tenant.legal_name} and {processor} ends on {termination.ends_on}.\n\n"
        f"From now on no new Data Processing Agreement can be signed for {tenant.name}.\n\n"
        f"Under clause 9.7 of your DPA, delete the end-user data collected through the service that you hold outside "
        f"it, and remove the chat widget from your websites and apps, within {termination.deletion_days} days: by "
        f"{termination.deletion_due_on}. Then attest the deletion here:\n{base_url}/app/obligations\n\n"
        f"Under clause 10.2 you may export your data through the service until {export_ends_on(termination.ends_on)}; "
        f"{processor} then deletes it, by {processor_deletion_due_on(termination.ends_on)}, and certifies it.\n\n"
        f"The exit, and the processor's deletion certificate once issued: {base_url}/app/exit"
    )
    return {"subject": f"Your main agreement ends on {termination.ends_on}", "text": text}


async def get_termination(db: Database, principal: Principal, tenant_id: uuid.UUID | None) -> TerminationPublic:
    """The tenant's termination (404 if none): a Subscriber's own; legal names the tenant."""
    wanted = principal.tenant_id or tenant_id
    if wanted is None:
        raise InvalidInput.field("tenant_id", "name the tenant (legal reads any tenant's termination)")
    async with db.transaction(principal.scope, write=False) as session:
        found = await session.scalar(select(Termination).where(col(Termination.tenant_id) == wanted))
        if found is None:
            raise NotFound("No termination is recorded for this tenant.")
        certificates = await exit_lookup.first_certificates(session, [found.tenant_id])
    return public(found, certificates.get(found.tenant_id))


async def find_termination(db: Database, principal: Principal, tenant_id: uuid.UUID | None) -> TerminationPublic | None:
    """The tenant's termination, or None (pages show the form then)."""
    try:
        return await get_termination(db, principal, tenant_id)
    except NotFound:
        return None


async def list_terminations(
    db: Database, principal: Principal, *, cursor: str | None, limit: int
) -> Page[TerminationPublic]:
    """Tenants in exit, those whose deletion falls due first first (legal's list; a Subscriber sees its own)."""
    query = select(Termination).order_by(col(Termination.deletion_due_on), col(Termination.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        # Keyset on (due date, id): the cursor is the last row's id, whose due date is looked up.
        due = select(col(Termination.deletion_due_on)).where(col(Termination.id) == after).scalar_subquery()
        query = query.where(
            (col(Termination.deletion_due_on) > due)
            | ((col(Termination.deletion_due_on) == due) & (col(Termination.id) > after))
        )
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session)) is not None:
            query = query.where(col(Termination.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
        certificates = await exit_lookup.first_certificates(session, [t.tenant_id for t in rows[:limit]])
    return page_of(rows, limit, lambda t: public(t, certificates.get(t.tenant_id)), lambda t: str(t.id))
