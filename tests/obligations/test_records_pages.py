"""The records of processing pages: a Subscriber's record with its downloads (`/app/records`), legal's tenant picker,
one tenant's record and the all-tenants CSV (`/staff/records`), all through the same services as the API."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest

from dpa_service.core import registry
from dpa_service.core.db import Database
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


def csv_rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="records-of-processing-')
    return list(csv.DictReader(io.StringIO(response.text)))


@pytest.mark.shipped_dpa  # the security measures come from the template's Annex II
async def test_a_subscriber_reads_and_downloads_its_record_and_legal_picks_a_tenant_or_takes_all(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(name="Tenant Alpha"), await admin.new_staff("legal")
    await owner.patch("/tenant", {"dpo_name": "Dora Protect", "dpo_email": "dpo@alpha.example"})
    executed = await to_status(owner, legal, "executed")
    variables = executed["variables"]
    await owner.post("/transfers", {"importer": "Lingua Ltd", "destination_country": "IN",
                                    "data_categories": ["chat transcripts"], "mechanism": "scc-2021",
                                    "start_date": "2025-01-01", "tia_reference": "TIA-9"})  # fmt: skip

    browser = await signed_in(client, owner)
    page = await browser.get("/app/records")
    assert page.status_code == 200
    assert '<a href="/app/obligations" aria-current="page">Obligations</a>' in page.text  # its section
    text = page.text
    subject = variables["processing"]["data_subject_categories"][0]
    processor = registry.processor()["legal_name"]
    for shown in (variables["controller"]["legal_name"], "Dora Protect", processor, "Lingua Ltd", "TIA-9",
                  "Cloudflare", "Encryption in transit", subject):  # fmt: skip
        assert shown.replace("'", "&#39;") in text, shown
    assert 'href="/app/obligations"' in text and "Art. 30(1)" in text
    assert 'href="/app/records/download?format=csv"' in text and 'href="/app/records/download?format=json"' in text
    [row] = csv_rows(await browser.get("/app/records/download", format="csv"))
    assert (row["tenant_id"], row["controller_name"]) == (owner.tenant_id, variables["controller"]["legal_name"])
    as_json = await browser.get("/app/records/download", format="json")
    assert as_json.headers["content-disposition"].startswith("attachment;")
    assert [r["agreement_id"] for r in json.loads(as_json.text)["items"]] == [executed["id"]]

    staff = await signed_in(client, legal)
    picker = await staff.get("/staff/records")
    assert picker.status_code == 200
    assert f'<option value="{owner.tenant_id}">Tenant Alpha (' in picker.text
    assert 'href="/staff/records/download?format=csv"' in picker.text and "Download all tenants (CSV)" in picker.text
    chosen = await staff.get("/staff/records", tenant_id=owner.tenant_id)
    assert f'<option value="{owner.tenant_id}" selected>' in chosen.text and "Lingua Ltd" in chosen.text
    assert [r["tenant_id"] for r in csv_rows(await staff.get("/staff/records/download", format="csv"))] == [
        owner.tenant_id
    ]
    one = await staff.get("/staff/records/download", format="json", tenant_id=owner.tenant_id)
    assert [r["tenant_id"] for r in json.loads(one.text)["items"]] == [owner.tenant_id]
    # Downloads are exports: the tenant's chain has the owner's two and legal's one; legal's all-tenants CSV
    # went to the platform chain. Reading the page is not an export.
    tenant_chain = [e["action"] for e in await owner.all("/audit-events")]
    assert tenant_chain.count("records_of_processing.exported") == 3
    platform_chain = [e["action"] for e in await legal.all("/audit-events")]
    assert platform_chain.count("records_of_processing.exported") == 1


async def test_without_an_executed_dpa_the_page_says_so_and_other_roles_find_no_page(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner, legal, sales = await admin.new_tenant(), await admin.new_staff("legal"), await admin.new_staff("sales")
    member = await signed_in(client, await owner.new_user("member"))
    page = await member.get("/app/records")
    assert page.status_code == 200 and "no executed DPA yet" in page.text
    assert "/app/records/download" not in page.text
    assert csv_rows(await member.get("/app/records/download", format="csv")) == []
    assert (await member.get("/app/records/download", format="xlsx")).status_code == 422
    assert (await member.get("/staff/records")).status_code == 404
    staff = await signed_in(client, legal)
    empty = await staff.get("/staff/records", tenant_id=owner.tenant_id)
    assert empty.status_code == 200 and "No tenant has an executed DPA yet." in empty.text
    assert "This tenant has no executed DPA" in empty.text
    assert (await staff.get("/app/records")).status_code == 404
    assert (await staff.get("/staff/records", tenant_id="not-a-uuid")).status_code == 422
    assert (await (await signed_in(client, sales)).get("/staff/records")).status_code == 404
