"""The obligations ledger: made from the executed DPA's template version, moved on when a newer DPA supersedes it,
read with each status derived as of the read (`ledger_rules`), and kept by owners' and admins' attestations.

    AgreementExecuted --instantiate--> one row per entry of the version's `obligations` (in force from execution)
                                       the superseded DPAs' rows: ended_at, superseded_by (kept, readable)
    attest ------------------------->  an append-only attestation of a code in the tenant's current ledger, audited;
                                       409 where it would change nothing (`ledger_rules.attestation_refusal`)

A tenant with no executed DPA has no rows, so an empty ledger. The rows of a superseded DPA stay readable with
`?agreement_id=` as history: their status is `not_applicable` (the newer DPA's rows carry the obligations on) and
they keep the last attestation made against them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.audit import services as audit
from dpa_service.core.clock import as_utc, utcnow
from dpa_service.core.db import Database, Scope, tenant_of
from dpa_service.core.events import AgreementExecuted
from dpa_service.core.exceptions import Conflict, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import DEFAULT_LIMIT, Page, decode_id_cursor, encode_cursor, page_of
from dpa_service.obligations.ledger_facts import LedgerFacts, gather, termination_of
from dpa_service.obligations.ledger_models import AttestationCreate, AttestationPublic, ObligationPublic
from dpa_service.obligations.ledger_rules import PERSONNEL, KeptBy, attestation_refusal, derive, ended
from dpa_service.obligations.models import Obligation, ObligationAttestation, ObligationStatus
from dpa_service.template_versions import services as template_versions

# With a `status` filter rows are read in rounds and filtered after reading (the status is derived). A request does
# at most _ROUNDS rounds of _SCAN rows: a rare status over many rows then gives a short (even empty) page with a
# cursor at the last row read, and the next page reads on from there, rather than one request reading them all.
_SCAN = 500
_ROUNDS = 4


async def instantiate(db: Database, event: AgreementExecuted) -> int:
    """The executed DPA's obligations join the ledger; the rows of the DPAs it supersedes end (history is kept)."""
    scope = Scope.tenant(event.tenant_id)
    version = await template_versions.version_by_id(db, scope, event.template_id)
    async with db.transaction(scope) as session:
        ended_rows = 0
        if event.superseded:
            query = select(Obligation).where(
                col(Obligation.tenant_id) == event.tenant_id,
                col(Obligation.agreement_id).in_(event.superseded),
                col(Obligation.ended_at).is_(None),
            )
            for old in (await session.execute(query)).scalars():
                old.ended_at, old.superseded_by = event.executed_at, event.agreement_id
                ended_rows += 1
        # Ids made within one millisecond sort at random: sorted, so the ledger (read by id) keeps the yaml's order.
        ids = sorted(new_id() for _ in version.obligations)
        rows = [_row(event, entry, row_id) for entry, row_id in zip(version.obligations, ids, strict=True)]
        session.add_all(rows)
        await session.flush()
        await audit.record(
            session,
            event.actor,
            "obligations.instantiated",
            "agreement",
            event.agreement_id,
            tenant_id=event.tenant_id,
            data={
                "template_id": str(event.template_id),
                "codes": [row.code for row in rows],
                "ended": ended_rows,
                "superseded": [str(a) for a in event.superseded],
            },
        )
        return len(rows)


def _row(event: AgreementExecuted, entry: dict[str, Any], row_id: uuid.UUID) -> Obligation:
    return Obligation(
        id=row_id,
        tenant_id=event.tenant_id,
        agreement_id=event.agreement_id,
        template_id=event.template_id,
        code=str(entry["code"]),
        title=str(entry["title"]),
        clause=str(entry["clause"]),
        summary=str(entry.get("summary") or ""),
        deadline=dict(entry.get("deadline") or {}),
        in_force_from=event.executed_at,
    )


