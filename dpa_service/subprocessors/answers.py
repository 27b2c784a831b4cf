"""A tenant's answer to a change: objections (resolved by legal) and acceptances (express, deemed, or by
withdrawing an objection). Only a tenant with an executed DPA answers, and only before the change takes effect."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, rfc3339, utcnow
from dpa_service.core.db import Database, tenant_of
from dpa_service.core.exceptions import Conflict, NotFound
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.subprocessors.authorization import authorization_of
from dpa_service.subprocessors.models import (
    Acceptance,
    AcceptanceKind,
    AcceptancePublic,
    ChangeState,
    Objection,
    ObjectionCreate,
    ObjectionOutcome,
    ObjectionPublic,
    ObjectionResolve,
    SubprocessorChange,
)

RESOLVED_TOPIC = "subprocessor.objection_resolved"


async def _open_for_answer(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> SubprocessorChange:
    """The change a tenant may still object to or accept, or the 409 that says why not.

    The change row is share-locked before the clock is read: the deemed-acceptance job locks it exclusively, so
    an answer given in time is committed before the job looks for answers, and one given late sees the deadline
    passed."""
    change = await session.get(SubprocessorChange, change_id, with_for_update={"read": True})
    if change is None or change.state != ChangeState.PUBLISHED.value:
        raise NotFound("No such sub-processor change.")
    if session.get_bind().dialect.name == "postgresql":  # one answer at a time per tenant and change (two admins)
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"answer:{tenant_id}:{change.id}"}
        )
    executed = await authorization_of(session, tenant_id)
    if executed is None:
        raise Conflict("Only a Subscriber with an executed DPA can answer a sub-processor change.")
    pinned = executed.list_version
    if change.version is not None and change.version <= pinned:
        raise Conflict(f"Your executed DPA already authorizes list version {pinned}, which includes this change.")
    if as_utc(change.effective_at) <= utcnow():  # type: ignore[arg-type]
        raise Conflict(
            f"The notice period ended on {rfc3339(change.effective_at)}: the change is effective."  # type: ignore[arg-type]
        )
    if await _objection_of(session, tenant_id, change.id) is not None:
        raise Conflict("Your organisation has objected to this change; legal resolves the objection.")
    if await _acceptance_of(session, tenant_id, change.id) is not None:
        raise Conflict("Your organisation has already accepted this change.")
    return change


def _own_tenant(principal: Principal) -> uuid.UUID:
    if principal.tenant_id is None:
        raise NotFound("No such sub-processor change.")
    return principal.tenant_id


async def object_to(
    db: Database, actor: Actor, principal: Principal, change_id: uuid.UUID, data: ObjectionCreate
) -> ObjectionPublic:
    """The tenant objects to a pending change (Art. 28(2)); legal resolves the objection."""
    tenant_id = _own_tenant(principal)
    async with db.transaction(principal.scope) as session:
        change = await _open_for_answer(session, tenant_id, change_id)
        objection = Objection(
            id=new_id(),
            tenant_id=tenant_id,
            change_id=change.id,
            version=change.version or 0,
            reason=data.reason,
            raised_by=actor.user_id,
            raised_at=utcnow(),
        )
        session.add(objection)
        await _flush_once(session, "Your organisation has already objected to this change.")
        await audit.record(
            session,
            actor,
            "subprocessor_change.objected",
            "subprocessor_objection",
            objection.id,
            tenant_id=tenant_id,
            data={"change_id": str(change.id), "version": change.version, "reason": data.reason},
        )
        return ObjectionPublic.of(objection)


async def accept(db: Database, actor: Actor, principal: Principal, change_id: uuid.UUID) -> AcceptancePublic:
    """A tenant accepts a pending change expressly (it then needs no deemed acceptance)."""
    tenant_id = _own_tenant(principal)
    async with db.transaction(principal.scope) as session:
        change = await _open_for_answer(session, tenant_id, change_id)
        acceptance = Acceptance(
            id=new_id(),
            tenant_id=tenant_id,
            change_id=change.id,
            version=change.version or 0,
            kind=AcceptanceKind.EXPRESS.value,
            accepted_at=utcnow(),
            accepted_by=actor.user_id,
        )
        session.add(acceptance)
        await _flush_once(session, "Your organisation has already answered this change.")
        await audit.record(
            session,
            actor,
            "subprocessor_change.accepted",
            "subprocessor_change",
            change.id,
            tenant_id=tenant_id,
            data={"version": change.version, "kind": acceptance.kind},
        )
        return AcceptancePublic.model_validate(acceptance, from_attributes=True)


async def _flush_once(session: AsyncSession, message: str) -> None:
    """A second answer racing the first (same tenant, same change) meets the unique index: 409, not 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(message) from exc


