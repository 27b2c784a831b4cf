"""Contracts: sales (and legal) create one for a tenant, attach and detach that tenant's DPAs, and close it; the
"DPA executed" gate refuses `won` without an executed, current DPA attached (409 saying why). Subscribers read
their own tenant's contracts. Every write is audited in the tenant's chain; a change of the derived DPA status is
announced (`standing.refresh`) in the same transaction.

    open --close(won: executed, current DPA attached)--> won
    open --close(lost)--> lost                           (closing twice: 409)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.contracts import standing
from dpa_service.contracts.models import (
    AttachCreate,
    CloseCreate,
    Contract,
    ContractAgreement,
    ContractCreate,
    ContractPublic,
    ContractStatus,
    DpaStatus,
)
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.http.pagination import Page, decode_id_cursor, encode_cursor
from dpa_service.tenants import services as tenants

WRITERS = (Role.SALES, Role.LEGAL)
GATE = "A contract is won only with an executed, current DPA attached"


def _may_write(principal: Principal) -> None:
    if principal.role not in WRITERS:
        raise PermissionDenied("Contracts are created, changed and closed by the processor's sales or legal staff.")


def public(contract: Contract, attached: list[uuid.UUID], derived: standing.Standing) -> ContractPublic:
    return ContractPublic.model_validate(
        contract,
        from_attributes=True,
        update={"dpa_status": derived.status, "dpa_detail": derived.reason, "agreements": attached},
    )


async def _publics(
    db: Database, principal: Principal, session: AsyncSession, rows: Sequence[Contract]
) -> list[ContractPublic]:
    links = await standing.links_of(session, [row.id for row in rows])
    derived = await standing.standings(db, principal.scope, links)
    return [public(row, links[row.id], derived[row.id]) for row in rows]


async def _find(session: AsyncSession, contract_id: uuid.UUID, *, lock: bool = False) -> Contract:
    """Within the session's scope: a Subscriber finds its own tenant's contracts only (another's is not found)."""
    query = select(Contract).where(col(Contract.id) == contract_id)
    if (tenant := tenant_of(session)) is not None:
        query = query.where(col(Contract.tenant_id) == tenant)
    contract = (await session.execute(query.with_for_update() if lock else query)).scalar_one_or_none()
    if contract is None:
        raise NotFound("Contract not found.")
    return contract


async def create_contract(db: Database, actor: Actor, principal: Principal, data: ContractCreate) -> ContractPublic:
    """A new open contract for `tenant_id`, owned by its creator; `dpa_status` starts `missing`."""
    _may_write(principal)
    if data.value is not None and data.currency is None:
        raise InvalidInput.field("currency", "is required when a value is given (ISO 4217, e.g. EUR)")
    if not await tenants.names(db, principal.scope, [data.tenant_id]):
        raise InvalidInput.field("tenant_id", "is not a tenant of this service")
    async with db.transaction(principal.scope) as session:
        taken = await session.scalar(
            select(func.count())
            .select_from(Contract)
            .where(col(Contract.tenant_id) == data.tenant_id, col(Contract.reference) == data.reference)
        )
        if taken:
            message = "is already the reference of another contract of this tenant"
            raise Conflict("A contract with this reference exists.", [FieldError("reference", message)])
        contract = Contract(**data.model_dump(), owner_id=principal.user_id)
        session.add(contract)
        await session.flush()
        await audit.record(session, actor, "contract.created", "contract", contract.id, tenant_id=contract.tenant_id,
                           data={"reference": contract.reference, "title": contract.title, "value": contract.value,
                                 "currency": contract.currency})  # fmt: skip
        return (await _publics(db, principal, session, [contract]))[0]


async def get_contract(db: Database, principal: Principal, contract_id: uuid.UUID) -> ContractPublic:
    async with db.transaction(principal.scope, write=False) as session:
        return (await _publics(db, principal, session, [await _find(session, contract_id)]))[0]


async def list_contracts(
    db: Database, principal: Principal, *, tenant_id: uuid.UUID | None, cursor: str | None, limit: int
) -> Page[ContractPublic]:
    """A Subscriber's own tenant's contracts; staff see every tenant's (`tenant_id` narrows). Oldest first."""
    query = select(Contract).order_by(col(Contract.id)).limit(limit + 1)
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Contract.id) > after)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(Contract.tenant_id) == tenant)
        rows = (await session.execute(query)).scalars().all()
        items = await _publics(db, principal, session, rows[:limit])
    more = len(rows) > limit
    return Page[ContractPublic](items=items, next_cursor=encode_cursor(str(items[-1].id)) if more else None)


