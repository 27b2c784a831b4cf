"""Re-papering campaigns: legal moves every affected tenant onto new terms and follows who has moved.

A campaign names an approved template version (tenants whose current executed DPA is on an older version of the
same key move to it) and/or a transfer mechanism to move away from (tenants whose executed DPA lists it in
`variables.transfers.mechanisms` get it replaced by `replacement_mechanism`, which must be in force today), a reason
and a due date. A tenant matching either gets one new draft, pre-filled from its executed DPA: the variables carried
(the replaced mechanism swapped for the replacement, no code twice), the custom clauses carried (so submitting it
goes to legal's review, as usual), on the campaign's template version or, for a tenant the template part does not
concern, the current approved version of its own key. Each tenant is told once through the outbox (an e-mail to its
owners and admins and the DPA's contact address, and a `campaign.draft_created` webhook), and each draft is audited
in its tenant's chain; the campaign's start and each run in the platform chain.

Speed: 10,000 tenants are one selection query, then one INSERT per thousand drafts, links and notices, and the
audit events through `audit.record_many`, all in one transaction; nothing is rendered.

Decisions:
* Running a campaign again (`run_campaign`) reaches the tenants that match now and have no draft from it yet (a
  tenant that declined, or executed the campaign's DPA, is never asked again by it). Starting a campaign identical to
  an existing one (same template version, same mechanisms) is 409 naming it: run that one again instead.
* Two overlapping campaigns: a tenant with an open draft (not executed, voided or superseded) from any campaign gets
  no second one; it is skipped and reported ("has an open draft from another campaign"), and a later run reaches it
  once that draft is executed or declined, if its executed DPA still matches.
* A tenant in exit (`core.events.checks`, the veto the obligations domain holds) is skipped and reported, not failed.
* Runs are serialized (a transaction-scoped advisory lock on PostgreSQL; SQLite has one writer), and the links are
  unique per campaign and tenant, so two runs at once never make two drafts.
* Progress is derived from the campaign's agreements' statuses in one aggregate query: `signed` is signed or later
  (executed, superseded), `executed` executed or later, `declined` voided (a Subscriber's decline voids the draft with
  its reason), `overdue` neither executed nor declined once `due_on` has passed. `notified` counts the links whose
  notice was queued, which happens in the same transaction as the draft.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.campaigns.declines import campaign_of as campaign_of
from dpa_service.campaigns.declines import decline as decline
from dpa_service.campaigns.declines import waiting_for as waiting_for
from dpa_service.campaigns.models import (
    Campaign,
    CampaignAgreement,
    CampaignCreate,
    CampaignPreview,
    CampaignRun,
    Skipped,
)
from dpa_service.campaigns.notices import TOPIC, notice_payload
from dpa_service.campaigns.progress import find_campaign
from dpa_service.campaigns.progress import list_agreements as list_agreements
from dpa_service.campaigns.progress import list_campaigns as list_campaigns
from dpa_service.campaigns.progress import progress as progress
from dpa_service.campaigns.terms import STAFF, Plan, Target, legal_only, plan_of_terms, swapped
from dpa_service.campaigns.terms import in_force as in_force
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, serialize
from dpa_service.core.events import checks
from dpa_service.core.exceptions import Conflict, InvalidInput
from dpa_service.core.identity import Actor
from dpa_service.core.ids import new_id
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers

WRITE_BATCH = 1000
RUN_LOCK = 0x43414D50  # "CAMP": one campaign run at a time (PostgreSQL advisory lock, transaction-scoped)
PREVIEW_NAMES = 50


# --- Who a campaign reaches ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    drafts: list[agreements.NewDraft]
    previous: dict[uuid.UUID, uuid.UUID]  # tenant -> the executed DPA its draft replaces
    contacts: dict[uuid.UUID, str]  # tenant -> the executed DPA's contact address
    skipped: list[Skipped]


def _every_link() -> Any:
    return select(col(CampaignAgreement.agreement_id))


async def _reach(db: Database, plan: Plan, campaign_id: uuid.UUID | None, audit_data: dict[str, Any]) -> Reach:
    """One query for the executed DPAs concerned, then the draft each tenant gets (no write)."""
    skip = (
        select(col(CampaignAgreement.tenant_id)).where(col(CampaignAgreement.campaign_id) == campaign_id)
        if campaign_id is not None
        else None
    )
    found = await agreements.executed_matching(
        db,
        STAFF,
        older_than=(plan.template.key, plan.template.version) if plan.template else None,
        relying_on=plan.replace,
        skip_tenants=skip,
        blocked_by=_every_link(),
    )
    current: dict[str, uuid.UUID | None] = {}
    for key in sorted({row.template_key for row in found}):
        version = await templates.current_version(db, STAFF, key)
        current[key] = version.id if version is not None else None
    today, invalidated = utcnow().date(), await transfers.invalidations(db, STAFF)

    @cache
    def offerable(code: str) -> bool:  # a new DPA made today may offer it (the request's own rule)
        return in_force(code, today, invalidated) is None

    drafts, previous, contacts, skipped = [], {}, {}, []
    for row in found:
        if row.blocked:
            skipped.append(Skipped(tenant_id=row.tenant_id, reason="has an open draft from another campaign"))
            continue
        moves = (
            plan.template and row.template_key == plan.template.key and row.template_version <= plan.template.version
        )
        template_id = plan.template.id if plan.template and moves else current.get(row.template_key)
        if template_id is None:
            skipped.append(Skipped(tenant_id=row.tenant_id, reason=f"no approved version of {row.template_key}"))
            continue
        # The rows were just read (parsed JSON of their own): the draft may take them without copying.
        variables = row.variables
        transfers_part: dict[str, Any] = variables.get("transfers") or {}
        chosen = transfers_part.get("mechanisms") if isinstance(transfers_part, dict) else None
        if isinstance(chosen, list):
            moved = swapped(chosen, plan.replace, plan.replacement, offerable)
            if moved != chosen:
                variables = {**variables, "transfers": {**transfers_part, "mechanisms": moved}}
        drafts.append(
            agreements.NewDraft(
                tenant_id=row.tenant_id,
                template_id=template_id,
                variables=variables,
                custom_clauses=row.custom_clauses,
                audit={**audit_data, "replaces": str(row.agreement_id)},
            )
        )
        previous[row.tenant_id] = row.agreement_id
        if isinstance(contact := (row.variables.get("controller") or {}).get("contact_email"), str):
            contacts[row.tenant_id] = contact
    return Reach(drafts, previous, contacts, skipped)


async def preview(db: Database, actor: Actor, data: CampaignCreate) -> CampaignPreview:
    """Who starting the campaign would reach now (nothing is written): the count, the first names, the skipped."""
    legal_only(actor)
    plan = await plan_of_terms(db, data)
    reach = await _reach(db, plan, None, {})
    refused = await checks.refusing_new_agreement(db, STAFF, [draft.tenant_id for draft in reach.drafts])
    ids = [draft.tenant_id for draft in reach.drafts if draft.tenant_id not in refused]
    skipped = [*reach.skipped, *(Skipped(tenant_id=t, reason=why) for t, why in refused.items())]
    names = await tenants.names(db, STAFF, ids)
    shown = sorted(ids, key=lambda tenant_id: (names.get(tenant_id, ""), tenant_id))[:PREVIEW_NAMES]
    return CampaignPreview(
        count=len(ids),
        tenants=[{"tenant_id": tenant_id, "name": names.get(tenant_id)} for tenant_id in shown],
        skipped=skipped,
    )


# --- Starting and running --------------------------------------------------------------------------------------


def _plan_of(campaign: Campaign) -> Plan:
    target = None
    if campaign.template_id is not None and campaign.template_key and campaign.template_version is not None:
        target = Target(campaign.template_id, campaign.template_key, campaign.template_version)
    return Plan(target, campaign.replace_mechanism, campaign.replacement_mechanism)


async def start_campaign(db: Database, actor: Actor, data: CampaignCreate, *, base_url: str = "") -> CampaignRun:
    """Legal starts a campaign: checked terms (422 naming each field), a draft and a notice for every tenant it
    reaches, all in one transaction. An identical campaign (same template version and mechanisms) is 409."""
    legal_only(actor)
    plan = await plan_of_terms(db, data)
    async with db.transaction(STAFF) as session:
        await serialize(session, RUN_LOCK)
        same = await session.scalar(
            select(col(Campaign.id)).where(
                col(Campaign.template_id).is_(None) if data.template_id is None else
                col(Campaign.template_id) == data.template_id,
                col(Campaign.replace_mechanism).is_(None) if plan.replace is None else
                col(Campaign.replace_mechanism) == plan.replace,
                col(Campaign.replacement_mechanism).is_(None) if plan.replacement is None else
                col(Campaign.replacement_mechanism) == plan.replacement,
            )
        )  # fmt: skip
        if same is not None:
            raise Conflict(
                f"Campaign {same} already moves these tenants: run it again (POST /api/v1/campaigns/{same}/run) "
                "to reach the tenants that match now."
            )
        now = utcnow()
        campaign = Campaign(
            template_id=plan.template.id if plan.template else None,
            template_key=plan.template.key if plan.template else None,
            template_version=plan.template.version if plan.template else None,
            replace_mechanism=plan.replace,
            replacement_mechanism=plan.replacement,
            reason=data.reason,
            due_on=data.due_on,
            created_by=actor.user_id,
            created_at=now,
            last_run_at=now,
            runs=0,
        )
        session.add(campaign)
        await session.flush()
        run = await _run(db, session, actor, campaign, base_url)
        if run.total == 0 and not run.skipped:
            field = "replace_mechanism" if plan.replace else "template_id"
            raise InvalidInput.field(field, "no tenant's current executed DPA matches: the campaign would reach nobody")
        return run


async def run_campaign(db: Database, actor: Actor, campaign_id: uuid.UUID, *, base_url: str = "") -> CampaignRun:
    """Run a campaign again: a draft for each tenant that matches now and has none from it yet (nobody twice)."""
    legal_only(actor)
    async with db.transaction(STAFF) as session:
        await serialize(session, RUN_LOCK)
        campaign = await find_campaign(session, campaign_id, lock=True)
        return await _run(db, session, actor, campaign, base_url)


async def _run(db: Database, session: AsyncSession, actor: Actor, campaign: Campaign, base_url: str) -> CampaignRun:
    plan = _plan_of(campaign)
    reach = await _reach(db, plan, campaign.id, {"campaign_id": str(campaign.id), "reason": campaign.reason})
    made = await agreements.create_drafts(db, actor, STAFF, reach.drafts)
    now = utcnow()
    links: list[dict[str, Any]] = [
        {
            "id": new_id(), "tenant_id": tenant_id, "campaign_id": campaign.id, "agreement_id": agreement_id,
            "previous_agreement_id": reach.previous[tenant_id], "created_at": now, "notified_at": now,
        }
        for tenant_id, agreement_id in made.created.items()
    ]  # fmt: skip
    for start in range(0, len(links), WRITE_BATCH):
        chunk = links[start : start + WRITE_BATCH]
        await session.execute(insert(CampaignAgreement.__table__), chunk)  # type: ignore[attr-defined]
        await enqueue_many(
            session,
            TOPIC,
            (
                (
                    link["tenant_id"],
                    f"{TOPIC}:{link['agreement_id']}",
                    notice_payload(campaign, link["agreement_id"], link["previous_agreement_id"],
                                   reach.contacts.get(link["tenant_id"]), base_url),
                )
                for link in chunk
            ),
        )  # fmt: skip
    skipped = [*reach.skipped, *(Skipped(tenant_id=t, reason=why) for t, why in made.refused.items())]
    campaign.runs += 1
    campaign.last_run_at = now
    campaign.skipped = [{"tenant_id": str(s.tenant_id), "reason": s.reason} for s in skipped]
    total = (
        await session.scalar(
            select(func.count()).select_from(CampaignAgreement).where(col(CampaignAgreement.campaign_id) == campaign.id)
        )
        or 0
    )
    await audit.record(
        session,
        actor,
        "campaign.started" if campaign.runs == 1 else "campaign.run",
        "campaign",
        campaign.id,
        tenant_id=None,
        data={
            "template": f"{campaign.template_key} v{campaign.template_version}" if campaign.template_key else None,
            "replace_mechanism": campaign.replace_mechanism,
            "replacement_mechanism": campaign.replacement_mechanism,
            "reason": campaign.reason,
            "due_on": campaign.due_on.isoformat(),
            "created": len(links),
            "skipped": len(skipped),
            "total": total,
        },
    )
    await session.flush()
    return CampaignRun(id=campaign.id, total=total, created=len(links), skipped=skipped)
