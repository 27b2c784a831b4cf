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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from dpa_service.agreements import services as agreements
from dpa_service.audit import services as audit
from dpa_service.campaigns.models import (
    Campaign,
    CampaignAgreement,
    CampaignAgreementPublic,
    CampaignCreate,
    CampaignPreview,
    CampaignProgress,
    CampaignRun,
    DeclineCreate,
    Skipped,
    WaitingDpa,
)
from dpa_service.campaigns.notices import TOPIC, notice_payload
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.events import checks
from dpa_service.core.exceptions import Conflict, FieldError, InvalidInput, NotFound, PermissionDenied
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.ids import new_id
from dpa_service.http.pagination import Page, decode_id_cursor, page_of
from dpa_service.notifications.outbox import enqueue_many
from dpa_service.template_versions import services as templates
from dpa_service.tenants import services as tenants
from dpa_service.transfers import services as transfers

WRITE_BATCH = 1000
STAFF = Scope(cross_tenant=True)  # legal's scope: campaigns work across tenants
RUN_LOCK = 0x43414D50  # "CAMP": one campaign run at a time (PostgreSQL advisory lock, transaction-scoped)
EXECUTED_OR_LATER = frozenset({"executed", "superseded"})
SIGNED_OR_LATER = frozenset({"signed", *EXECUTED_OR_LATER})
DECLINED = frozenset({"voided"})
DECLINABLE = frozenset(agreements.OPEN_STATUSES) - {"signed"}  # not yet signed
PREVIEW_NAMES = 50


# --- What a campaign asks for ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """The template version a campaign moves tenants to (`key` v`version`)."""

    id: uuid.UUID
    key: str
    version: int


@dataclass(frozen=True)
class Plan:
    template: Target | None
    replace: str | None
    replacement: str | None


def _legal(actor: Actor) -> None:
    """Campaigns are legal's (the CLI and demo act as the system, role None)."""
    if actor.role not in (Role.LEGAL.value, None):
        raise PermissionDenied("Re-papering campaigns are started by the processor's legal team.")


def in_force(code: str, today: date, invalidated: dict[str, date]) -> str | None:
    """Why `code` cannot be relied on for a new DPA today (None: it can)."""
    mechanism = registry.mechanisms()[code]
    ends = [d for d in (mechanism.valid_until, mechanism.new_transfers_until, invalidated.get(code)) if d is not None]
    if mechanism.valid_from > today:
        return f"is not in force before {mechanism.valid_from.isoformat()}"
    if ends and min(ends) <= today:
        return f"is not in force for a new DPA since {min(ends).isoformat()}"
    return None


async def _plan(db: Database, data: CampaignCreate) -> Plan:
    """Check a campaign's terms; every failing field is named (422)."""
    errors: list[FieldError] = []
    today = utcnow().date()
    if data.template_id is None and data.replace_mechanism is None:
        errors.append(FieldError("template_id", "give template_id and/or replace_mechanism: what the campaign moves"))
    target = None
    if data.template_id is not None:
        try:
            version = await templates.version_by_id(db, STAFF, data.template_id)
        except NotFound:
            errors.append(FieldError("template_id", "no such template version"))
        else:
            if version.status != "approved":
                errors.append(
                    FieldError("template_id", f"is {version.status}: a campaign moves tenants onto an approved version")
                )
            target = Target(version.id, version.key, version.version)
    catalogue = registry.mechanisms()
    invalidated = await transfers.invalidations(db, STAFF)
    if data.replace_mechanism is not None and data.replace_mechanism not in catalogue:
        errors.append(FieldError("replace_mechanism", "is not a mechanism of the catalogue"))
    if data.replacement_mechanism is not None:
        if data.replace_mechanism is None:
            errors.append(FieldError("replacement_mechanism", "is given only with replace_mechanism"))
        elif data.replacement_mechanism not in catalogue:
            errors.append(FieldError("replacement_mechanism", "is not a mechanism of the catalogue"))
        elif data.replacement_mechanism == data.replace_mechanism:
            errors.append(FieldError("replacement_mechanism", "is the mechanism it would replace"))
        elif (why := in_force(data.replacement_mechanism, today, invalidated)) is not None:
            errors.append(FieldError("replacement_mechanism", why))
    elif data.replace_mechanism is not None:
        errors.append(FieldError("replacement_mechanism", "is required with replace_mechanism: what tenants move to"))
    if data.due_on <= today:
        errors.append(FieldError("due_on", f"must be after today ({today.isoformat()})"))
    if errors:
        raise InvalidInput("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return Plan(target, data.replace_mechanism, data.replacement_mechanism)


def swapped(mechanisms: Sequence[str], replace: str | None, replacement: str | None) -> list[str]:
    """The mechanisms with `replace` replaced by `replacement` in its place, each code once."""
    result: list[str] = []
    for code in mechanisms:
        code = replacement if code == replace and replacement else code
        if code != replace and code not in result:
            result.append(code)
    return result


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
        if plan.replace and isinstance(chosen, list):
            variables = {
                **variables,
                "transfers": {**transfers_part, "mechanisms": swapped(chosen, plan.replace, plan.replacement)},
            }
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
    _legal(actor)
    plan = await _plan(db, data)
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


async def _serialize(session: AsyncSession) -> None:
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RUN_LOCK})


async def start_campaign(db: Database, actor: Actor, data: CampaignCreate, *, base_url: str = "") -> CampaignRun:
    """Legal starts a campaign: checked terms (422 naming each field), a draft and a notice for every tenant it
    reaches, all in one transaction. An identical campaign (same template version and mechanisms) is 409."""
    _legal(actor)
    plan = await _plan(db, data)
    async with db.transaction(STAFF) as session:
        await _serialize(session)
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
    _legal(actor)
    async with db.transaction(STAFF) as session:
        await _serialize(session)
        campaign = await _campaign(session, campaign_id, lock=True)
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


# --- Reading ---------------------------------------------------------------------------------------------------


async def _campaign(session: AsyncSession, campaign_id: uuid.UUID, *, lock: bool = False) -> Campaign:
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
        campaign = await _campaign(session, campaign_id)
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
        await _campaign(session, campaign_id)
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


# --- The Subscriber's side -------------------------------------------------------------------------------------


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
