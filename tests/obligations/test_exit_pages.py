"""The exit pages: the owner records the end of the main agreement on /app/exit and sees what follows; legal sees
tenants in exit on /staff/exit, records terminations and issues the sealed deletion certificate, which the tenant
downloads."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import utcnow
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


def processor_cell(html: str, tenant: str) -> str:
    """The "Processor deletes by" cell of the tenant's row on /staff/exit (the fourth)."""
    row = html.split(f">{tenant}</a>")[1].split("</tr>")[0]
    return re.findall(r"<td>(.*?)</td>", row, re.S)[2]


async def test_the_owner_records_the_end_and_legal_certifies_the_deletion_which_the_tenant_downloads(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner = await admin.new_tenant(name="Tenant Leaving")
    legal = await admin.new_staff("legal")
    today = utcnow().date()
    browser = await signed_in(client, owner)

    page = await browser.get("/app/exit")
    assert page.status_code == 200 and 'action="/app/exit"' in page.text
    assert '<a href="/app/exit">ending the main agreement</a>' in (await browser.get("/app/obligations")).text
    yesterday = (today - timedelta(days=1)).isoformat()
    bad = await browser.post("/app/exit", {"ends_on": yesterday, "reason": "Moving on", "confirm": "true"})
    assert bad.status_code == 422 and 'id="ends_on-error"' in bad.text and "is in the past" in bad.text
    assert f'value="{yesterday}"' in bad.text and "Moving on" in bad.text
    unconfirmed = await browser.post("/app/exit", {"ends_on": today.isoformat()})
    assert unconfirmed.status_code == 422 and 'id="confirm-error"' in unconfirmed.text
    done = await browser.post("/app/exit", {"ends_on": today.isoformat(), "reason": "", "confirm": "true"})
    assert done.status_code == 303
    shown = await browser.get("/app/exit")
    due = (today + timedelta(days=60)).isoformat()  # clause 9.7: 30 days after the 30-day export window
    assert due in shown.text and 'href="/app/obligations"' in shown.text and "Not issued yet" in shown.text
    assert 'action="/app/exit"' not in shown.text

    member = await signed_in(client, await owner.new_user("member"))
    assert due in (await member.get("/app/exit")).text
    assert (await member.post("/app/exit", {"ends_on": today.isoformat(), "confirm": "true"})).status_code == 404
    assert (await browser.get("/staff/exit")).status_code == 404

    staff = await signed_in(client, legal)
    assert (await staff.get("/app/exit")).status_code == 404
    listed = await staff.get("/staff/exit")
    processor_due = (today + timedelta(days=60)).isoformat()  # clause 10.2: 30 days to export, 30 more to delete
    assert "Tenant Leaving" in listed.text and due in listed.text and processor_due in listed.text
    assert "status-overdue" not in processor_cell(listed.text, "Tenant Leaving")
    assert processor_due in shown.text  # the Subscriber sees it too
    assert f'href="/staff/exit/{owner.tenant_id}"' in (await staff.get(f"/staff/tenants/{owner.tenant_id}")).text
    tenant_page = await staff.get(f"/staff/exit/{owner.tenant_id}")
    assert (
        f'action="/staff/exit/{owner.tenant_id}/certificates"' in tenant_page.text and processor_due in tenant_page.text
    )
    form = {"deleted_on": today.isoformat(), "systems": "Chat database\nBackups", "statement": "Erased everything."}
    refused = await staff.post(f"/staff/exit/{owner.tenant_id}/certificates", form)
    assert refused.status_code == 422 and 'id="deleted_on-error"' in refused.text and "export window" in refused.text
    assert "Chat database\nBackups" in refused.text
    future = {**form, "deleted_on": (today + timedelta(days=31)).isoformat()}
    refused = await staff.post(f"/staff/exit/{owner.tenant_id}/certificates", future)
    assert refused.status_code == 422 and "in the future" in refused.text
    assert (await owner.get("/deletion-certificates")).json()["items"] == []


async def test_legal_records_a_termination_after_the_fact_and_certifies_the_overdue_deletion(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner = await admin.new_tenant(name="Tenant Gone")
    staff = await signed_in(client, await admin.new_staff("legal"))
    today = utcnow().date()
    ended = (today - timedelta(days=70)).isoformat()
    page = await staff.get(f"/staff/exit/{owner.tenant_id}")
    assert f'action="/staff/exit/{owner.tenant_id}/termination"' in page.text
    too_old = (today - timedelta(days=400)).isoformat()
    bad = await staff.post(f"/staff/exit/{owner.tenant_id}/termination", {"ends_on": too_old, "reason": ""})
    assert bad.status_code == 422 and 'id="ends_on-error"' in bad.text and "more than a year ago" in bad.text
    done = await staff.post(f"/staff/exit/{owner.tenant_id}/termination", {"ends_on": ended, "reason": "Unpaid"})
    assert done.status_code == 303
    assert (await owner.get("/tenant/termination")).json()["ends_on"] == ended
    browser = await signed_in(client, owner)
    shown = await browser.get("/app/exit")
    assert ended in shown.text and "legal team" in shown.text

    # The processor's deletion was due 60 days after the end (clause 10.2): 10 days ago, and nothing certified.
    processor_due = (today - timedelta(days=10)).isoformat()
    cell = processor_cell((await staff.get("/staff/exit")).text, "Tenant Gone")
    assert processor_due in cell and "status-overdue" in cell
    tenant_page = await staff.get(f"/staff/exit/{owner.tenant_id}")
    assert processor_due in tenant_page.text and "status-overdue" in tenant_page.text
    form = {"deleted_on": (today - timedelta(days=5)).isoformat(), "systems": "Chat database\nBackups",
            "statement": "Erased everything."}  # fmt: skip
    issued = await staff.post(f"/staff/exit/{owner.tenant_id}/certificates", form)
    assert issued.status_code == 303
    assert "status-overdue" not in (await staff.get(f"/staff/exit/{owner.tenant_id}")).text

    [certificate] = (await owner.get("/deletion-certificates")).json()["items"]
    cell = processor_cell((await staff.get("/staff/exit")).text, "Tenant Gone")
    assert "status-overdue" not in cell and f'href="/staff/exit/certificates/{certificate["id"]}"' in cell
    assert certificate["systems"] == ["Chat database", "Backups"]
    mine = await browser.get("/app/exit")
    assert f'href="/app/exit/certificates/{certificate["id"]}"' in mine.text
    pdf = await browser.get(f"/app/exit/certificates/{certificate['id']}")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == certificate["document_sha256"]
    assert pdf.headers["cache-control"] == "no-store"