async def _objection_of(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> Objection | None:
    query = select(Objection).where(col(Objection.tenant_id) == tenant_id, col(Objection.change_id) == change_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _acceptance_of(session: AsyncSession, tenant_id: uuid.UUID, change_id: uuid.UUID) -> Acceptance | None:
    query = select(Acceptance).where(col(Acceptance.tenant_id) == tenant_id, col(Acceptance.change_id) == change_id)
    return (await session.execute(query)).scalar_one_or_none()


async def _objections(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID | None,
    change_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Objection]:
    query = select(Objection)
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(col(Objection.tenant_id) == tenant)
    if change_id is not None:
        query = query.where(col(Objection.change_id) == change_id)
    if status == "open":
        query = query.where(col(Objection.resolved_at).is_(None))
    elif status == "resolved":
        query = query.where(col(Objection.resolved_at).is_not(None))
    if after is not None:
        query = query.where(col(Objection.id) > after)
    return list((await session.execute(query.order_by(col(Objection.id)).limit(limit + 1))).scalars())


async def list_objections(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None,
    change_id: uuid.UUID | None,
    status: str | None,
    cursor: str | None,
    limit: int,
) -> Page[ObjectionPublic]:
    async with db.transaction(principal.scope, write=False) as session:
        rows = await _objections(
            session,
            tenant_id=tenant_id,
            change_id=change_id,
            status=status,
            after=decode_id_cursor(cursor),
            limit=limit,
        )
    return page_of(rows, limit, ObjectionPublic.of, lambda o: str(o.id))


async def get_objection(db: Database, principal: Principal, objection_id: uuid.UUID) -> ObjectionPublic:
    async with db.transaction(principal.scope, write=False) as session:
        query = select(Objection).where(col(Objection.id) == objection_id)
        if (tenant := tenant_of(session)) is not None:
            query = query.where(col(Objection.tenant_id) == tenant)
        found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("No such objection.")
    return ObjectionPublic.of(found)


async def resolve_objection(
    db: Database, actor: Actor, principal: Principal, objection_id: uuid.UUID, data: ObjectionResolve
) -> ObjectionPublic:
    """Legal's answer to an objection; the tenant is told of it, in the words recorded."""
    async with db.transaction(principal.scope) as session:
        objection = await _open_objection(session, objection_id)
        await _close(session, actor, objection, data.resolution, data.outcome, accepted_by=None)
        await enqueue_many(session, RESOLVED_TOPIC, [_resolution_notice(objection, data.resolution)])
        return ObjectionPublic.of(objection)


def _resolution_notice(objection: Objection, resolution: str) -> tuple[uuid.UUID, str, dict[str, Any]]:
    # The tenant hears of every resolution, in the words recorded: nothing is decided behind its back.
    return (
        objection.tenant_id,
        f"{RESOLVED_TOPIC}:{objection.id}",
        {
            "objection_id": str(objection.id),
            "change_id": str(objection.change_id),
            "version": objection.version,
            "outcome": objection.outcome,
            "resolution": resolution,
            "subject": f"Your objection to sub-processor list version {objection.version}: {objection.outcome}",
            "text": f"The processor's legal team resolved your objection ({objection.outcome}):\n\n{resolution}",
        },
    )


async def withdraw_objection(
    db: Database, actor: Actor, principal: Principal, objection_id: uuid.UUID
) -> ObjectionPublic:
    """The tenant itself withdraws its objection: that is its acceptance of the change, signed by the user."""
    async with db.transaction(principal.scope) as session:
        objection = await _open_objection(session, objection_id)
        await _close(
            session,
            actor,
            objection,
            "Withdrawn by the Subscriber",
            ObjectionOutcome.WITHDRAWN,
            accepted_by=actor.user_id,
        )
        return ObjectionPublic.of(objection)


async def _open_objection(session: AsyncSession, objection_id: uuid.UUID) -> Objection:
    query = select(Objection).where(col(Objection.id) == objection_id).with_for_update()
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(Objection.tenant_id) == tenant)
    objection = (await session.execute(query)).scalar_one_or_none()
    if objection is None:
        raise NotFound("No such objection.")
    if objection.resolved_at is not None:
        raise Conflict("This objection is already resolved.")
    return objection


async def _close(
    session: AsyncSession,
    actor: Actor,
    objection: Objection,
    resolution: str,
    outcome: ObjectionOutcome,
    *,
    accepted_by: uuid.UUID | None,
) -> None:
    """Record the resolution (and, when withdrawn, the tenant's acceptance dated now), audited in its chain."""
    now = utcnow()
    objection.resolution, objection.outcome = resolution, outcome.value
    objection.resolved_by, objection.resolved_at = actor.user_id, now
    if (
        outcome == ObjectionOutcome.WITHDRAWN
        and await _acceptance_of(session, objection.tenant_id, objection.change_id) is None
    ):
        session.add(
            Acceptance(
                id=new_id(),
                tenant_id=objection.tenant_id,
                change_id=objection.change_id,
                version=objection.version,
                kind=AcceptanceKind.OBJECTION_WITHDRAWN.value,
                accepted_at=now,
                accepted_by=accepted_by,
            )
        )
    await session.flush()
    await audit.record(
        session,
        actor,
        "subprocessor_objection.resolved",
        "subprocessor_objection",
        objection.id,
        tenant_id=objection.tenant_id,
        data={"change_id": str(objection.change_id), "outcome": objection.outcome, "resolution": resolution},
    )
