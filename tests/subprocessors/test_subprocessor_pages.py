"""The sub-processor pages: a Subscriber reads the list and answers pending changes; legal publishes changes and
resolves objections, all through the same services as the API."""

from __future__ import annotations

import httpx
import pytest

from dpa_service.core.db import Database
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.pages import signed_in
from tests.helpers.subprocessors import publish, vendor

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


@pytest.fixture
async def owner(admin: Api, legal: Api, db: Database) -> Api:
    """A Subscriber with an executed DPA."""
    await approve_standard_dpa(db)
    owner = await admin.new_tenant()
    await to_status(owner, legal, "executed")
    return owner


async def test_a_subscriber_with_an_executed_dpa_objects_to_a_pending_change_and_the_api_shows_it(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    change = await publish(legal, add=[vendor(name="Acme Translate", locations=["US", "KR"])])
    browser = await signed_in(client, owner)
    page = await browser.get("/app/subprocessors")
    assert page.status_code == 200
    assert f"Object to version {change['version']}" in page.text and f"Accept version {change['version']}" in page.text
    assert "Acme Translate" in page.text and "United States, Republic of Korea" in page.text
    assert "Standard Contractual Clauses" in page.text  # the mechanism by name, not its code

    answer = await browser.post(
        f"/app/subprocessors/changes/{change['id']}/objections", {"reason": "We cannot send chats to Korea."}
    )
    assert answer.status_code == 303
    objections = (await owner.get("/objections")).json()["items"]
    assert [(o["change_id"], o["reason"]) for o in objections] == [(change["id"], "We cannot send chats to Korea.")]
    after = await browser.get("/app/subprocessors")
    assert "Your objection is recorded" in after.text and "objected" in after.text
    assert f"Object to version {change['version']}" not in after.text


async def test_an_objection_without_a_reason_is_an_error_beside_the_field_and_records_nothing(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    change = await publish(legal)
    browser = await signed_in(client, owner)
    await browser.get("/app/subprocessors")
    answer = await browser.post(f"/app/subprocessors/changes/{change['id']}/objections", {"reason": ""})
    assert answer.status_code == 422
    assert f'id="reason-{change["id"]}-error"' in answer.text
    assert (await owner.get("/objections")).json()["items"] == []


async def test_a_member_sees_no_object_button_and_a_forced_post_changes_nothing(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    change = await publish(legal)
    member = await owner.new_user("member")
    browser = await signed_in(client, member)
    page = await browser.get("/app/subprocessors")
    assert page.status_code == 200 and f"List version {change['version']}" in page.text
    assert "Object to version" not in page.text and "Accept version" not in page.text
    forced = await browser.post(f"/app/subprocessors/changes/{change['id']}/objections", {"reason": "Not on my watch"})
    assert forced.status_code == 404
    assert (await owner.get("/objections")).json()["items"] == []


async def test_a_subscriber_without_an_executed_dpa_is_told_why_it_cannot_object(
    client: httpx.AsyncClient, admin: Api, legal: Api, owner: Api
) -> None:
    change = await publish(legal)
    newcomer = await admin.new_tenant()
    browser = await signed_in(client, newcomer)
    await browser.get("/app/subprocessors")
    answer = await browser.post(f"/app/subprocessors/changes/{change['id']}/objections", {"reason": "Too risky"})
    assert answer.status_code == 409
    assert "Only a Subscriber with an executed DPA can answer" in answer.text


async def test_a_subscriber_accepts_a_pending_change_from_the_page(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    change = await publish(legal)
    browser = await signed_in(client, owner)
    await browser.get("/app/subprocessors")
    answer = await browser.post(f"/app/subprocessors/changes/{change['id']}/acceptance")
    assert answer.status_code == 303
    mine = (await owner.get("/tenant/subprocessors")).json()
    assert mine["pending_changes"][0]["accepted"]["kind"] == "express"
    again = await browser.post(f"/app/subprocessors/changes/{change['id']}/acceptance")
    assert again.status_code == 409 and "already accepted" in again.text


async def test_a_past_list_version_is_shown_whole(client: httpx.AsyncClient, owner: Api, legal: Api) -> None:
    current = (await owner.get("/subprocessors")).json()
    browser = await signed_in(client, owner)
    page = await browser.get(f"/app/subprocessors/versions/{current['version']}")
    assert page.status_code == 200
    assert f"Sub-processor list version {current['version']}</h1>" in page.text
    assert all(item["name"] in page.text for item in current["items"])
    assert (await browser.get("/app/subprocessors/versions/999")).status_code == 404


async def test_legal_publishes_a_change_through_the_form(client: httpx.AsyncClient, owner: Api, legal: Api) -> None:
    removed = (await legal.get("/subprocessors")).json()["items"][0]["name"]
    browser = await signed_in(client, legal)
    form = await browser.get("/staff/subprocessor-changes/new")
    assert form.status_code == 200 and removed in form.text
    fields = {
        "add.0.name": "Lingua Cloud",
        "add.0.entity": "Lingua Cloud Ltd",
        "add.0.purpose": "Translation",
        "add.0.locations": "gb, XX",
        "add.0.data_categories": "chat transcripts\ncontact details",
        "add.0.transfer_mechanism": "uk-idta",
        "remove": removed,
        "notice_days": "30",
        "reason": "Better translations",
    }
    bad = await browser.post("/staff/subprocessor-changes", fields)
    assert bad.status_code == 422
    assert 'id="add-0-locations-error"' in bad.text and 'value="gb, XX"' in bad.text

    published = await browser.post("/staff/subprocessor-changes", {**fields, "add.0.locations": "GB"})
    assert published.status_code == 303, published.text
    changes = (await legal.get("/subprocessor-changes")).json()["items"]
    assert changes[0]["added"][0]["name"] == "Lingua Cloud" and changes[0]["removed"] == [removed]
    listing = await browser.get("/staff/subprocessor-changes")
    assert "Lingua Cloud (United Kingdom;" in listing.text and "pending" in listing.text


async def test_legal_resolves_an_objection_and_the_tenant_sees_the_resolution(
    client: httpx.AsyncClient, owner: Api, legal: Api
) -> None:
    change = await publish(legal)
    objected = await owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Data stays in EU"})
    assert objected.status_code == 201
    objection_id = objected.json()["id"]
    browser = await signed_in(client, legal)
    page = await browser.get("/staff/objections")
    assert "Data stays in EU" in page.text and "Resolve the objection of" in page.text
    empty = await browser.post(f"/staff/objections/{objection_id}/resolve", {"resolution": ""})
    assert empty.status_code == 422 and f'id="resolution-{objection_id}-error"' in empty.text
    done = await browser.post(
        f"/staff/objections/{objection_id}/resolve", {"resolution": "We keep your data in the EU.", "outcome": "upheld"}
    )
    assert done.status_code == 303
    assert (await owner.get(f"/objections/{objection_id}")).json()["resolution"] == "We keep your data in the EU."
    assert (await browser.get("/staff/objections")).text.count("Resolve the objection of") == 0


async def test_a_subscriber_cannot_open_legals_pages(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await signed_in(client, owner)
    assert (await browser.get("/staff/subprocessor-changes")).status_code == 404
    assert (await browser.get("/staff/objections")).status_code == 404
