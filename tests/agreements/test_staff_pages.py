"""Staff pages for agreements and tenants: legal reviews custom clauses and countersigns from its queues, sales sees
every tenant's DPA status and downloads the executed DPA, and nobody reaches a page that is not for their role."""

from __future__ import annotations

import hashlib
import re

import httpx
import pytest

from dpa_service.core.db import Database
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.pages import Browser

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


@pytest.fixture
async def owner(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_tenant()


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


async def _signed_in(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    assert (await browser.sign_in_with_key(api.key)).status_code == 303
    return browser


async def _tenant_name(owner: Api) -> str:
    return str((await owner.get("/tenant")).json()["name"])


async def test_legal_approves_a_custom_clause_from_the_review_queue(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "in_legal_review")
    browser = await _signed_in(client, legal)
    overview = await browser.get("/staff/")
    assert overview.status_code == 200
    assert re.search(r'<span class="count">1</span> Agreements in legal review', overview.text)

    queue = await browser.get("/staff/reviews")
    name = await _tenant_name(owner)
    assert f"Review the clauses of {name}" in queue.text and f'href="/staff/reviews/{agreement["id"]}"' in queue.text
    page = await browser.get(f"/staff/reviews/{agreement['id']}")
    assert page.status_code == 200
    assert "Audit window" in page.text and "30 days" in page.text  # the clause, and where it sits in the text
    assert 'class="added"' in page.text and f"/staff/templates/{agreement['template_id']}/preview" in page.text

    refused = await browser.post(f"/staff/reviews/{agreement['id']}", {"decision": "request_changes", "comment": ""})
    assert refused.status_code == 422
    assert 'id="comment-error"' in refused.text and "is required when requesting changes" in refused.text
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "in_legal_review"

    approved = await browser.post(f"/staff/reviews/{agreement['id']}", {"decision": "approve", "comment": "Fine."})
    assert approved.status_code == 303 and approved.headers["location"] == f"/staff/agreements/{agreement['id']}"
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "ready_for_signature"
    detail = await browser.get(approved.headers["location"])
    assert "ready for signature" in detail.text and "Approved: the agreement is ready for signature." in detail.text
    assert "Nothing is waiting." in (await browser.get("/staff/reviews")).text


async def test_legal_requests_changes_with_a_comment(client: httpx.AsyncClient, owner: Api, legal: Api) -> None:
    agreement = await to_status(owner, legal, "in_legal_review")
    browser = await _signed_in(client, legal)
    await browser.get(f"/staff/reviews/{agreement['id']}")
    answer = await browser.post(
        f"/staff/reviews/{agreement['id']}", {"decision": "request_changes", "comment": "Make it 14 days."}
    )
    assert answer.status_code == 303
    after = (await owner.get(f"/agreements/{agreement['id']}")).json()
    assert after["status"] == "changes_requested" and after["review_comment"] == "Make it 14 days."


async def test_legal_countersigns_a_signed_agreement_from_the_queue(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "signed")
    browser = await _signed_in(client, legal)
    queue = await browser.get("/staff/countersign")
    name = await _tenant_name(owner)
    assert f"Countersign for {name}" in queue.text
    done = await browser.post(f"/staff/agreements/{agreement['id']}/countersign")
    assert done.status_code == 303
    executed = (await owner.get(f"/agreements/{agreement['id']}")).json()
    assert executed["status"] == "executed" and executed["document_sha256"]
    detail = await browser.get(done.headers["location"])
    assert "executed and its PDF sealed" in detail.text and executed["document_sha256"] in detail.text
    assert "Processor" in detail.text and "Subscriber" in detail.text  # both signatures' evidence
    assert "<td>confirmation link, " in detail.text, "how the Subscriber's signer's address was verified"
    again = await browser.post(f"/staff/agreements/{agreement['id']}/countersign")
    assert again.status_code == 409 and "text/html" in again.headers["content-type"]


async def test_sales_sees_a_tenants_dpa_as_executed_and_downloads_it(
    client: httpx.AsyncClient, admin: Api, owner: Api, legal: Api
) -> None:
    executed = await to_status(owner, legal, "executed")
    other = await admin.new_tenant()
    sales = await _signed_in(client, await admin.new_staff("sales"))
    name = await _tenant_name(owner)
    page = await sales.get("/staff/sales", name=name)
    assert page.status_code == 200
    assert name in page.text and await _tenant_name(other) not in page.text  # the filter
    assert "status-executed" in page.text and "standard-dpa v1" in page.text
    link = f"/staff/agreements/{executed['id']}/document"
    assert f'href="{link}"' in page.text
    document = await sales.get(link)
    assert document.status_code == 200 and document.content.startswith(b"%PDF")
    assert hashlib.sha256(document.content).hexdigest() == executed["document_sha256"]
    everyone = await sales.get("/staff/sales")
    row = re.search(re.escape(await _tenant_name(other)) + r".*?</tr>", everyone.text, re.S)
    assert row and ">none<" in row.group(0)
    assert (await sales.post(f"/staff/agreements/{executed['id']}/countersign")).status_code == 404  # read only


async def test_tenants_pages_list_filter_and_show_a_tenants_dpas(
    client: httpx.AsyncClient, admin: Api, owner: Api, legal: Api
) -> None:
    agreement = await to_status(owner, legal, "draft")
    other = await admin.new_tenant()
    browser = await _signed_in(client, legal)
    name = await _tenant_name(owner)
    listing = await browser.get("/staff/tenants", name=name.upper())
    assert name in listing.text and await _tenant_name(other) not in listing.text
    page = await browser.get(f"/staff/tenants/{owner.tenant_id}")
    assert page.status_code == 200 and f'href="/staff/agreements/{agreement["id"]}"' in page.text
    platform = await _signed_in(client, admin)
    assert (await platform.get(f"/staff/tenants/{owner.tenant_id}")).status_code == 200
    overview = await platform.get("/staff/")
    assert overview.status_code == 200 and "Tenants" in overview.text


async def test_pages_for_another_role_are_404(client: httpx.AsyncClient, admin: Api, owner: Api) -> None:
    subscriber = await _signed_in(client, owner)
    for path in ("/staff/", "/staff/templates", "/staff/reviews", "/staff/sales", "/staff/tenants"):
        assert (await subscriber.get(path)).status_code == 404, path
    sales = await _signed_in(client, await admin.new_staff("sales"))
    for path in ("/staff/reviews", "/staff/countersign", "/staff/tenants", "/staff/templates"):
        assert (await sales.get(path)).status_code == 404, path
    assert (await sales.get("/staff/sales")).status_code == 200