def present(row: Obligation, facts: LedgerFacts, now: datetime) -> ObligationPublic:
    """A row as read: its status derived from the tenant's facts at `now`."""
    tenant = facts.of(row.tenant_id)
    if row.ended_at is not None:
        derived, last = ended(as_utc(row.ended_at)), facts.attested_on_row.get(row.id)
    else:
        derived = derive(row.code, row.deadline, as_utc(row.in_force_from), tenant, now)
        last = tenant.attested.get(row.code)
    return ObligationPublic(
        id=row.id,
        tenant_id=row.tenant_id,
        agreement_id=row.agreement_id,
        template_id=row.template_id,
        code=row.code,
        title=row.title,
        clause=row.clause,
        summary=row.summary,
        rule=str(row.deadline.get("rule", "")),
        deadline=row.deadline,
        status=derived.status.value,
        due_at=derived.due_at,
        detail=derived.detail,
        next_step=derived.next_step,
        last_attested_at=last,
        in_force_from=as_utc(row.in_force_from),
        ended_at=as_utc(row.ended_at) if row.ended_at else None,
        superseded_by=row.superseded_by,
        transfers_without_notice=list(derived.transfers_without_notice),
    )


def _rows(
    session: AsyncSession, *, tenant_id: uuid.UUID | None, agreement_id: uuid.UUID | None, code: str | None
) -> Select[Any]:
    query = select(Obligation).order_by(col(Obligation.id))
    if (tenant := tenant_of(session, tenant_id)) is not None:
        query = query.where(col(Obligation.tenant_id) == tenant)
    if agreement_id is not None:
        query = query.where(col(Obligation.agreement_id) == agreement_id)  # that DPA's rows, current or ended
    else:
        query = query.where(col(Obligation.ended_at).is_(None))
    if code:
        query = query.where(col(Obligation.code) == code)
    return query


async def list_obligations(
    db: Database,
    principal: Principal,
    *,
    tenant_id: uuid.UUID | None = None,
    agreement_id: uuid.UUID | None = None,
    status: ObligationStatus | None = None,
    code: str | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Page[ObligationPublic]:
    """The current ledger (a Subscriber's own; legal: one tenant's with `tenant_id`, else every tenant's), or one
    agreement's rows with `agreement_id`; by id. Facts are read once per round of rows, never per row."""
    now, after = utcnow(), decode_id_cursor(cursor)
    scan = limit + 1 if status is None else max(limit + 1, _SCAN)
    found: list[ObligationPublic] = []
    async with db.transaction(principal.scope, write=False) as session:
        query = _rows(session, tenant_id=tenant_id, agreement_id=agreement_id, code=code)
        for _ in range(1 if status is None else _ROUNDS):
            page = query.where(col(Obligation.id) > after) if after is not None else query
            rows: Sequence[Obligation] = (await session.execute(page.limit(scan))).scalars().all()
            facts = await gather(db, session, rows)
            found += [
                item for item in (present(r, facts, now) for r in rows) if status is None or item.status == status
            ]
            if len(found) > limit or len(rows) < scan:
                break  # a full page (and one more), or the last rows
            after = rows[-1].id
        else:
            if status is not None:  # the rounds ran out with rows left unread: go on from the last row read
                return Page[ObligationPublic](items=found, next_cursor=encode_cursor(str(after)))
    return page_of(found, limit, lambda item: item, lambda item: str(item.id))


async def get_obligation(db: Database, principal: Principal, code: str, tenant_id: uuid.UUID) -> ObligationPublic:
    """One code of a tenant's current ledger (404 if it has none)."""
    found = await list_obligations(db, principal, tenant_id=tenant_id, code=code, limit=1)
    if not found.items:
        raise NotFound("There is no such obligation in the ledger.")
    return found.items[0]


async def past_agreements(
    db: Database, principal: Principal, tenant_id: uuid.UUID | None
) -> list[tuple[uuid.UUID, datetime]]:
    """The superseded DPAs whose ledger rows are history, newest first: (agreement id, when they ended)."""
    query = (
        select(col(Obligation.agreement_id), func.max(Obligation.ended_at))
        .where(col(Obligation.ended_at).is_not(None))
        .group_by(col(Obligation.agreement_id))
    )
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(Obligation.tenant_id) == tenant)
        rows = (await session.execute(query)).all()
    ended = [(agreement, as_utc(at)) for agreement, at in rows if at is not None]
    return sorted(ended, key=lambda pair: pair[1], reverse=True)


async def _current(session: AsyncSession, tenant_id: uuid.UUID, code: str) -> Obligation | None:
    query = select(Obligation).where(
        col(Obligation.tenant_id) == tenant_id, col(Obligation.code) == code, col(Obligation.ended_at).is_(None)
    )
    return (await session.execute(query.order_by(col(Obligation.id).desc()).limit(1))).scalar_one_or_none()


