"""Re-papering campaigns (API.md, "Re-papering"): legal starts, runs again and follows campaigns; a Subscriber's
owner or admin declines a campaign's new DPA."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody

from dpa_service.agreements.services import AgreementPublic
from dpa_service.campaigns import services
from dpa_service.campaigns.models import (
    CampaignAgreementPublic,
    CampaignCreate,
    CampaignPreview,
    CampaignProgress,
    CampaignRun,
    DeclineCreate,
)
from dpa_service.core.identity import Principal
from dpa_service.http.auth import legal_only, subscriber_admin
from dpa_service.http.deps import ActorDep, DbDep, PrincipalDep, SettingsDep, public_base_url
from dpa_service.http.idempotency import create_once, created
from dpa_service.http.pagination import DEFAULT_LIMIT, Cursor, Limit, Page

CampaignId = FromPath[uuid.UUID]


class CampaignsController(Controller):
    path = "/api/v1/campaigns"
    tags = ["Re-papering"]
    guards = [legal_only]

    @post("/", operation_id="startCampaign", responses=created(CampaignRun))
    async def start(
        self,
        data: JSONBody[CampaignCreate],
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> Response[bytes]:
        """Legal starts a campaign: `template_id` (an approved version: tenants on an older version of its key move
        to it) and/or `replace_mechanism` with `replacement_mechanism` (in force today), a `reason` and a future
        `due_on`. Every tenant whose current executed DPA matches gets one pre-filled draft and one notice; tenants
        in exit or with an open draft from another campaign are skipped and listed. An identical campaign is 409."""
        work = partial(services.start_campaign, db, actor, data, base_url=public_base_url(request, settings))
        return await create_once(db, request, request.user, work)

    @post("/preview", operation_id="previewCampaign", status_code=200)
    async def preview(self, data: JSONBody[CampaignCreate], db: DbDep, actor: ActorDep) -> CampaignPreview:
        """Who the campaign would reach if started now (`count`, the first tenants by name, the skipped), writing
        nothing."""
        return await services.preview(db, actor, data)

    @get("/", operation_id="listCampaigns")
    async def list_campaigns(
        self, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[CampaignProgress]:
        """Campaigns, newest first, each with its progress."""
        return await services.list_campaigns(db, cursor=cursor, limit=limit)

    @get("/{campaign_id:uuid}", operation_id="getCampaign")
    async def get_campaign(self, campaign_id: CampaignId, db: DbDep) -> CampaignProgress:
        """A campaign's progress, derived from its agreements' statuses: `total`, `notified`, `signed` (signed or
        later), `executed`, `declined`, `overdue` (neither executed nor declined after `due_on`), `pending`."""
        return await services.progress(db, campaign_id)

    @post("/{campaign_id:uuid}/run", operation_id="runCampaign", status_code=200)
    async def run(
        self,
        campaign_id: CampaignId,
        request: Request[Principal, Any, Any],
        db: DbDep,
        actor: ActorDep,
        settings: SettingsDep,
    ) -> CampaignRun:
        """Run the campaign again: a draft and a notice for each tenant that matches now and has none from it yet
        (a tenant is never given a second draft by the same campaign)."""
        return await services.run_campaign(db, actor, campaign_id, base_url=public_base_url(request, settings))

    @get("/{campaign_id:uuid}/agreements", operation_id="listCampaignAgreements")
    async def agreements(
        self, campaign_id: CampaignId, db: DbDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
    ) -> Page[CampaignAgreementPublic]:
        """The campaign's agreements with their tenant, status, and the decline reason of those declined."""
        return await services.list_agreements(db, campaign_id, cursor=cursor, limit=limit)


class CampaignDeclineController(Controller):
    path = "/api/v1/agreements"
    tags = ["Re-papering"]

    @post("/{agreement_id:uuid}/decline", guards=[subscriber_admin], operation_id="declineAgreement", status_code=200)
    async def decline(
        self,
        agreement_id: FromPath[uuid.UUID],
        data: JSONBody[DeclineCreate],
        principal: PrincipalDep,
        db: DbDep,
        actor: ActorDep,
    ) -> AgreementPublic:
        """A Subscriber's owner or admin declines a campaign's new DPA with a `reason` legal reads: only a
        campaign's draft not yet signed (else 409). It becomes `voided` and counts as declined."""
        return await services.decline(db, actor, principal, agreement_id, data)
