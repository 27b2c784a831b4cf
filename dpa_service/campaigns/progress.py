"""Where a campaign stands: its progress derived from its agreements' statuses (one aggregate query, through the
agreements domain's service), the list of campaigns, and a campaign's agreements with tenant, status and decline."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.campaigns.models import (
    Campaign,
    CampaignAgreement,
    CampaignAgreementPublic,
    CampaignProgress,
    Skipped,
)
from dpa_service.campaigns.terms import DECLINED, EXECUTED_OR_LATER, SIGNED_OR_LATER, STAFF
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import NotFound
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.tenants import services as tenants


async def find_campaign(session: AsyncSession, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
    query = select(Campaign).where(col(Campaign.id) == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = (await session.execute(query)).scalar_one_or_none()
    if campaign is None:
        raise NotFound("Campaign not found.")
    return campaign


def _progress(campaign: Campaign, statuses: dict[str, int], today: date) -> CampaignProgress:
    total = sum(statuses.values())
    signed = sum(n for s, n in statuses.items() if s in SIGNED_OR_LATER)
    executed = sum(n for s, n in statuses.items() if s in EXECUTED_OR_LATER)
    declined = sum(n for s, n in statuses.items() if s in DECLINED)
    return CampaignProgress(
        id=campaign.id,
        template_id=campaign.template_id,
        template=f"{campaign.template_key} v{campaign.template_version}" if campaign.template_key else None,
        replace_mechanism=campaign.replace_mechanism,
        replacement_mechanism=campaign.replacement_mechanism,
        reason=campaign.reason,
        due_on=campaign.due_on,
        created_at=campaign.created_at,
        last_run_at=campaign.last_run_at,
        runs=campaign.runs,
        total=total,
        notified=total,  # each draft's notice is queued in the transaction that makes the draft
        signed=signed,
        executed=executed,
        declined=declined,
        overdue=total - executed - declined if today > campaign.due_on else 0,
        pending=total - signed - declined,
        statuses=statuses,
        skipped=[Skipped.model_validate(s) for s in campaign.skipped],
    )


async def _counts(db: Database, campaign_ids: Sequence[uuid.UUID]) -> dict[Any, dict[str, int]]:
    links: Select[Any, Any] = select(col(CampaignAgreement.campaign_id), col(CampaignAgreement.agreement_id)).where(
        col(CampaignAgreement.campaign_id).in_(list(campaign_ids))
    )
    return await agreements.status_counts(db, STAFF, links)


async def progress(db: Database, campaign_id: uuid.UUID) -> CampaignProgress:
    """A campaign and where its tenants stand (legal's; the CLI's too, with `core.clock.travel_to` for the date)."""
    async with db.transaction(STAFF, write=False) as session:
        campaign = await find_campaign(session, campaign_id)
        counts = await _counts(db, [campaign.id])
    return _progress(campaign, counts.get(campaign.id, {}), utcnow().date())


async def list_campaigns(db: Database, *, cursor: str | None, limit: int) -> Page[CampaignProgress]:
    """Newest first, each with its progress (one aggregate query for the page)."""
    query = select(Campaign).order_by(col(Campaign.id).desc()).limit(limit + 1)
    if (before := decode_id_cursor(cursor)) is not None:
        query = query.where(col(Campaign.id) < before)
    async with db.transaction(STAFF, write=False) as session:
        rows = list((await session.execute(query)).scalars())
        counts = await _counts(db, [campaign.id for campaign in rows[:limit]])
    today = utcnow().date()
    return page_of(rows, limit, lambda c: _progress(c, counts.get(c.id, {}), today), lambda c: str(c.id))


async def list_agreements(
    db: Database, campaign_id: uuid.UUID, *, cursor: str | None, limit: int
) -> Page[CampaignAgreementPublic]:
    """The campaign's agreements in the order they were made, each with its tenant, status and any decline."""
    query = (
        select(CampaignAgreement)
        .where(col(CampaignAgreement.campaign_id) == campaign_id)
        .order_by(col(CampaignAgreement.agreement_id))
        .limit(limit + 1)
    )
    if (after := decode_id_cursor(cursor)) is not None:
        query = query.where(col(CampaignAgreement.agreement_id) > after)
    async with db.transaction(STAFF, write=False) as session:
        await find_campaign(session, campaign_id)
        links = list((await session.execute(query)).scalars())
        shown = links[:limit]
        states = await agreements.states(db, STAFF, [link.agreement_id for link in shown])
        names = await tenants.names(db, STAFF, sorted({link.tenant_id for link in shown}))

    def item(link: CampaignAgreement) -> CampaignAgreementPublic:
        state = states[link.agreement_id]
        declined = state.status in DECLINED
        return CampaignAgreementPublic(
            agreement_id=link.agreement_id,
            tenant_id=link.tenant_id,
            tenant_name=names.get(link.tenant_id),
            status=state.status,
            previous_agreement_id=link.previous_agreement_id,
            created_at=link.created_at,
            notified_at=link.notified_at,
            signed_at=state.signed_at,
            executed_at=state.executed_at,
            declined_at=state.voided_at if declined else None,
            decline_reason=state.void_reason if declined else None,
        )

    return page_of(links, limit, item, lambda link: str(link.agreement_id))