def _still_open(contract: Contract) -> None:
    if contract.status != ContractStatus.OPEN:
        when = contract.closed_at.date().isoformat() if contract.closed_at else "before"
        raise Conflict(f"This contract was closed ({contract.status}, {when}): its DPAs are a record now.")


async def attach(
    db: Database, actor: Actor, principal: Principal, contract_id: uuid.UUID, data: AttachCreate
) -> ContractPublic:
    """Attach one of the contract's tenant's agreements (another tenant's, or an unknown id, is 422 naming
    `agreement_id`); attaching one already attached changes nothing."""
    _may_write(principal)
    async with db.transaction(principal.scope) as session:
        contract = await _find(session, contract_id, lock=True)
        _still_open(contract)
        facts = (await agreements.agreement_facts(db, principal.scope, [data.agreement_id])).get(data.agreement_id)
        if facts is None or facts.tenant_id != contract.tenant_id:
            raise InvalidInput.field("agreement_id", "is not an agreement of this contract's tenant")
        if facts.status == "voided":
            raise InvalidInput.field("agreement_id", "is a voided agreement: attach one that is executed or on its way")
        links = await standing.links_of(session, [contract.id])
        if data.agreement_id not in links[contract.id]:
            session.add(ContractAgreement(tenant_id=contract.tenant_id, contract_id=contract.id,
                                          agreement_id=data.agreement_id, attached_by=principal.user_id))  # fmt: skip
            contract.updated_at = utcnow()
            await audit.record(session, actor, "contract.agreement_attached", "contract", contract.id,
                               tenant_id=contract.tenant_id,
                               data={"agreement_id": str(data.agreement_id), "via": "manual"})  # fmt: skip
            await standing.refresh(db, principal.scope, actor, cause="attached", contract_ids=[contract.id])
        return (await _publics(db, principal, session, [contract]))[0]


async def detach(
    db: Database, actor: Actor, principal: Principal, contract_id: uuid.UUID, agreement_id: uuid.UUID
) -> None:
    """Detach an agreement (404 when it is not attached)."""
    _may_write(principal)
    async with db.transaction(principal.scope) as session:
        contract = await _find(session, contract_id, lock=True)
        _still_open(contract)
        removed = await session.execute(
            delete(ContractAgreement).where(
                col(ContractAgreement.contract_id) == contract.id, col(ContractAgreement.agreement_id) == agreement_id
            )
        )
        if not removed.rowcount:  # type: ignore[attr-defined]
            raise NotFound("That agreement is not attached to this contract.")
        contract.updated_at = utcnow()
        await audit.record(session, actor, "contract.agreement_detached", "contract", contract.id,
                           tenant_id=contract.tenant_id, data={"agreement_id": str(agreement_id)})  # fmt: skip
        await standing.refresh(db, principal.scope, actor, cause="detached", contract_ids=[contract.id])


async def close(
    db: Database, actor: Actor, principal: Principal, contract_id: uuid.UUID, data: CloseCreate
) -> ContractPublic:
    """Close as `won` (only with an executed, current DPA attached: else 409 saying why) or `lost`."""
    _may_write(principal)
    async with db.transaction(principal.scope) as session:
        contract = await _find(session, contract_id, lock=True)
        _still_open(contract)
        links = await standing.links_of(session, [contract.id])
        derived = (await standing.standings(db, principal.scope, links))[contract.id]
        if data.outcome == ContractStatus.WON and derived.status != DpaStatus.EXECUTED:
            raise Conflict(f"{GATE}: {derived.reason[:1].lower()}{derived.reason[1:]}")
        now = utcnow()
        contract.status, contract.closed_at, contract.closed_by, contract.updated_at = (
            data.outcome,
            now,
            principal.user_id,
            now,
        )
        await audit.record(session, actor, "contract.closed", "contract", contract.id, tenant_id=contract.tenant_id,
                           data={"outcome": data.outcome, "dpa_status": derived.status.value,
                                 "current_agreements": [str(a) for a in derived.current]})  # fmt: skip
        return public(contract, links[contract.id], derived)


async def announce_dated_changes(db: Database) -> int:
    """Derive every contract's DPA status again and announce what moved without an event: a mechanism whose
    recorded invalidation (or whose registry end date) has now arrived. Reads always derive the status afresh;
    this keeps the stored status, and so the `contract.dpa_status_changed` webhook, in step (housekeeping, once a
    day). Returns how many contracts changed."""
    return await standing.refresh(db, Scope.system(), Actor.system("housekeeping"), cause="date_passed")
