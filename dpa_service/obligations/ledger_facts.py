"""What the status rules look at, for every tenant of a page of ledger rows at once: one query per table (grouped
by tenant), so a page of one tenant and legal's page across thousands cost the same few statements, and only the
tables the rows' rules need are read."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.core.clock import as_utc
from dpa_service.core.db import Database
from dpa_service.obligations.ledger_rules import (
    BreachFacts,
    InquiryFacts,
    TenantFacts,
    TerminationFacts,
    TransferFacts,
)
from dpa_service.obligations.models import BreachNotice, Inquiry, Obligation, ObligationAttestation, Termination
from dpa_service.template_versions.services import DeadlineRule
from dpa_service.transfers import services as transfers


@dataclass
class LedgerFacts:
    by_tenant: dict[uuid.UUID, TenantFacts] = field(default_factory=dict)
    attested_on_row: dict[uuid.UUID, datetime] = field(default_factory=dict)  # obligation id -> latest attestation

    def of(self, tenant_id: uuid.UUID) -> TenantFacts:
        return self.by_tenant.get(tenant_id) or TenantFacts()


def _utc(value: Any) -> datetime | None:
    """An aggregate's datetime (SQLite may hand back text for a CASE inside MIN/MAX)."""
    if value is None:
        return None
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(str(value)))


async def gather(db: Database, session: AsyncSession, rows: Sequence[Obligation]) -> LedgerFacts:
    """The facts for every tenant owning one of `rows`."""
    tenants = sorted({row.tenant_id for row in rows})
    if not tenants:
        return LedgerFacts()
    rules = {row.deadline.get("rule") for row in rows if row.ended_at is None}
    attested, on_row = await _attestations(session, tenants)
    since = await _in_force_since(session, tenants) if rules else {}
    breaches = await _breaches(session, tenants) if DeadlineRule.WITHIN_HOURS_OF_AWARENESS in rules else {}
    inquiries = await _inquiries(session, tenants) if DeadlineRule.BY_INQUIRY_DUE_DATE in rules else {}
    # The deletion's due date, and the end after which the continuous obligations no longer apply.
    ends = {DeadlineRule.WITHIN_DAYS_OF_TERMINATION, DeadlineRule.CONTINUOUS}
    terminations = await _terminations(session, tenants) if ends & rules else {}
    noticed: dict[uuid.UUID, list[TransferFacts]] = defaultdict(list)
    if DeadlineRule.BEFORE_TRANSFER in rules:
        for t in await transfers.prior_notice_facts(db, session.info["scope"], tenants):
            noticed[t.tenant_id].append(
                TransferFacts(t.transfer_id, t.importer, t.destination_country, t.start_date, t.first_notice_on)
            )
    facts = {
        tenant: TenantFacts(
            attested=attested.get(tenant, {}),
            in_force_since=since.get(tenant, {}),
            breaches=breaches.get(tenant, BreachFacts()),
            inquiries=inquiries.get(tenant, InquiryFacts()),
            termination=terminations.get(tenant),
            transfers=tuple(noticed.get(tenant, ())),
        )
        for tenant in tenants
    }
    return LedgerFacts(facts, on_row)


async def _attestations(
    session: AsyncSession, tenants: list[uuid.UUID]
) -> tuple[dict[uuid.UUID, dict[str, datetime]], dict[uuid.UUID, datetime]]:
    """The latest attestation per (tenant, code), which a superseding DPA's row counts too, and per ledger row."""
    a = ObligationAttestation
    query = (
        select(col(a.tenant_id), col(a.code), col(a.obligation_id), func.max(a.attested_at))
        .where(col(a.tenant_id).in_(tenants))
        .group_by(col(a.tenant_id), col(a.code), col(a.obligation_id))
    )
    by_code: dict[uuid.UUID, dict[str, datetime]] = defaultdict(dict)
    by_row: dict[uuid.UUID, datetime] = {}
    for tenant, code, obligation_id, raw in (await session.execute(query)).all():
        latest = _utc(raw)
        if latest is None:
            continue
        by_row[obligation_id] = latest
        if code not in by_code[tenant] or by_code[tenant][code] < latest:
            by_code[tenant][code] = latest
    return by_code, by_row


async def _in_force_since(session: AsyncSession, tenants: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, datetime]]:
    """When each tenant's first DPA imposing each code was executed."""
    query = (
        select(col(Obligation.tenant_id), col(Obligation.code), func.min(Obligation.in_force_from))
        .where(col(Obligation.tenant_id).in_(tenants))
        .group_by(col(Obligation.tenant_id), col(Obligation.code))
    )
    since: dict[uuid.UUID, dict[str, datetime]] = defaultdict(dict)
    for tenant, code, first in (await session.execute(query)).all():
        if (moment := _utc(first)) is not None:
            since[tenant][code] = moment
    return since


async def _breaches(session: AsyncSession, tenants: list[uuid.UUID]) -> dict[uuid.UUID, BreachFacts]:
    late = case((col(BreachNotice.late).is_(True), BreachNotice.reported_at), else_=None)
    on_time = case((col(BreachNotice.late).is_(False), BreachNotice.reported_at), else_=None)
    query = (
        select(col(BreachNotice.tenant_id), func.max(on_time), func.max(late))
        .where(col(BreachNotice.tenant_id).in_(tenants))
        .group_by(col(BreachNotice.tenant_id))
    )
    return {
        tenant: BreachFacts(last_on_time=_utc(last_on_time), last_late=_utc(last_late))
        for tenant, last_on_time, last_late in (await session.execute(query)).all()
    }


async def _inquiries(session: AsyncSession, tenants: list[uuid.UUID]) -> dict[uuid.UUID, InquiryFacts]:
    waiting = col(Inquiry.answered_at).is_(None)
    query = (
        select(
            col(Inquiry.tenant_id),
            func.sum(case((waiting, 1), else_=0)),
            func.min(case((waiting, Inquiry.due_at), else_=None)),
            func.count(col(Inquiry.answered_at)),
        )
        .where(col(Inquiry.tenant_id).in_(tenants))
        .group_by(col(Inquiry.tenant_id))
    )
    return {
        tenant: InquiryFacts(unanswered=int(unanswered or 0), earliest_due=_utc(due), answered=int(answered or 0))
        for tenant, unanswered, due, answered in (await session.execute(query)).all()
    }


async def _terminations(session: AsyncSession, tenants: list[uuid.UUID]) -> dict[uuid.UUID, TerminationFacts]:
    query = select(Termination).where(col(Termination.tenant_id).in_(tenants))
    return {
        t.tenant_id: TerminationFacts(t.ends_on, t.deletion_due_on, as_utc(t.recorded_at))
        for t in (await session.execute(query)).scalars()
    }


async def termination_of(session: AsyncSession, tenant_id: uuid.UUID) -> TerminationFacts | None:
    """One tenant's recorded end of the main agreement (what an attestation's refusal looks at)."""
    return (await _terminations(session, [tenant_id])).get(tenant_id)