async def _refusal(session: AsyncSession, row: Obligation, now: datetime) -> KeptBy | None:
    return attestation_refusal(row.deadline.get("rule"), await termination_of(session, row.tenant_id), now)


async def kept_elsewhere(db: Database, principal: Principal, code: str, tenant_id: uuid.UUID) -> KeptBy | None:
    """Where the tenant's current `code` is kept when an attestation would change nothing (the page shows that
    instead of the form); None when it may be attested, or when the tenant's ledger has no such code."""
    async with db.transaction(principal.scope, write=False) as session:
        row = await _current(session, tenant_id, code)
        return None if row is None else await _refusal(session, row, utcnow())


def attestation_public(row: ObligationAttestation) -> AttestationPublic:
    return AttestationPublic.model_validate(row, from_attributes=True)


async def attest(
    db: Database, actor: Actor, principal: Principal, code: str, data: AttestationCreate
) -> AttestationPublic:
    """An owner or admin states that the tenant keeps `code` (of its current ledger): append-only, audited."""
    if principal.tenant_id is None:
        raise PermissionDenied("Obligations are attested by the Subscriber that keeps them.")
    now = utcnow()
    async with db.transaction(principal.scope) as session:
        row = await _current(session, principal.tenant_id, code)
        if row is None:
            raise NotFound("There is no such obligation in your ledger.")
        if (refusal := await _refusal(session, row, now)) is not None:
            raise Conflict(f"An attestation would change nothing here: {refusal.how} ({refusal.label}: "
                           f"{refusal.href}).")  # fmt: skip
        if code == PERSONNEL and data.personnel_count is None:
            raise InvalidInput.field("personnel_count", "is required: how many of your personnel were briefed")
        if code != PERSONNEL and data.personnel_count is not None:
            raise InvalidInput.field("personnel_count", f"applies to {PERSONNEL} only")
        attestation = ObligationAttestation(
            tenant_id=principal.tenant_id,
            obligation_id=row.id,
            code=code,
            statement=data.statement,
            evidence=data.evidence,
            period=data.period or (str(now.year) if code == PERSONNEL else None),
            personnel_count=data.personnel_count,
            attested_by=principal.user_id,
            attested_at=now,
        )
        session.add(attestation)
        await session.flush()
        await audit.record(
            session,
            actor,
            "obligation.attested",
            "obligation",
            row.id,
            tenant_id=principal.tenant_id,
            data={
                "code": code,
                "attestation_id": str(attestation.id),
                "period": attestation.period,
                "personnel_count": attestation.personnel_count,
                "evidence": attestation.evidence,
            },
        )
        return attestation_public(attestation)


async def list_attestations(
    db: Database,
    principal: Principal,
    code: str | None,
    *,
    tenant_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
    newest_first: bool = False,
) -> Page[AttestationPublic]:
    """The append-only history of a code (or every code): a Subscriber's own, legal's for one tenant or all. A
    code the tenant's ledger never had is 404."""
    a = ObligationAttestation
    after = decode_id_cursor(cursor)
    query = select(a).order_by(col(a.id).desc() if newest_first else col(a.id)).limit(limit + 1)
    if after is not None:
        query = query.where(col(a.id) < after if newest_first else col(a.id) > after)
    if code is not None:
        query = query.where(col(a.code) == code)
    async with db.transaction(principal.scope, write=False) as session:
        if (tenant := tenant_of(session, tenant_id)) is not None:
            query = query.where(col(a.tenant_id) == tenant)
            if code is not None and not await _ever_had(session, tenant, code):
                raise NotFound("There is no such obligation in the ledger.")
        rows = (await session.execute(query)).scalars().all()
    return page_of(rows, limit, attestation_public, lambda row: str(row.id))


async def _ever_had(session: AsyncSession, tenant_id: uuid.UUID, code: str) -> bool:
    query = select(col(Obligation.id)).where(col(Obligation.tenant_id) == tenant_id, col(Obligation.code) == code)
    return (await session.execute(query.limit(1))).first() is not None


async def status_counts(db: Database, principal: Principal) -> dict[str, int]:
    """How many of the caller's current obligations are in each status (a one-line summary for other pages)."""
    counts = {status.value: 0 for status in ObligationStatus}
    cursor: str | None = None
    while True:
        page = await list_obligations(db, principal, cursor=cursor, limit=200)
        for item in page.items:
            counts[item.status] += 1
        if not (cursor := page.next_cursor):
            return counts
