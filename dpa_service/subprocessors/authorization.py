"""What each tenant has authorized: the list its executed DPA pinned, advanced by the changes it accepted.

The record (`Authorization`) is written by this domain's reaction to a DPA's execution, so nothing here reads the
agreements' tables. A tenant's authorized list is the pinned version advanced by each later change it accepted
(expressly, deemed at the deadline, or by withdrawing its objection), in order: an objection that stands stops the
chain, since each version builds on the one before.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database
from dpa_service.core.events import AgreementExecuted
from dpa_service.core.exceptions import NotFound
from dpa_service.core.identity import Principal
from dpa_service.subprocessors.models import (
    Acceptance,
    AcceptanceKind,
    AcceptancePublic,
    Authorization,
    ChangeState,
    Objection,
    ObjectionPublic,
    PendingChange,
    SubprocessorChange,
    SubprocessorVersion,
    TenantAuthorization,
)
from dpa_service.subprocessors.versions import public_item


def current_authorizations() -> Any:
    """Each tenant's current authorization: at most one per tenant (executing a DPA ends the previous one)."""
    return select(
        col(Authorization.tenant_id),
        col(Authorization.list_version),
        col(Authorization.agreement_id),
        col(Authorization.contact_email),
    ).where(col(Authorization.ended_at).is_(None))


async def authorization_of(session: AsyncSession, tenant_id: uuid.UUID) -> Authorization | None:
    query = select(Authorization).where(
        col(Authorization.tenant_id) == tenant_id, col(Authorization.ended_at).is_(None)
    )
    return (await session.execute(query.limit(1))).scalar_one_or_none()


async def record_executed(session: AsyncSession, event: AgreementExecuted) -> None:
    """The DPA's execution, as this domain keeps it: the list version it pinned and its notice address."""
    await session.execute(
        update(Authorization)
        .where(col(Authorization.tenant_id) == event.tenant_id, col(Authorization.ended_at).is_(None))
        .values(ended_at=event.executed_at)
    )
    session.add(
        Authorization(
            agreement_id=event.agreement_id,
            tenant_id=event.tenant_id,
            list_version=event.subprocessor_list_version,
            contact_email=event.contact_email,
            authorized_at=event.executed_at,
        )
    )
    await session.flush()


def _empty() -> TenantAuthorization:
    return TenantAuthorization(
        authorized_version=None,
        agreement_id=None,
        effective_at=None,
        items=[],
        accepted_changes=[],
        pending_changes=[],
        objected_changes=[],
    )


async def tenant_authorization(db: Database, principal: Principal) -> TenantAuthorization:
    """The caller's authorized list, the changes it accepted since its DPA, and those still open."""
    tenant_id = principal.tenant_id
    if tenant_id is None:
        return _empty()
    async with db.transaction(principal.scope, write=False) as session:
        found = await authorizations_of(session, [tenant_id])
    return found.get(tenant_id) or _empty()


async def authorizations_of(
    session: AsyncSession, tenant_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, TenantAuthorization]:
    """The authorized list of each of `tenant_ids` that has one, in five queries however many tenants (the records
    of processing export reads tenants in batches): authorizations, the later changes, both kinds of answer, and the
    list versions they lead to."""
    wanted = list(tenant_ids)
    authorizations = list(
        (
            await session.execute(
                select(Authorization).where(
                    col(Authorization.tenant_id).in_(wanted), col(Authorization.ended_at).is_(None)
                )
            )
        ).scalars()
    )
    if not authorizations:
        return {}
    lowest = min(a.list_version for a in authorizations)
    changes = list(
        (
            await session.execute(
                select(SubprocessorChange)
                .where(
                    col(SubprocessorChange.state) == ChangeState.PUBLISHED.value,
                    col(SubprocessorChange.version) > lowest,
                )
                .order_by(col(SubprocessorChange.version))
            )
        ).scalars()
    )
    objections, acceptances = await _answers(session, wanted, [change.id for change in changes])
    walked = {
        a.tenant_id: (
            a,
            _walk(
                a.tenant_id,
                a.list_version,
                [change for change in changes if (change.version or 0) > a.list_version],
                objections.get(a.tenant_id, {}),
                acceptances.get(a.tenant_id, {}),
            ),
        )
        for a in authorizations
    }
    numbers = {number for _, (number, *_) in walked.values()}
    versions = {
        v.number: v
        for v in (
            await session.execute(select(SubprocessorVersion).where(col(SubprocessorVersion.number).in_(numbers)))
        ).scalars()
    }
    missing = numbers - versions.keys()
    if missing:
        raise NotFound(f"Sub-processor list version {min(missing)} not found.")
    items = {number: [public_item(item) for item in version.items] for number, version in versions.items()}
    return {
        tenant_id: TenantAuthorization(
            authorized_version=number,
            agreement_id=authorization.agreement_id,
            effective_at=versions[number].effective_at,
            items=items[number],
            accepted_changes=accepted,
            pending_changes=pending,
            objected_changes=objected,
        )
        for tenant_id, (authorization, (number, accepted, pending, objected)) in walked.items()
    }


