"""A Subscriber keeps its organisation profile on the web: everyone in the tenant reads it, owners and admins edit
it, and a bad value is shown beside its field with what was typed kept."""

from __future__ import annotations

import httpx
import pytest

from tests.helpers.api import Api
from tests.helpers.pages import Browser

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant(legal_name="Acme Chat GmbH")


async def _signed_in(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    await browser.sign_in_with_key(api.key)
    return browser


async def test_everyone_in_the_tenant_reads_the_profile(client: httpx.AsyncClient, owner: Api) -> None:
    member = await owner.new_user("member")
    page = await (await _signed_in(client, member)).get("/app/profile")
    assert page.status_code == 200
    assert "<h1>Organisation profile</h1>" in page.text
    assert "Acme Chat GmbH" in page.text and "Unter den Linden 1" in page.text
    assert "Data protection officer" in page.text and "EU representative" in page.text


async def test_a_bad_value_is_shown_beside_its_field_and_a_good_edit_is_saved(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = await _signed_in(client, owner)
    form = await browser.get("/app/profile/edit")
    assert form.status_code == 200 and 'value="Acme Chat GmbH"' in form.text
    before = (await owner.get("/tenant")).json()
    fields = {key: before[key] or "" for key in ("name", "legal_name", "country", "address", "registration_number")}
    refused = await browser.post("/app/profile/edit", {**fields, "dpo_name": "Dana DPO", "dpo_email": "not-an-email"})
    assert refused.status_code == 422
    assert 'id="dpo_email-error"' in refused.text and "must be an e-mail address" in refused.text
    assert 'value="not-an-email"' in refused.text and 'value="Dana DPO"' in refused.text
    assert (await owner.get("/tenant")).json() == before, "nothing was saved"

    saved = await browser.post("/app/profile/edit", {**fields, "dpo_name": "Dana DPO", "dpo_email": "dpo@acme.example"})
    assert saved.status_code == 303 and saved.headers["location"] == "/app/profile"
    page = await browser.get("/app/profile")
    assert "Profile saved." in page.text and "dpo@acme.example" in page.text and "Dana DPO" in page.text
    after = (await owner.get("/tenant")).json()
    assert after["dpo_email"] == "dpo@acme.example" and after["dpo_name"] == "Dana DPO"


async def test_a_required_field_cannot_be_emptied(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/profile/edit")
    refused = await browser.post("/app/profile/edit", {"name": "Acme", "legal_name": "", "country": "DE"})
    assert refused.status_code == 422 and 'id="legal_name-error"' in refused.text
    assert (await owner.get("/tenant")).json()["legal_name"] == "Acme Chat GmbH"


async def test_a_member_cannot_edit_the_profile(client: httpx.AsyncClient, owner: Api) -> None:
    member = await owner.new_user("member")
    browser = await _signed_in(client, member)
    page = await browser.get("/app/profile")
    assert "Edit profile" not in page.text and "/app/profile/edit" not in page.text
    assert (await browser.get("/app/profile/edit")).status_code == 404
    before = (await owner.get("/tenant")).json()
    forced = await browser.post("/app/profile/edit", {"name": "Hijacked", "legal_name": "Hijacked", "country": "DE"})
    assert forced.status_code == 404
    assert (await owner.get("/tenant")).json() == before
