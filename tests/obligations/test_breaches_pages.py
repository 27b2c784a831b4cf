"""The breach-notice pages: a Subscriber reports on a form (errors beside the field, input kept, the deadline and
its timing shown after) and adds information; legal works a queue of every tenant's notices, unacknowledged first,
and acknowledges. The same services as the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dpa_service.core.clock import utcnow
from tests.helpers.api import Api
from tests.helpers.pages import signed_in
from tests.obligations.test_breaches import body

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


def local(moment: datetime) -> str:
    """What a datetime-local input sends: no seconds, no offset."""
    return moment.strftime("%Y-%m-%dT%H:%M")


async def test_an_owner_reports_on_the_form_fixes_an_error_sees_the_deadline_and_adds_information(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner = await admin.new_tenant()
    browser = await signed_in(client, owner)
    page = await browser.get("/app/breach-notices")
    assert page.status_code == 200 and "72 hours" in page.text and "UTC" in page.text
    assert 'href="/app/breach-notices" aria-current="page">Breach notices<' in page.text
    aware = (utcnow() - timedelta(hours=5)).replace(second=0, microsecond=0)
    fields = {
        "became_aware_at": local(utcnow() + timedelta(days=1)),
        "description": "A support agent's laptop was stolen.",
        "data_categories": "chat transcripts\nvisitor names",
        "subjects_estimate": "40",
        "records_estimate": "",
        "consequences": "",
        "measures": "Sessions revoked.",
        "contact_email": "",
    }
    bad = await browser.post("/app/breach-notices", fields)
    assert bad.status_code == 422 and 'id="became_aware_at-error"' in bad.text and "in the future" in bad.text
    assert (
        "A support agent&#39;s laptop was stolen." in bad.text
        and "chat transcripts\nvisitor names</textarea>" in bad.text
    )
    assert 'value="40"' in bad.text
    assert (await owner.get("/breach-notices")).json()["items"] == []

    done = await browser.post("/app/breach-notices", {**fields, "became_aware_at": local(aware)})
    assert done.status_code == 303, done.text
    [notice] = (await owner.get("/breach-notices")).json()["items"]
    assert done.headers["location"] == f"/app/breach-notices/{notice['id']}"
    assert notice["became_aware_at"] == aware.isoformat().replace("+00:00", "Z"), "the form's time is read as UTC"
    assert notice["data_categories"] == ["chat transcripts", "visitor names"] and notice["records_estimate"] is None
    detail = await browser.get(done.headers["location"])
    deadline = f"{aware + timedelta(hours=72):%Y-%m-%d %H:%M} UTC"
    assert f"The 72-hour deadline was {deadline}: reported on time." in detail.text
    assert ">on time<" in detail.text and "awaiting acknowledgement" in detail.text and "No updates yet." in detail.text

    blank = await browser.post(f"/app/breach-notices/{notice['id']}/updates", {"text": "  "})
    assert blank.status_code == 422 and 'id="text-error"' in blank.text
    added = await browser.post(f"/app/breach-notices/{notice['id']}/updates", {"text": "The laptop was encrypted."})
    assert added.status_code == 303
    assert "The laptop was encrypted." in (await browser.get(added.headers["location"])).text
    listed = await browser.get("/app/breach-notices")
    assert f'href="/app/breach-notices/{notice["id"]}"' in listed.text


async def test_a_member_reads_but_cannot_report_and_another_tenant_gets_404(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner, intruder = await admin.new_tenant(), await admin.new_tenant()
    nid = (await owner.post("/breach-notices", body())).json()["id"]
    member = await signed_in(client, await owner.new_user("member"))
    listed = await member.get("/app/breach-notices")
    assert f"/app/breach-notices/{nid}" in listed.text and "Report a breach" not in listed.text
    assert (await member.post("/app/breach-notices", {"description": "x"})).status_code == 404
    detail = await member.get(f"/app/breach-notices/{nid}")
    assert detail.status_code == 200 and "Add information" not in detail.text and ">late<" in detail.text
    assert (await member.post(f"/app/breach-notices/{nid}/updates", {"text": "x"})).status_code == 404
    stranger = await signed_in(client, intruder)
    assert (await stranger.get(f"/app/breach-notices/{nid}")).status_code == 404
    assert (await stranger.post(f"/app/breach-notices/{nid}/updates", {"text": "x"})).status_code == 404
    assert (await stranger.get("/staff/breach-notices")).status_code == 404
    assert (await owner.get(f"/breach-notices/{nid}")).json()["updates"] == []


async def test_legal_sees_unacknowledged_notices_first_filters_and_acknowledges_once(
    client: httpx.AsyncClient, admin: Api
) -> None:
    alpha, beta = await admin.new_tenant(name="Alpha Shop"), await admin.new_tenant(name="Beta Travel")
    legal = await admin.new_staff("legal")
    old = (await alpha.post("/breach-notices", body())).json()["id"]
    assert (await legal.post(f"/breach-notices/{old}/acknowledge")).status_code == 200
    aware = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    fresh = (await beta.post("/breach-notices", body(became_aware_at=aware))).json()["id"]

    staff = await signed_in(client, legal)
    queue = await staff.get("/staff/breach-notices")
    assert queue.status_code == 200 and '<a href="/staff/breach-notices" aria-current="page">' in queue.text
    waiting, _, acknowledged = queue.text.partition('<h2 id="section-acknowledged">')
    assert f"/staff/breach-notices/{fresh}" in waiting and "Beta Travel" in waiting and old not in waiting
    assert f"/staff/breach-notices/{old}" in acknowledged and "Alpha Shop" in acknowledged
    only = await staff.get("/staff/breach-notices", status="acknowledged")
    assert old in only.text and fresh not in only.text and "Awaiting acknowledgement</h2>" not in only.text

    detail = await staff.get(f"/staff/breach-notices/{fresh}")
    assert (
        "Breach notice from Beta Travel" in detail.text
        and "Acknowledge the breach notice from Beta Travel" in detail.text
    )
    assert "Add information" not in detail.text and "dpo@tenant.example" in detail.text
    done = await staff.post(f"/staff/breach-notices/{fresh}/acknowledge")
    assert done.status_code == 303 and done.headers["location"] == f"/staff/breach-notices/{fresh}"
    after = await staff.get(done.headers["location"])
    assert "Acknowledged; the tenant is told." in after.text and "Acknowledge the breach notice" not in after.text
    again = await staff.post(f"/staff/breach-notices/{fresh}/acknowledge")
    assert again.status_code == 409 and "already acknowledged" in again.text
    assert (await beta.get(f"/breach-notices/{fresh}")).json()["status"] == "acknowledged"
