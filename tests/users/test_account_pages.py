"""A tenant's users and everyone's own API keys on the web: an owner adds a user and sees its key once, anyone
makes and revokes their own keys, and staff manage theirs at /staff/keys."""

from __future__ import annotations

import re

import httpx
import pytest

from dpa_service.core.settings import Settings
from tests.helpers.api import Api, verify_email
from tests.helpers.pages import Browser

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only

_KEY = re.compile(r'id="new-api-key" type="text" readonly value="([^"]+)"')


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant()


async def _signed_in(client: httpx.AsyncClient, api: Api) -> Browser:
    browser = Browser(client)
    await browser.sign_in_with_key(api.key)
    return browser


def _key_on(page: httpx.Response) -> str:
    found = _KEY.search(page.text)
    assert found, page.text
    return found.group(1)


async def _me(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})


async def test_an_owner_adds_a_user_and_sees_its_key_once(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    page = await browser.get("/app/users")
    assert page.status_code == 200 and "Add user" in page.text and "Olive Owner" in page.text
    added = await browser.post("/app/users", {"email": "mia@acme.example", "name": "Mia Member", "role": "member"})
    assert added.status_code == 201 and added.headers["cache-control"] == "no-store"
    assert "shown only this once" in added.text
    key = _key_on(added)
    me = await _me(client, key)
    assert me.status_code == 200 and me.json()["email"] == "mia@acme.example" and me.json()["role"] == "member"
    again = await browser.get("/app/users")
    assert "mia@acme.example" in again.text and key not in again.text


async def test_the_users_page_says_whose_address_is_confirmed_and_resends_the_link(
    client: httpx.AsyncClient, owner: Api, admin: Api, settings: Settings
) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/users")
    added = await browser.post("/app/users", {"email": "mia@acme.example", "name": "Mia Member", "role": "member"})
    assert "We e-mailed mia@acme.example a link to confirm the address" in added.text
    mia = Api(client, _key_on(added))
    mia_id = (await _me(client, mia.key)).json()["id"]
    page = await browser.get("/app/users")
    assert "not yet: signature links for this user go to their inbox" in page.text
    assert f'action="/app/users/{mia_id}/verification"' in page.text
    resent = await browser.post(f"/app/users/{mia_id}/verification")
    assert resent.status_code == 303
    shown = await browser.get(resent.headers["location"])
    assert "We e-mailed a new confirmation link to mia@acme.example" in shown.text
    await verify_email(mia, settings.var_dir)
    page = await browser.get("/app/users")
    assert "yes, by confirmation link" in page.text and f"/app/users/{mia_id}/verification" not in page.text
    again = await browser.post(f"/app/users/{mia_id}/verification")
    assert again.status_code == 409 and "mia@acme.example is verified already" in again.text
    # An address another account uses is refused beside the field, the input kept.
    other_owner = (await _me(client, (await admin.new_tenant()).key)).json()["email"]
    taken = await browser.post("/app/users", {"email": other_owner, "name": "Impostor", "role": "admin"})
    assert taken.status_code == 409 and 'id="email-error"' in taken.text and "used by another account" in taken.text
    assert f'value="{other_owner}"' in taken.text


async def test_a_bad_address_is_shown_beside_the_field_and_kept(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/users")
    refused = await browser.post("/app/users", {"email": "not an address", "name": "Mia", "role": "member"})
    assert refused.status_code == 422
    assert 'id="email-error"' in refused.text and 'value="not an address"' in refused.text
    assert 'value="Mia"' in refused.text


async def test_only_an_owner_makes_an_owner(client: httpx.AsyncClient, owner: Api) -> None:
    admin_user = await owner.new_user("admin")
    browser = await _signed_in(client, admin_user)
    await browser.get("/app/users")
    refused = await browser.post("/app/users", {"email": "boss@acme.example", "name": "Boss", "role": "owner"})
    assert refused.status_code == 403
    assert 'id="role-error"' in refused.text and "Only an owner can make another owner." in refused.text
    assert "boss@acme.example" not in (await browser.get("/app/users")).text


async def test_a_member_sees_no_add_user_form_and_cannot_post_one(client: httpx.AsyncClient, owner: Api) -> None:
    member = await owner.new_user("member")
    browser = await _signed_in(client, member)
    page = await browser.get("/app/users")
    assert page.status_code == 200 and "Add user" not in page.text and "Your API keys" in page.text
    forced = await browser.post("/app/users", {"email": "x@acme.example", "name": "X", "role": "admin"})
    assert forced.status_code == 404
    assert "x@acme.example" not in (await (await _signed_in(client, owner)).get("/app/users")).text


async def test_a_key_made_on_the_page_works_until_it_is_revoked_there(client: httpx.AsyncClient, owner: Api) -> None:
    browser = await _signed_in(client, owner)
    await browser.get("/app/users")
    created = await browser.post("/app/users/keys", {"key_name": "CRM integration"})
    assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
    key = _key_on(created)
    assert (await _me(client, key)).status_code == 200
    listed = await browser.get("/app/users")
    assert "CRM integration" in listed.text and key not in listed.text
    key_id = next(k["id"] for k in (await owner.get("/api-keys")).json()["items"] if k["name"] == "CRM integration")
    confirm = await browser.get(f"/app/users/keys/{key_id}/revoke")
    assert confirm.status_code == 200 and "stops working at once" in confirm.text
    revoked = await browser.post(f"/app/users/keys/{key_id}/revoke")
    assert revoked.status_code == 303
    assert (await _me(client, key)).status_code == 401
    assert "The API key is revoked." in (await browser.get("/app/users")).text


async def test_nobody_revokes_another_users_key(client: httpx.AsyncClient, owner: Api) -> None:
    member = await owner.new_user("member")
    key_id = (await owner.get("/api-keys")).json()["items"][0]["id"]
    browser = await _signed_in(client, member)
    assert (await browser.get(f"/app/users/keys/{key_id}/revoke")).status_code == 404
    assert (await browser.post(f"/app/users/keys/{key_id}/revoke")).status_code == 404
    assert (await owner.get("/me")).status_code == 200


async def test_staff_manage_their_own_keys(client: httpx.AsyncClient, admin: Api) -> None:
    legal = await admin.new_staff("legal")
    browser = await _signed_in(client, legal)
    page = await browser.get("/staff/keys")
    assert page.status_code == 200 and 'href="/staff/keys"' in page.text and "Create API key" in page.text
    created = await browser.post("/staff/keys", {"key_name": "scripts"})
    assert created.status_code == 201
    key = _key_on(created)
    assert (await _me(client, key)).json()["role"] == "legal"
    key_id = next(k["id"] for k in (await legal.get("/api-keys")).json()["items"] if k["name"] == "scripts")
    assert (await browser.post(f"/staff/keys/{key_id}/revoke")).status_code == 303
    assert (await _me(client, key)).status_code == 401
    subscriber = await _signed_in(client, await admin.new_tenant())
    assert (await subscriber.get("/staff/keys")).status_code == 404