async def _answers(
    session: AsyncSession, tenant_ids: list[uuid.UUID], change_ids: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, dict[uuid.UUID, Objection]], dict[uuid.UUID, dict[uuid.UUID, Acceptance]]]:
    """Each tenant's objections and acceptances of the given changes, by tenant, then by change."""
    objections: dict[uuid.UUID, dict[uuid.UUID, Objection]] = defaultdict(dict)
    acceptances: dict[uuid.UUID, dict[uuid.UUID, Acceptance]] = defaultdict(dict)
    if not change_ids:
        return objections, acceptances
    for objection in (
        await session.execute(
            select(Objection).where(col(Objection.tenant_id).in_(tenant_ids), col(Objection.change_id).in_(change_ids))
        )
    ).scalars():
        objections[objection.tenant_id][objection.change_id] = objection
    for acceptance in (
        await session.execute(
            select(Acceptance).where(
                col(Acceptance.tenant_id).in_(tenant_ids), col(Acceptance.change_id).in_(change_ids)
            )
        )
    ).scalars():
        acceptances[acceptance.tenant_id][acceptance.change_id] = acceptance
    return objections, acceptances


def _walk(
    tenant_id: uuid.UUID,
    number: int,
    changes: list[SubprocessorChange],
    objections: dict[uuid.UUID, Objection],
    acceptances: dict[uuid.UUID, Acceptance],
) -> tuple[int, list[AcceptancePublic], list[PendingChange], list[PendingChange]]:
    """Advance the authorized version through the changes, in order, while each is accepted."""
    now = utcnow()
    chain_intact = True
    accepted: list[AcceptancePublic] = []
    pending: list[PendingChange] = []
    objected: list[PendingChange] = []
    for change in changes:
        objection, acceptance = objections.get(change.id), acceptances.get(change.id)
        effective = as_utc(change.effective_at) <= now  # type: ignore[arg-type]
        answer = AcceptancePublic.model_validate(acceptance, from_attributes=True) if acceptance else None
        if answer is None and effective and objection is None:
            # Deemed at the deadline; the job writes the row, but the answer does not wait for it.
            answer = AcceptancePublic(
                id=None,
                tenant_id=tenant_id,
                change_id=change.id,
                version=change.version or 0,
                kind=AcceptanceKind.DEEMED.value,
                accepted_at=change.effective_at,  # type: ignore[arg-type]
                accepted_by=None,
            )
        entry = PendingChange(
            id=change.id,
            version=change.version or 0,
            effective_at=change.effective_at,  # type: ignore[arg-type]
            added=change.added,
            removed=change.removed,
            reason=change.reason,
            objection=ObjectionPublic.of(objection) if objection else None,
            accepted=answer,
        )
        if not effective:
            pending.append(entry)
        elif answer is None:
            objected.append(entry)
            chain_intact = False
        else:
            accepted.append(answer)
            if chain_intact:
                number = change.version or number
    return number, accepted, pending, objected
