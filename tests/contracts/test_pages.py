"""The contract pages: sales list, filter and create contracts (errors beside the field, input kept), attach from the
tenant's agreements, see the gate's reason beside the close form, and download the bundle; a Subscriber reads its
own contracts only; another tenant's contract or a staff page is 404. The same services as the API."""

from __future__ import annotations

import httpx
import pytest

from dpa_service.core.db import Database
from tests.contracts.support import attach, new_contract
from tests.helpers.agreements import approve_standard_dpa, new_agreement
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


async def test_sales_create_a_contract_on_the_form_attach_the_dpa_and_see_why_it_cannot_be_won(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, sales = await admin.new_tenant(), await admin.new_staff("sales")
    draft = await new_agreement(owner)
    browser = await signed_in(client, sales)
    page = await browser.get("/staff/contracts")
    assert page.status_code == 200 and 'href="/staff/contracts" aria-current="page">Contracts<' in page.text
    fields = {"tenant_id": owner.tenant_id, "reference": "CRM-9", "title": "Chat", "value": "100", "currency": "",
              "close_date": ""}  # fmt: skip
    bad = await browser.post("/staff/contracts", fields)
    assert bad.status_code == 422 and 'id="currency-error"' in bad.text and 'value="CRM-9"' in bad.text
    assert (await sales.get("/contracts")).json()["items"] == []
    done = await browser.post("/staff/contracts", {**fields, "currency": "EUR"})
    assert done.status_code == 303
    detail_url = done.headers["location"]
    detail = await browser.get(detail_url)
    assert "missing" in detail.text and f'<option value="{draft["id"]}"' in detail.text

    attached = await browser.post(f"{detail_url}/agreements", {"agreement_id": draft["id"]})
    assert attached.status_code == 303
    refused = await browser.post(f"{detail_url}/close", {"outcome": "won"})
    assert refused.status_code == 409 and 'id="outcome-error"' in refused.text
    assert "only in progress (draft)" in refused.text
    listing = await browser.get("/staff/contracts", tenant_id=owner.tenant_id)
    assert "CRM-9" in listing.text and "in progress" in listing.text
    other = await browser.get("/staff/contracts", tenant_id=(await admin.new_tenant()).tenant_id or "")
    assert "CRM-9" not in other.text
    assert (await browser.get(f"{detail_url}/bundle")).status_code == 409  # nothing executed yet
    detached = await browser.post(f"{detail_url}/agreements/{draft['id']}/detach")
    assert (
        detached.status_code == 303 and (await sales.get(detail_url.replace("/staff", ""))).json()["agreements"] == []
    )


async def test_a_subscriber_reads_its_own_contracts_and_nothing_else(client: httpx.AsyncClient, admin: Api) -> None:
    owner, other, sales = await admin.new_tenant(), await admin.new_tenant(), await admin.new_staff("sales")
    mine = await new_contract(sales, owner.tenant_id, reference="MINE-1")
    theirs = await new_contract(sales, other.tenant_id, reference="THEIRS-1")
    browser = await signed_in(client, owner)
    listing = await browser.get("/app/contracts")
    assert listing.status_code == 200 and "MINE-1" in listing.text and "THEIRS-1" not in listing.text
    assert 'href="/app/contracts" aria-current="page">Contracts<' in listing.text
    detail = await browser.get(f"/app/contracts/{mine['id']}")
    assert detail.status_code == 200 and "No DPA attached" in detail.text and "Close the contract" not in detail.text
    assert (await browser.get(f"/app/contracts/{theirs['id']}")).status_code == 404
    assert (await browser.get("/staff/contracts")).status_code == 404
    assert (await browser.get(f"/staff/contracts/{mine['id']}")).status_code == 404


async def test_staff_see_the_attached_dpa_on_the_contract_page(
    client: httpx.AsyncClient, admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    draft = await new_agreement(owner)
    contract = await attach(legal, (await new_contract(legal, owner.tenant_id))["id"], draft["id"])
    browser = await signed_in(client, legal)
    page = await browser.get(f"/staff/contracts/{contract['id']}")
    assert page.status_code == 200 and f"/staff/agreements/{draft['id']}" in page.text and "Detach" in page.text
    assert f'<option value="{draft["id"]}"' not in page.text  # already attached: not offered again
