"""A contract's DPA status, derived from its attached agreements, and the bulk refresh that announces its changes.

    executed     an attached DPA is executed and current (its template version not retired, none of the transfer
                 mechanisms it relies on invalid today)
    outdated     otherwise, an attached DPA was executed but is superseded, on a retired template version, or
                 relies on a mechanism invalid today
    in_progress  otherwise, an attached DPA is on its way (draft ... signed)
    missing      otherwise (nothing attached, or only voided DPAs)

A mechanism is invalid today when legal recorded its invalidation in force today (transfers' invalidations) or the
catalogue's `valid_until` has passed (registry/transfer_mechanisms.yaml: the EU-US Privacy Shield, 2020-07-16).

Reads derive the status afresh (three queries for a whole page of contracts); `refresh` stores it and, for each
contract whose status moved, audits the change and queues `contract.dpa_status_changed` (webhooks only) in the
caller's transaction. It works on any number of contracts in a handful of statements: a mechanism invalidation may
reach thousands. The stored status is what was last announced; an invalidation recorded with a future date takes
effect in reads on its day and is announced at the next refresh of those contracts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.contracts.models import Contract, ContractAgreement, DpaStatus
from dpa_service.core import registry
from dpa_service.core.clock import rfc3339, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.template_versions import services as templates
from dpa_service.transfers import services as transfers

STATUS_CHANGED = "contract.dpa_status_changed"
_CHUNK = 5000


@dataclass(frozen=True)
class Standing:
    status: DpaStatus
    reason: str
    current: tuple[uuid.UUID, ...] = ()  # the attached DPAs that are executed and current


@dataclass(frozen=True)
class Facts:
    """Everything a derivation reads, fetched once for a whole set of contracts."""

    agreements: dict[uuid.UUID, agreements.AgreementFacts]
    retired: set[uuid.UUID]
    invalid: dict[str, date]  # mechanism code -> the day it became invalid (on or before today)


async def facts_for(db: Database, scope: Scope, agreement_ids: Collection[uuid.UUID]) -> Facts:
    found = await agreements.agreement_facts(db, scope, agreement_ids)
    retired = await templates.retired_ids(db, scope, {f.template_id for f in found.values()})
    return Facts(found, retired, await invalid_mechanisms(db, scope))


async def invalid_mechanisms(db: Database, scope: Scope) -> dict[str, date]:
    """The invalidations legal recorded that are in force today (code -> first invalid day); the registry's own end
    dates are each origin regime's (`_invalid_since`)."""
    today = utcnow().date()
    return {code: day for code, day in (await transfers.invalidations(db, scope)).items() if day <= today}


def _invalid_since(facts: Facts, code: str, origin: str) -> date | None:
    """The day `code` stopped carrying transfers from `origin` (a recorded invalidation, or the end date under that
    regime's law), if that day has come; None while it still does."""
    today = utcnow().date()
    mechanism = registry.mechanisms().get(code)
    terms = mechanism.terms(origin) if mechanism is not None else None
    ends = [day for day in (facts.invalid.get(code), terms.valid_until if terms else None) if day is not None]
    if mechanism is not None and terms is None:
        ends.append(mechanism.valid_from)  # not one of that regime's tools at all
    ended = min(ends) if ends else None
    return ended if ended is not None and ended <= today else None


def _mechanism_name(code: str) -> str:
    found = registry.mechanisms().get(code)
    return f"{code} ({found.name})" if found else code


def _outdated_because(facts: Facts, agreement: agreements.AgreementFacts) -> list[str]:
    """Why an executed DPA is not current (empty: it is)."""
    reasons = []
    if agreement.template_id in facts.retired:
        reasons.append(
            f"it was made on template {agreement.template_key} v{agreement.template_version}, which legal retired"
        )
    # Clause 12.2: the first selected mechanism still available carries a transfer, so one invalid mechanism among
    # others leaves the DPA covered. Only when none of them is left does the DPA rest on the fallback of Clause
    # 12.3 alone: legal treats that as outdated (a DPA to re-paper), a stricter line than the text requires.
    origin = registry.origin_of(agreement.controller_country)
    ended = {code: _invalid_since(facts, code, origin) for code in agreement.mechanisms}
    if ended and all(day is not None for day in ended.values()):
        gone = ", ".join(f"{_mechanism_name(code)} since {day.isoformat()}" for code, day in ended.items() if day)
        reasons.append(f"none of the transfer mechanisms it selected is valid any more ({gone})")
    return reasons


