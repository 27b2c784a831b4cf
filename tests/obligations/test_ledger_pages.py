"""The ledger pages: a Subscriber's obligations with what to do next and the attestation form; legal's view of who
is overdue on what and any tenant's ledger. The same services as the API, whose tests run on both databases."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from tests.helpers.api import Api
from tests.helpers.pages import signed_in
from tests.obligations.ledger_support import ledger_for

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


async def test_a_subscriber_reads_the_ledger_and_attests_with_errors_beside_the_field(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    owner = await admin.new_tenant(name="Tenant Alpha")
    await ledger_for(db, owner)
    browser = await signed_in(client, owner)
    page = await browser.get("/app/obligations")
    assert page.status_code == 200
    assert '<a href="/app/obligations" aria-current="page">Obligations</a>' in page.text
    assert "Make personnel aware of these obligations" in page.text and "9.6" in page.text
    assert "status-not-applicable" in page.text and "Applies once the main agreement ends." in page.text
    assert "Attest that your personnel are aware of these obligations" in page.text  # the next step

    detail = await browser.get("/app/obligations/personnel_awareness")
    assert detail.status_code == 200 and 'name="personnel_count"' in detail.text and "Not attested yet." in detail.text
    bad = await browser.post(
        "/app/obligations/personnel_awareness/attestations",
        {"statement": "All 14 agents briefed in the March all-hands.", "evidence": "HR-2026-03", "personnel_count": ""},
    )
    assert bad.status_code == 422
    assert 'id="personnel_count-error"' in bad.text
    assert "All 14 agents briefed in the March all-hands." in bad.text and 'value="HR-2026-03"' in bad.text
    good = await browser.post(
        "/app/obligations/personnel_awareness/attestations",
        {
            "statement": "All 14 agents briefed in the March all-hands.",
            "evidence": "HR-2026-03",
            "personnel_count": "14",
        },
    )
    assert good.status_code == 303 and good.headers["location"] == "/app/obligations/personnel_awareness"
    shown = await browser.get("/app/obligations/personnel_awareness")
    assert "Attested: your statement is on the record." in shown.text
    assert "All 14 agents briefed in the March all-hands." in shown.text and "<td>14</td>" in shown.text
    assert f"<td>{utcnow().year}</td>" in shown.text and "status-met" in shown.text
    assert [
        a["personnel_count"] for a in (await owner.get("/obligations/personnel_awareness/attestations")).json()["items"]
    ] == [14]

    # Where an attestation would change nothing, the page shows where the obligation is kept instead of the form.
    for code, link in (("breach_notice_72h", '<a href="/app/breach-notices">Breach notices</a>'),
                       ("delete_end_user_data", '<a href="/app/exit">Exit</a>')):  # fmt: skip
        kept = await browser.get(f"/app/obligations/{code}")
        assert kept.status_code == 200 and 'name="statement"' not in kept.text
        assert "An attestation would change nothing now: it" in kept.text and link in kept.text

    member = await signed_in(client, await owner.new_user("member"))
    read_only = await member.get("/app/obligations/personnel_awareness")
    assert read_only.status_code == 200 and 'name="statement"' not in read_only.text
    assert "All 14 agents briefed" in read_only.text
    refused = await member.post("/app/obligations/records_of_processing/attestations", {"statement": "x"})
    assert refused.status_code == 404
    assert (await browser.get("/app/obligations/no_such_code")).status_code == 404
    assert (await browser.get("/staff/obligations")).status_code == 404


async def test_legal_sees_who_is_overdue_on_what_and_each_tenants_ledger(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    behind, on_time = await admin.new_tenant(name="Tenant Behind"), await admin.new_tenant(name="Tenant On Time")
    await ledger_for(db, behind, executed_at=utcnow() - timedelta(days=400))
    await ledger_for(db, on_time)
    attested = await behind.post("/obligations/records_of_processing/attestations", {"statement": "Kept in our ROPA."})
    assert attested.status_code == 201
    browser = await signed_in(client, await admin.new_staff("legal"))

    overdue = await browser.get("/staff/obligations")
    assert overdue.status_code == 200 and '<option value="overdue" selected>' in overdue.text
    row = f'href="/staff/obligations/{behind.tenant_id}'
    assert "Tenant Behind" in overdue.text and f'{row}/personnel_awareness">' in overdue.text
    assert "Tenant On Time" not in overdue.text
    assert f'{row}/records_of_processing">' not in overdue.text  # attested today: met
    every = await browser.get("/staff/obligations", status="all", code="delete_end_user_data")
    assert "Tenant Behind" in every.text and "Tenant On Time" in every.text
    assert f'{row}/delete_end_user_data">' in every.text and f'{row}/personnel_awareness">' not in every.text
    assert (await browser.get("/staff/obligations", status="late")).status_code == 422

    ledger = await browser.get("/staff/obligations", tenant_id=behind.tenant_id)
    assert ledger.status_code == 200 and "Obligations of Tenant Behind" in ledger.text
    assert ledger.text.count("/staff/obligations/" + str(behind.tenant_id) + "/") == 6
    history = await browser.get(f"/staff/obligations/{behind.tenant_id}/records_of_processing")
    assert history.status_code == 200 and "Kept in our ROPA." in history.text and 'name="statement"' not in history.text


async def test_the_dashboard_says_how_the_tenant_stands_on_its_obligations(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    owner = await admin.new_tenant(name="Tenant Dash")
    browser = await signed_in(client, owner)
    before = await browser.get("/app/")
    assert "Your obligations under clause 9 start when your DPA is executed." in before.text

    await ledger_for(db, owner, executed_at=utcnow() - timedelta(days=30))  # the breach happens under the DPA
    aware = (utcnow() - timedelta(hours=80)).isoformat().replace("+00:00", "Z")
    late = await owner.post("/breach-notices", {"became_aware_at": aware, "description": "Laptop stolen.",
                                                "data_categories": ["chat transcripts"], "subjects_estimate": 3,
                                                "measures": "Disk was encrypted; keys rotated."})  # fmt: skip
    assert late.status_code == 201 and late.json()["late"] is True
    after = await browser.get("/app/")
    assert "<strong>1 overdue</strong>, 4 open, 0 met, 1 not applicable yet." in after.text
    assert '<a href="/app/obligations">See what each asks of you</a>' in after.text
