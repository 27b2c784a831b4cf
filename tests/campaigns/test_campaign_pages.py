"""The campaign pages: legal starts a campaign on `/staff/campaigns` (a mistake shown beside its field, a preview of
the tenants it reaches, then the start) and follows its progress; the Subscriber sees the new DPA waiting on its
dashboard and declines it on the agreement's page. The database behaviour is tests/campaigns/test_campaigns.py's,
on both databases."""

from __future__ import annotations

import html
from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from tests.campaigns.test_campaigns import PS, REASON, SCC, executed, on
from tests.helpers.agreements import approve_standard_dpa
from tests.helpers.api import Api
from tests.helpers.bulk import clone_executed, new_tenants
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


async def test_legal_previews_starts_and_follows_a_campaign_and_the_subscriber_declines_it(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant(name="Acme Retail")
    first = await executed(owner, legal, on(PS))
    await clone_executed(db, first["id"], await new_tenants(db, 3))
    staff = await signed_in(client, legal)
    listing = await staff.get("/staff/campaigns")
    assert (
        listing.status_code == 200 and 'href="/staff/campaigns"' in listing.text and "No campaign yet" in listing.text
    )

    due_on = (utcnow().date() + timedelta(days=45)).isoformat()
    body = {"replace_mechanism": PS, "replacement_mechanism": SCC, "reason": REASON, "due_on": "2020-01-01"}
    refused = await staff.post("/staff/campaigns/preview", body)
    assert refused.status_code == 422 and 'id="due_on-error"' in refused.text
    assert REASON in html.unescape(refused.text), "what was typed is kept"
    preview = await staff.post("/staff/campaigns/preview", {**body, "due_on": due_on})
    assert preview.status_code == 200 and "It will reach 4 tenants" in preview.text and "Acme Retail" in preview.text
    started = await staff.post("/staff/campaigns", {**body, "due_on": due_on})
    assert started.status_code == 303, started.text
    page = await staff.get(started.headers["location"])
    assert "Campaign started: 4 new DPAs sent" in page.text
    assert '<dd id="count-total">4</dd>' in page.text and '<dd id="count-declined">0</dd>' in page.text

    subscriber = await signed_in(client, owner)
    dashboard = await subscriber.get("/app/")
    assert "A new DPA is waiting for you" in dashboard.text and due_on in dashboard.text
    assert html.escape(REASON) in dashboard.text
    draft_id = dashboard.text.split('href="/app/agreements/')[1].split('"')[0]
    detail = await subscriber.get(f"/app/agreements/{draft_id}")
    assert "Decline the new DPA" in detail.text
    empty = await subscriber.post(f"/app/agreements/{draft_id}/decline", {"reason": ""})
    assert empty.status_code == 422 and 'id="reason-error"' in empty.text
    declined = await subscriber.post(f"/app/agreements/{draft_id}/decline", {"reason": "We stopped US transfers."})
    assert declined.status_code == 303
    assert "A new DPA is waiting for you" not in (await subscriber.get("/app/")).text

    progress = await staff.get(started.headers["location"])
    assert '<dd id="count-declined">1</dd>' in progress.text and "We stopped US transfers." in progress.text
    assert (await subscriber.get("/staff/campaigns")).status_code == 404
