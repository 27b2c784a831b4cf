"""The transfer pages: a Subscriber's register with the as-of assessment, its transfers and prior notices; legal's
mechanism catalogue, invalidations and the affected-tenants report, all through the same services as the API."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import utcnow
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only

TRANSFER = {
    "importer": "Acme Cloud Inc.",
    "destination_country": "US",
    "data_categories": ["chat transcripts"],
    "mechanism": "eu-us-dpf",
    "importer_certified": True,
    "start_date": "2024-01-01",
}


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant(name="Tenant Alpha")


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


async def record(owner: Api, **overrides: object) -> dict[str, object]:
    response = await owner.post("/transfers", {**TRANSFER, **overrides})
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_transfer_with_a_bad_field_shows_the_error_beside_it_and_keeps_the_input_then_records(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = await signed_in(client, owner)
    form = await browser.get("/app/transfers/new")
    assert form.status_code == 200 and '<option value="KR">Republic of Korea</option>' in form.text
    fields = {
        "importer": "Lingua Ltd",
        "importer_kind": "other",
        "destination_country": "GB",
        "data_categories": "chat transcripts\ncontact details",
        "mechanism": "adequacy",
        "start_date": "2026-03-01",
        "end_date": "2026-02-01",
        "importer_certified": "",
        "tia_reference": "",
    }
    bad = await browser.post("/app/transfers", fields)
    assert bad.status_code == 422
    assert 'id="end_date-error"' in bad.text and "must not be before start_date" in bad.text
    assert 'value="Lingua Ltd"' in bad.text and '<option value="GB" selected>United Kingdom</option>' in bad.text

    good = await browser.post("/app/transfers", {**fields, "end_date": ""})
    assert good.status_code == 303
    [saved] = (await owner.get("/transfers")).json()["items"]
    assert (saved["importer"], saved["data_categories"], saved["end_date"]) == (
        "Lingua Ltd",
        ["chat transcripts", "contact details"],
        None,
    )
    register = await browser.get("/app/transfers")
    assert "Recorded the transfer to Lingua Ltd" in register.text and "United Kingdom" in register.text


async def test_legal_invalidates_a_mechanism_and_the_assessment_after_that_date_shows_the_transfer_invalid(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    await record(owner)
    await record(owner, importer="Tokyo Support KK", destination_country="JP", mechanism="adequacy")
    staff = await signed_in(client, legal)
    catalogue = await staff.get("/staff/mechanisms")
    assert "EU-U.S. Data Privacy Framework" in catalogue.text and "/staff/mechanisms/eu-us-dpf" in catalogue.text
    fields = {"invalid_from": "2025-01-01", "reason": "Annulled by the CJEU", "legal_reference": "C-703/25 P"}
    unconfirmed = await staff.post("/staff/mechanisms/eu-us-dpf/invalidation", fields)
    assert unconfirmed.status_code == 422 and 'id="confirm-error"' in unconfirmed.text
    assert 'value="C-703/25 P"' in unconfirmed.text
    catalogue_now = {m["code"]: m for m in (await legal.get("/transfer-mechanisms")).json()["items"]}
    assert catalogue_now["eu-us-dpf"]["invalidated_from"] is None

    done = await staff.post("/staff/mechanisms/eu-us-dpf/invalidation", {**fields, "confirm": "true"})
    assert done.status_code == 303 and done.headers["location"] == "/staff/mechanisms/eu-us-dpf"
    report = await staff.get("/staff/mechanisms/eu-us-dpf")
    assert "Tenant Alpha" in report.text and "Acme Cloud Inc. (United States): open" in report.text

    browser = await signed_in(client, owner)
    page = await browser.get("/app/transfers", as_of="2025-02-01")
    assert page.status_code == 200
    assert "invalidated with effect from 2025-01-01" in page.text
    assert "EU Standard Contractual Clauses (2021)" in page.text  # the replacement, by name
    assessment = page.text.split("<h2>The register</h2>")[0]
    assert assessment.index(">invalid<") < assessment.index("Acme Cloud") < assessment.index(">valid<")
    before = await browser.get("/app/transfers", as_of="2024-06-01")
    assert ">invalid<" not in before.text.split("<h2>The register</h2>")[0]


async def test_an_unreadable_as_of_date_is_an_error_beside_the_field(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await signed_in(client, owner)
    page = await browser.get("/app/transfers", as_of="31/12/2025")
    assert page.status_code == 422 and 'id="as_of-error"' in page.text and 'value="31/12/2025"' in page.text


async def test_an_owner_ends_a_transfer_from_its_edit_page(client: httpx.AsyncClient, owner: Api) -> None:
    transfer = await record(owner)
    browser = await signed_in(client, owner)
    form = await browser.get(f"/app/transfers/{transfer['id']}/edit")
    assert form.status_code == 200 and "chat transcripts</textarea>" in form.text
    empty = await browser.post(
        f"/app/transfers/{transfer['id']}/edit", {"mechanism": "eu-us-dpf", "data_categories": "", "end_date": ""}
    )
    assert empty.status_code == 422 and 'id="data_categories-error"' in empty.text
    saved = await browser.post(
        f"/app/transfers/{transfer['id']}/edit",
        {"mechanism": "eu-us-dpf", "importer_certified": "true", "data_categories": "chat transcripts",
         "end_date": "2025-06-30", "tia_reference": "TIA-7"},
    )  # fmt: skip
    assert saved.status_code == 303
    after = (await owner.get(f"/transfers/{transfer['id']}")).json()
    assert (after["end_date"], after["tia_reference"], after["importer_certified"]) == ("2025-06-30", "TIA-7", True)


async def test_another_tenant_gets_404_for_a_transfers_edit_page(
    client: httpx.AsyncClient, admin: Api, owner: Api
) -> None:
    transfer = await record(owner)
    other = await signed_in(client, await admin.new_tenant())
    assert (await other.get(f"/app/transfers/{transfer['id']}/edit")).status_code == 404
    body = {"mechanism": "scc-2021", "end_date": "2025-01-01", "data_categories": "x"}
    forced = await other.post(f"/app/transfers/{transfer['id']}/edit", body)
    assert forced.status_code == 404
    assert (await owner.get(f"/transfers/{transfer['id']}")).json()["end_date"] is None


async def test_a_member_reads_the_register_but_cannot_record_a_transfer(client: httpx.AsyncClient, owner: Api) -> None:
    await record(owner)
    browser = await signed_in(client, await owner.new_user("member"))
    page = await browser.get("/app/transfers")
    assert page.status_code == 200 and "Acme Cloud Inc." in page.text
    assert "Record a transfer" not in page.text and "Change the transfer" not in page.text
    forced = await browser.post("/app/transfers", {**TRANSFER, "data_categories": "x", "importer_certified": "true"})
    assert forced.status_code == 404
    assert len((await owner.get("/transfers")).json()["items"]) == 1


async def test_a_transfer_notice_for_a_past_date_or_an_eea_destination_is_refused_beside_the_field(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    browser = await signed_in(client, owner)
    await browser.get("/app/transfers/notices")
    yesterday = (utcnow().date() - timedelta(days=1)).isoformat()
    fields = {"destination_country": "FR", "recipient": "Paris Analytics", "purpose": "Analytics",
              "mechanism": "scc-2021", "planned_date": yesterday}  # fmt: skip
    bad = await browser.post("/app/transfers/notices", fields)
    assert bad.status_code == 422
    assert 'id="destination_country-error"' in bad.text and "is in the EU/EEA" in bad.text
    assert 'id="planned_date-error"' in bad.text and 'value="Paris Analytics"' in bad.text

    soon = (utcnow().date() + timedelta(days=14)).isoformat()
    good = await browser.post("/app/transfers/notices", {**fields, "destination_country": "IN", "planned_date": soon})
    assert good.status_code == 303
    listed = await browser.get("/app/transfers/notices")
    assert "Paris Analytics" in listed.text and "India" in listed.text
    assert [n["recipient"] for n in (await legal.get("/transfer-notices")).json()["items"]] == ["Paris Analytics"]


async def test_a_subscriber_cannot_open_the_mechanism_pages(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await signed_in(client, owner)
    assert (await browser.get("/staff/mechanisms")).status_code == 404
    assert (await browser.get("/staff/mechanisms/eu-us-dpf")).status_code == 404
