"""Campaign pages: legal's `/staff/campaigns` (the list, a start form with a preview step, each campaign's progress
and its agreements), and the Subscriber's side: the new DPA waiting on the dashboard, and the decline form on the
agreement's page (panels added to the agreements pages, `web.panels`).

The same service calls as the JSON API: `preview`, `start_campaign`, `run_campaign`, `progress`, `list_campaigns`,
`list_agreements`, `waiting_for`, `campaign_of`, `decline`.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from dpa_service.campaigns import services
from dpa_service.campaigns.models import CampaignCreate, DeclineCreate
from dpa_service.core import registry
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.exceptions import Conflict, InvalidInput
from dpa_service.core.identity import Principal, Role
from dpa_service.http.auth import actor_of
from dpa_service.http.deps import DbDep, SettingsDep, public_base_url
from dpa_service.template_versions import services as templates
from dpa_service.transfers import services as transfers
from dpa_service.web.auth import legal_pages, subscriber_admin_pages
from dpa_service.web.panels import Panel
from dpa_service.web.validation import validated
from dpa_service.web.views import field_errors, form_data, next_page, one, redirect, render

PAGE_SIZE = 50
FIELDS = ("template_id", "replace_mechanism", "replacement_mechanism", "reason", "due_on")


async def _options(db: Database, principal: Principal) -> dict[str, Any]:
    """What the start form offers: approved template versions, every mechanism, those in force as replacements."""
    approved = await templates.list_versions(db, principal, key=None, status="approved", cursor=None, limit=200)
    invalidated = await transfers.invalidations(db, principal.scope)
    today = utcnow().date()
    catalogue = sorted(registry.mechanisms().values(), key=lambda m: m.name)
    return {
        "template_options": [(str(v.id), f"{v.key} v{v.version}: {v.title}") for v in approved.items],
        "mechanism_options": [(m.code, m.name) for m in catalogue],
        "replacement_options": [
            (m.code, m.name) for m in catalogue if services.in_force(m.code, today, invalidated) is None
        ],
    }


def _body(form: dict[str, Any]) -> CampaignCreate:
    body = {name: one(form, name).strip() or None for name in FIELDS}
    body["reason"] = body["reason"] or ""
    return validated(CampaignCreate, {k: v for k, v in body.items() if v is not None or k == "reason"})


async def _form(request: Request[Any, Any, Any], db: Database, *, status: int = 200, **context: Any) -> Template:
    context = {"preview": None, "refused": None, **context}
    return render(request, "campaigns/staff_new.html.j2", status=status, heading="New re-papering campaign",
                  **await _options(db, request.user), **context)  # fmt: skip


class StaffCampaignPages(Controller):
    """Legal's campaigns: the list, starting one (a preview of the tenants it reaches first), progress, drill-down."""

    path = "/staff/campaigns"
    include_in_schema = False
    guards = [legal_pages]

    @get("/")
    async def index(self, request: Request[Any, Any, Any], db: DbDep, cursor: FromQuery[str] = "") -> Template:
        """Every campaign, newest first, with its counts."""
        page = await services.list_campaigns(db, cursor=cursor or None, limit=PAGE_SIZE)
        return render(request, "campaigns/staff_index.html.j2", heading="Re-papering campaigns", items=page.items,
                      next_url=next_page("/staff/campaigns", page.next_cursor))  # fmt: skip

    @get("/new")
    async def new(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The start form: what the campaign moves, why and by when."""
        return await _form(request, db, form={})

    @post("/preview", status_code=200)
    async def preview(self, request: Request[Any, Any, Any], db: DbDep) -> Template:
        """The tenants the campaign would reach and how many, before legal confirms (nothing is written)."""
        form = await form_data(request)
        try:
            data = _body(form)
            preview = await services.preview(db, actor_of(request), data)
        except InvalidInput as exc:
            return await _form(request, db, status=422, form=form, errors=field_errors(exc))
        return await _form(request, db, form=form, preview=preview)

    @post("/", status_code=200)
    async def start(self, request: Request[Any, Any, Any], db: DbDep, settings: SettingsDep) -> Template | Redirect:
        """Start the campaign as previewed: a draft and a notice for every tenant it reaches."""
        form = await form_data(request)
        try:
            data = _body(form)
            run = await services.start_campaign(db, actor_of(request), data,
                                                base_url=public_base_url(request, settings))  # fmt: skip
        except InvalidInput as exc:
            return await _form(request, db, status=422, form=form, errors=field_errors(exc))
        except Conflict as exc:
            return await _form(request, db, status=409, form=form, refused=exc.detail)
        message = f"Campaign started: {_count(run.created, 'new DPA')} sent" + (
            f", {_count(len(run.skipped), 'tenant')} skipped." if run.skipped else ".")  # fmt: skip
        return redirect(request, f"/staff/campaigns/{run.id}", message)

    @get("/{campaign_id:uuid}")
    async def detail(
        self, request: Request[Any, Any, Any], campaign_id: FromPath[uuid.UUID], db: DbDep, cursor: FromQuery[str] = ""
    ) -> Template:
        """A campaign's progress and its agreements (tenant, status, decline reason), paged."""
        progress = await services.progress(db, campaign_id)
        page = await services.list_agreements(db, campaign_id, cursor=cursor or None, limit=PAGE_SIZE)
        next_url = next_page(f"/staff/campaigns/{campaign_id}", page.next_cursor)
        return render(request, "campaigns/staff_detail.html.j2", heading="Re-papering campaign", campaign=progress,
                      items=page.items, next_url=next_url)  # fmt: skip

    @post("/{campaign_id:uuid}/run", status_code=200)
    async def run(
        self, request: Request[Any, Any, Any], campaign_id: FromPath[uuid.UUID], db: DbDep, settings: SettingsDep
    ) -> Redirect:
        """Run the campaign again: the tenants that match now and have no draft from it yet."""
        run = await services.run_campaign(db, actor_of(request), campaign_id,
                                          base_url=public_base_url(request, settings))  # fmt: skip
        return redirect(
            request, f"/staff/campaigns/{campaign_id}", f"Run again: {_count(run.created, 'new DPA')} sent."
        )


class CampaignDeclinePages(Controller):
    """A Subscriber's owner or admin declines a campaign's new DPA from the agreement's page."""

    path = "/app/agreements"
    include_in_schema = False
    guards = [subscriber_admin_pages]

    @post("/{agreement_id:uuid}/decline", status_code=200)
    async def decline(
        self, request: Request[Any, Any, Any], agreement_id: FromPath[uuid.UUID], db: DbDep
    ) -> Template | Redirect:
        """Decline with a reason (legal reads it); a missing reason is shown beside the field, nothing changed."""
        form = await form_data(request)
        try:
            data = validated(DeclineCreate, {"reason": one(form, "reason")})
            await services.decline(db, actor_of(request), request.user, agreement_id, data)
        except InvalidInput as exc:
            waiting = await services.campaign_of(db, request.user, agreement_id)
            return render(request, "campaigns/app_decline.html.j2", status=422, heading="Decline the new DPA",
                          waiting=waiting, agreement_id=agreement_id, form=form, errors=field_errors(exc))  # fmt: skip
        return redirect(request, f"/app/agreements/{agreement_id}", "Declined: the processor's legal team is told why.")


# --- Panels on the agreements pages ----------------------------------------------------------------------------


async def dashboard_panel(db: Database, principal: Principal, _subject: uuid.UUID | None) -> Panel | None:
    """The dashboard: each campaign's new DPA waiting for the Subscriber, with the reason, due date and a link."""
    waiting = await services.waiting_for(db, principal)
    return Panel("campaigns/panel_waiting.html.j2", {"waiting": waiting}) if waiting else None


async def agreement_panel(db: Database, principal: Principal, agreement_id: uuid.UUID | None) -> Panel | None:
    """An agreement's page: why the campaign asks for it, by when, and (owners and admins) the decline form."""
    if agreement_id is None:
        return None
    waiting = await services.campaign_of(db, principal, agreement_id)
    if waiting is None:
        return None
    manager = principal.role in (Role.OWNER, Role.ADMIN)
    return Panel("campaigns/panel_agreement.html.j2", {"waiting": waiting, "manager": manager})


def _count(n: int, noun: str) -> str:
    """`1 new DPA`, `4 new DPAs`: what legal reads."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
