"""Signing in to the web pages: e-mailed single-use links, API keys, sessions that end, and CSRF on every form."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.web.sessions import ABSOLUTE_HOURS
from tests.helpers.api import Api
from tests.helpers.pages import Browser, latest_sign_in_link


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant()


async def _email_of(api: Api) -> str:
    return (await api.get("/me")).json()["email"]


async def test_a_subscriber_signs_in_with_an_emailed_link_and_lands_on_the_dashboard(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    email = await _email_of(owner)
    answer = await browser.post("/login", {"email": email})
    assert answer.status_code == 200 and "Check your inbox" in answer.text
    link = latest_sign_in_link(settings, email)
    confirm = await browser.get(link)
    assert confirm.status_code == 200 and "Continue and sign in" in confirm.text
    signed_in = await browser.post(link)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/"
    home = await browser.http.get("/", follow_redirects=True)
    assert home.status_code == 200 and str(home.url).endswith("/app/")
    assert email in home.text


async def test_the_sign_in_form_never_tells_whether_an_address_has_an_account(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    known = await browser.post("/login", {"email": await _email_of(owner)})
    unknown = await browser.post("/login", {"email": "nobody@nowhere.example"})
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(await _email_of(owner), "X") == unknown.text.replace("nobody@nowhere.example", "X")
    assert not [m for m in read_log(settings.var_dir) if m["to"] == "nobody@nowhere.example"]


async def test_a_malformed_address_is_shown_beside_the_field_and_kept(client: httpx.AsyncClient) -> None:
    browser = Browser(client)
    answer = await browser.post("/login", {"email": "not an address"})
    assert answer.status_code == 422
    assert 'id="email-error"' in answer.text and "must be an e-mail address" in answer.text
    assert 'value="not an address"' in answer.text


async def test_a_used_link_is_refused(client: httpx.AsyncClient, owner: Api, settings: Settings) -> None:
    email = await _email_of(owner)
    first = Browser(client)
    await first.sign_in_by_email(settings, email)
    link = latest_sign_in_link(settings, email)
    second = Browser(client)
    assert (await second.get(link)).status_code == 410
    assert (await second.post(link)).status_code == 410
    assert (await second.http.get("/app/")).status_code == 303  # still not signed in


async def test_an_expired_link_is_refused(client: httpx.AsyncClient, owner: Api, settings: Settings) -> None:
    email = await _email_of(owner)
    browser = Browser(client)
    await browser.post("/login", {"email": email})
    link = latest_sign_in_link(settings, email)
    with travel_to(utcnow() + timedelta(minutes=16)):
        page = await browser.get(link)
        assert page.status_code == 410 and "expired" in page.text
        assert (await browser.post(link)).status_code == 410


async def test_an_unknown_link_is_404(client: httpx.AsyncClient) -> None:
    assert (await Browser(client).get("/login/not-a-real-token")).status_code == 404


async def test_an_address_gets_at_most_five_links_a_quarter_hour(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    email = await _email_of(owner)
    browser = Browser(client)
    for _ in range(7):
        assert (await browser.post("/login", {"email": email})).status_code == 200
    assert len([m for m in read_log(settings.var_dir) if m["to"] == email and "sign-in" in m["subject"]]) == 5


async def test_staff_sign_in_with_an_api_key_and_the_session_ends_when_the_key_is_revoked(
    client: httpx.AsyncClient, admin: Api
) -> None:
    created = await admin.post("/api-keys", {"name": "web"})
    key, key_id = created.json()["api_key"], created.json()["id"]
    browser = Browser(client)
    assert (await browser.sign_in_with_key(key)).status_code == 303
    assert (await browser.http.get("/staff/")).status_code == 200
    assert (await admin.delete(f"/api-keys/{key_id}")).status_code == 204
    assert (await browser.http.get("/staff/")).status_code == 303


async def test_a_wrong_api_key_is_an_error_beside_the_field(client: httpx.AsyncClient) -> None:
    answer = await Browser(client).sign_in_with_key("dpa_wrong")
    assert answer.status_code == 422 and 'id="api_key-error"' in answer.text


async def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    await browser.get("/login")
    refused = await browser.post("/login", {"email": await _email_of(owner)}, csrf=False)
    assert refused.status_code == 403
    assert not [m for m in read_log(settings.var_dir) if "sign-in" in m["subject"]]
    forged = await browser.post("/login/key", {"api_key": owner.key, "_csrf_token": "forged"}, csrf=False)
    assert forged.status_code == 403 and "dpa_session" not in forged.headers.get("set-cookie", "")


async def test_sign_out_ends_the_session_on_the_server(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    await browser.sign_in_by_email(settings, await _email_of(owner))
    cookie = browser.http.cookies.get("dpa_session")
    assert cookie
    assert (await browser.post("/logout")).status_code == 303
    # Replaying the old cookie opens nothing: the session's data is gone, not only the cookie.
    replay = httpx.AsyncClient(transport=client._transport, base_url=client.base_url, cookies={"dpa_session": cookie})
    assert (await replay.get("/app/")).status_code == 303
    await replay.aclose()


async def test_signing_in_starts_a_new_session_id(client: httpx.AsyncClient, owner: Api, settings: Settings) -> None:
    browser = Browser(client)
    browser.http.cookies.set("dpa_session", "a" * 64, domain="testserver.local")  # planted before sign-in
    await browser.sign_in_by_email(settings, await _email_of(owner))
    assert browser.http.cookies.get("dpa_session") not in (None, "a" * 64)


async def test_a_session_ends_after_its_absolute_lifetime(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    await browser.sign_in_by_email(settings, await _email_of(owner))
    assert (await browser.http.get("/app/")).status_code == 200
    with travel_to(utcnow() + timedelta(hours=ABSOLUTE_HOURS, minutes=1)):
        ended = await browser.http.get("/app/")
    assert ended.status_code == 303 and "ended=1" in ended.headers["location"]


async def test_the_session_cookie_is_httponly_and_samesite_lax(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    await browser.get("/login")
    await browser.post("/login", {"email": await _email_of(owner)})
    link = latest_sign_in_link(settings, await _email_of(owner))
    await browser.get(link)
    answer = await browser.post(link)
    cookie = next(v for k, v in answer.headers.multi_items() if k == "set-cookie" and v.startswith("dpa_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert "Secure" not in cookie  # development over plain http; production: see the next test


async def test_in_production_the_cookies_are_secure(settings: Settings) -> None:
    from dpa_service.web.security import csrf_config
    from dpa_service.web.sessions import session_config

    production = settings.model_copy(update={"environment": "production", "public_base_url": "https://dpa.example"})
    assert session_config(production).secure is True
    assert csrf_config(production, b"k" * 32).cookie_secure is True


async def test_pages_carry_a_strict_content_security_policy(client: httpx.AsyncClient) -> None:
    page = await Browser(client).get("/login")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-frame-options"] == "DENY" and page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-type"] == "text/html; charset=utf-8"


async def test_a_visitor_is_sent_to_sign_in_and_back_afterwards(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    browser = Browser(client)
    away = await browser.http.get("/app/")
    assert away.status_code == 303 and away.headers["location"] == "/login?next=/app"
    login = await browser.get("/login", next="/app")
    assert 'name="next" value="/app"' in login.text
    answer = await browser.post("/login/key", {"api_key": owner.key, "next": "/app/"})
    assert answer.headers["location"] == "/app/"
    elsewhere = await Browser(client).post("/login/key", {"api_key": owner.key, "next": "//evil.example/"})
    assert elsewhere.headers["location"] == "/"


async def test_a_subscriber_on_a_staff_page_gets_404(client: httpx.AsyncClient, owner: Api) -> None:
    browser = Browser(client)
    await browser.sign_in_with_key(owner.key)
    page = await browser.http.get("/staff/")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


async def test_staff_on_a_subscriber_page_gets_404(client: httpx.AsyncClient, admin: Api) -> None:
    browser = Browser(client)
    await browser.sign_in_with_key(admin.key)
    assert (await browser.http.get("/app/")).status_code == 404


async def test_an_emailed_link_brings_the_user_back_to_the_page_they_asked_for(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    email = await _email_of(owner)
    browser = Browser(client)
    await browser.get("/login", next="/app/agreements")
    await browser.post("/login", {"email": email, "next": "/app/agreements"})
    link = latest_sign_in_link(settings, email)
    assert "?next=/app/agreements" in link
    confirm = await browser.get(link)
    assert 'name="next" value="/app/agreements"' in confirm.text
    signed_in = await browser.post(link.split("?")[0], {"next": "/app/agreements"})
    assert signed_in.headers["location"] == "/app/agreements"


async def test_signing_in_uses_up_the_other_links_the_user_still_had(
    client: httpx.AsyncClient, owner: Api, settings: Settings
) -> None:
    email = await _email_of(owner)
    browser = Browser(client)
    await browser.post("/login", {"email": email})
    older = latest_sign_in_link(settings, email)
    await browser.post("/login", {"email": email})
    newer = latest_sign_in_link(settings, email)
    assert older != newer
    await browser.get(newer)
    assert (await browser.post(newer)).status_code == 303
    assert (await Browser(client).get(older)).status_code == 410


async def test_a_field_sent_twice_is_refused_not_stored_as_a_list(client: httpx.AsyncClient, owner: Api) -> None:
    browser = Browser(client)
    await browser.sign_in_with_key(owner.key)
    await browser.get("/app/profile/edit")
    before = (await owner.get("/tenant")).json()
    answer = await browser.http.post(
        "/app/profile/edit",
        content=f"name=A&name=B&legal_name=X&country=DE&_csrf_token={browser.csrf_token}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 422 and "was sent more than once" in answer.text
    assert (await owner.get("/tenant")).json() == before


async def test_a_posted_form_after_the_session_ended_returns_to_its_page_after_sign_in(
    client: httpx.AsyncClient, owner: Api
) -> None:
    browser = Browser(client)
    await browser.get("/login")
    answer = await browser.http.post(
        "/app/profile/edit",
        data={"name": "x", "_csrf_token": browser.csrf_token},
        headers={"Referer": "http://testserver.local/app/profile/edit"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/app/profile/edit"
