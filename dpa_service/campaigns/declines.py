"""The Subscriber's side of a campaign: the new DPAs waiting for it (its dashboard), the campaign an agreement was
made by (the agreement's page), and declining one with a reason (it is voided and counts as declined)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.campaigns.models import (
    Campaign,
    CampaignAgreement,
    DeclineCreate,
    WaitingDpa,
)
from dpa_service.campaigns.terms import DECLINABLE, DECLINED
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, PermissionDenied
from dpa_service.core.identity import Actor, Principal


async def waiting_for(db: Database, principal: Principal) -> list[WaitingDpa]:
    """The campaigns' new DPAs waiting for the caller's tenant (not yet executed, declined or voided)."""
    if principal.tenant_id is None:
        return []
    async with db.transaction(principal.scope, write=False) as session:
        rows = (
            await session.execute(
                select(CampaignAgreement, Campaign)
                .join(Campaign, col(Campaign.id) == col(CampaignAgreement.campaign_id))
                .where(col(CampaignAgreement.tenant_id) == principal.tenant_id)
                .order_by(col(CampaignAgreement.agreement_id))
            )
        ).all()
        states = await agreements.states(db, principal.scope, [link.agreement_id for link, _ in rows])
    today = utcnow().date()
    return [
        WaitingDpa(
            agreement_id=link.agreement_id,
            campaign_id=campaign.id,
            status=states[link.agreement_id].status,
            reason=campaign.reason,
            due_on=campaign.due_on,
            overdue=today > campaign.due_on,
            declinable=states[link.agreement_id].status in DECLINABLE,
        )
        for link, campaign in rows
        if link.agreement_id in states and states[link.agreement_id].status in agreements.OPEN_STATUSES
    ]


async def campaign_of(db: Database, principal: Principal, agreement_id: uuid.UUID) -> WaitingDpa | None:
    """The campaign an agreement of the caller's tenant was made by, with where it stands (None: not a campaign's)."""
    async with db.transaction(principal.scope, write=False) as session:
        query = (
            select(CampaignAgreement, Campaign)
            .join(Campaign, col(Campaign.id) == col(CampaignAgreement.campaign_id))
            .where(col(CampaignAgreement.agreement_id) == agreement_id)
        )
        if principal.tenant_id is not None:
            query = query.where(col(CampaignAgreement.tenant_id) == principal.tenant_id)
        row = (await session.execute(query)).first()
        if row is None:
            return None
        campaign = row[1]
        state = (await agreements.states(db, principal.scope, [agreement_id])).get(agreement_id)
    if state is None:
        return None
    return WaitingDpa(
        agreement_id=agreement_id,
        campaign_id=campaign.id,
        status=state.status,
        reason=campaign.reason,
        due_on=campaign.due_on,
        overdue=utcnow().date() > campaign.due_on and state.status in agreements.OPEN_STATUSES,
        declinable=state.status in DECLINABLE,
        decline_reason=state.void_reason if state.status in DECLINED else None,
    )


async def decline(
    db: Database, actor: Actor, principal: Principal, agreement_id: uuid.UUID, data: DeclineCreate
) -> agreements.AgreementPublic:
    """A Subscriber's owner or admin declines a campaign's new DPA, with a reason legal reads: only a campaign's
    draft not yet signed (else 409); it is voided (the agreements domain's void) and counts as declined."""
    if principal.tenant_id is None:
        raise PermissionDenied("A campaign's new DPA is declined by the Subscriber.")
    async with db.transaction(principal.scope) as session:
        agreement = await agreements.get_agreement(db, principal, agreement_id)  # another tenant's: 404
        link = await session.scalar(
            select(CampaignAgreement)
            .where(
                col(CampaignAgreement.agreement_id) == agreement_id,
                col(CampaignAgreement.tenant_id) == principal.tenant_id,
            )
            .with_for_update()
        )
        if link is None:
            raise Conflict("Only a re-papering campaign's new DPA can be declined: void this agreement instead.")
        if agreement.status not in DECLINABLE:
            raise Conflict(f"An agreement in status {agreement.status} can no longer be declined.")
        voided = await agreements.void(db, actor, principal, agreement_id, data.reason)
        await audit.record(
            session,
            actor,
            "campaign.declined",
            "agreement",
            agreement_id,
            tenant_id=principal.tenant_id,
            data={"campaign_id": str(link.campaign_id), "reason": data.reason},
        )
        return voided