def derive(attached: Iterable[uuid.UUID], facts: Facts) -> Standing:
    current: list[uuid.UUID] = []
    outdated: list[str] = []
    in_progress: list[str] = []
    voided = 0
    for agreement_id in attached:
        agreement = facts.agreements.get(agreement_id)
        if agreement is None:
            continue
        if agreement.status == "executed":
            if reasons := _outdated_because(facts, agreement):
                outdated.append(f"the attached DPA {agreement_id} is executed but {' and '.join(reasons)}")
            else:
                current.append(agreement_id)
        elif agreement.status == "superseded":
            outdated.append(
                f"the attached DPA {agreement_id} is superseded (by {agreement.superseded_by}): attach the current one"
            )
        elif agreement.in_progress:
            in_progress.append(f"the attached DPA {agreement_id} is only in progress ({agreement.status})")
        else:
            voided += 1
    if current:
        return Standing(DpaStatus.EXECUTED, f"DPA {current[0]} is executed and current.", tuple(current))
    if outdated:
        return Standing(DpaStatus.OUTDATED, _sentence("; ".join(outdated)))
    if in_progress:
        return Standing(DpaStatus.IN_PROGRESS, _sentence("; ".join(in_progress) + ": it must be executed first"))
    if voided:
        return Standing(DpaStatus.MISSING, "No DPA is attached but voided ones: attach the tenant's executed DPA.")
    return Standing(DpaStatus.MISSING, "No DPA is attached: attach the tenant's executed DPA.")


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


async def links_of(session: AsyncSession, contract_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The attached agreement ids of each contract, in the order they were attached."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {cid: [] for cid in contract_ids}
    ids = list(contract_ids)
    link = ContractAgreement
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(col(link.contract_id), col(link.agreement_id))
            .where(col(link.contract_id).in_(ids[start : start + _CHUNK]))
            .order_by(col(link.attached_at), col(link.id))
        )
        for contract_id, agreement_id in rows.all():
            found[contract_id].append(agreement_id)
    return found


async def standings(db: Database, scope: Scope, links: dict[uuid.UUID, list[uuid.UUID]]) -> dict[uuid.UUID, Standing]:
    """Each contract's standing from its attached agreements (three queries however many contracts)."""
    facts = await facts_for(db, scope, {aid for ids in links.values() for aid in ids})
    return {contract_id: derive(ids, facts) for contract_id, ids in links.items()}


async def refresh(
    db: Database,
    scope: Scope,
    actor: Actor,
    *,
    cause: str,
    contract_ids: Collection[uuid.UUID] | None = None,
    agreement_ids: Collection[uuid.UUID] | None = None,
) -> int:
    """Derive again the status of the contracts named, or holding any of `agreement_ids`, or (neither given) every
    contract the scope sees; store, audit and announce each change. Joins the caller's transaction. Returns how
    many contracts changed."""
    async with db.transaction(scope) as session:
        query = select(col(Contract.id), col(Contract.tenant_id), col(Contract.dpa_status), col(Contract.reference))
        if contract_ids is not None:
            query = query.where(col(Contract.id).in_(list(contract_ids)))
        elif agreement_ids is not None:
            holding = select(col(ContractAgreement.contract_id)).where(
                col(ContractAgreement.agreement_id).in_(list(agreement_ids))
            )
            query = query.where(col(Contract.id).in_(holding))
        # Locked: two processes deriving the same contracts at once (two app processes' daily rounds) queue, and
        # the second reads the status the first stored, so a change is announced once.
        rows = (await session.execute(query.with_for_update())).all()
        if not rows:
            return 0
        derived = await standings(db, scope, await links_of(session, [row.id for row in rows]))
        changed = [(row, derived[row.id]) for row in rows if derived[row.id].status.value != row.dpa_status]
        await _store(session, actor, changed, cause)
        return len(changed)


async def _store(session: AsyncSession, actor: Actor, changed: list[tuple[Any, Standing]], cause: str) -> None:
    if not changed:
        return
    now = utcnow()
    by_status: dict[str, list[uuid.UUID]] = defaultdict(list)
    for row, standing in changed:
        by_status[standing.status.value].append(row.id)
    for status, ids in by_status.items():
        for start in range(0, len(ids), _CHUNK):
            await session.execute(
                update(Contract)
                .where(col(Contract.id).in_(ids[start : start + _CHUNK]))
                .values(dpa_status=status, dpa_status_at=now, updated_at=now)
            )
    facts = [
        (row, {
            "contract_id": str(row.id),
            "reference": row.reference,
            "dpa_status": standing.status.value,
            "previous": row.dpa_status,
            "reason": standing.reason,
            "cause": cause,
            "changed_at": rfc3339(now),
        })
        for row, standing in changed
    ]  # fmt: skip
    await audit.record_many(session, actor, STATUS_CHANGED, "contract", [(r.tenant_id, r.id, d) for r, d in facts])
    await enqueue_many(
        session,
        STATUS_CHANGED,
        ((r.tenant_id, f"{STATUS_CHANGED}:{r.id}:{new_id()}", {**d, "notify_by_email": False}) for r, d in facts),
    )
