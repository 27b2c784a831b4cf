"""Signers are who they say they are (issue 16): every new user is e-mailed a single-use link confirming the address
is theirs; signing in by e-mail link proves the same; an address belongs to one account; and only a verified
calling user signing for themself is handed an embedded `signing_url`: anyone else's link goes to their inbox alone.
The evidence records how and when each signer's address was verified."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.users.models import User
from tests.helpers.agreements import approve_standard_dpa, sign, to_status
from tests.helpers.api import CONFIRMATION_SUBJECT, Api, latest_confirmation_link, verify_email
from tests.helpers.pages import Browser

CEO = "real.ceo@their-company.example"


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def _me(api: Api) -> dict:
    return (await api.get("/me")).json()


def _signing_links(settings: Settings) -> list[tuple[str, str]]:
    """(recipient, signing link) of every signing link e-mailed so far."""
    found = []
    for mail in read_log(settings.var_dir):
        if match := re.search(r"https?://\S+/sign/[A-Za-z0-9_-]+", mail["body"] or ""):
            found.append((mail["to"], match.group(0)))
    return found


async def test_every_new_user_is_sent_a_confirmation_link_that_verifies_once(
    admin: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await admin.new_tenant()
    member = await owner.new_user("member")
    legal = await admin.new_staff("legal")
    for api in (owner, member, legal):  # a tenant's first owner, a user an owner adds, staff
        me = await _me(api)
        assert me["email_verified"] is False and me["email_verified_at"] is None and me["email_verification"] is None
        [mail] = [m for m in read_log(settings.var_dir) if m["to"] == me["email"]]
        assert mail["subject"] == CONFIRMATION_SUBJECT and "works once, for 7 days" in mail["body"]
        assert "http://testserver.local/verify-email/" in mail["body"]  # absolute, like every mailed link

    link = latest_confirmation_link(settings.var_dir, (await _me(owner))["email"])
    page = await client.get(link)  # no key, no session: the token is the secret
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "Your e-mail address is confirmed" in page.text
    assert page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
    me = await _me(owner)
    assert me["email_verified"] is True and me["email_verification"] == "confirmation_link" and me["email_verified_at"]
    assert (await _me(member))["email_verified"] is False, "one user's link verifies that user only"

    again = await client.get(link)
    assert again.status_code == 410 and "used already" in again.text
    assert again.headers["content-type"].startswith("text/html")
    assert (await _me(owner))["email_verified_at"] == me["email_verified_at"]
    unknown = await client.get("/verify-email/no-such-token")
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("text/html")
    actions = [e["action"] for e in await owner.all("/audit-events")]
    assert actions.count("user.email_verified") == 1, "audited once, in the tenant's chain"


async def test_an_expired_confirmation_link_is_gone_and_verifies_nothing(
    admin: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await admin.new_tenant()
    link = latest_confirmation_link(settings.var_dir, (await _me(owner))["email"])
    with travel_to(utcnow() + timedelta(days=7, minutes=1)):
        gone = await client.get(link)
    assert gone.status_code == 410 and "expired" in gone.text
    assert (await _me(owner))["email_verified"] is False


async def test_signing_in_with_an_emailed_link_verifies_the_address(
    admin: Api, client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await admin.new_tenant()
    email = (await _me(owner))["email"]
    signed_in = await Browser(client).sign_in_by_email(settings, email)
    assert signed_in.status_code == 303
    me = await _me(owner)
    assert me["email_verified"] is True and me["email_verification"] == "sign_in_link"
    # The confirmation link still works once, and the first proof stays on record.
    page = await client.get(latest_confirmation_link(settings.var_dir, email))
    assert page.status_code == 200 and "confirmed already" in page.text
    assert await _me(owner) == me


async def test_an_address_another_account_uses_is_refused(admin: Api, db: Database) -> None:
    first, second = await admin.new_tenant(), await admin.new_tenant()
    legal = await admin.new_staff("legal")
    taken = (await _me(first))["email"]
    staff_address = (await _me(legal))["email"]
    for email in (taken, taken.upper(), staff_address):  # another tenant's user, in any case; a member of staff
        refused = await second.post("/users", {"email": email, "name": "Impostor", "role": "admin"})
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in refused.json()["errors"]] == ["email"]
        assert "other tenant" not in refused.text and first.tenant_id not in refused.text  # says not whose
    tenants_before = len(await admin.all("/tenants"))
    body = {"name": "Copy", "legal_name": "Copy Ltd", "country": "IE", "admin_email": taken, "admin_name": "C"}
    as_tenant = await admin.post("/tenants", body)
    assert as_tenant.status_code == 409 and [e["field"] for e in as_tenant.json()["errors"]] == ["admin_email"]
    assert len(await admin.all("/tenants")) == tenants_before, "nothing written"
    as_staff = await admin.post("/staff", {"email": taken, "name": "Impostor", "role": "legal"})
    assert as_staff.status_code == 409 and [e["field"] for e in as_staff.json()["errors"]] == ["email"]
    async with db.transaction(Scope.system(), write=False) as session:
        for email in (taken, staff_address):
            count = await session.scalar(select(func.count()).select_from(User).where(User.email == email))
            assert count == 1, email


async def test_an_owner_cannot_sign_in_the_name_of_a_user_it_added(
    parties: tuple[Api, Api], settings: Settings
) -> None:
    """The review's reproduction: an owner adds "real.ceo@their-company" (nobody checked the address), then asks
    for that signer's signature, with its own key and with the new user's, which the owner holds."""
    owner, legal = parties
    added = await owner.post("/users", {"email": CEO, "name": "Real CEO", "role": "admin"})
    assert added.status_code == 201 and added.json()["email_verified"] is False
    ceo = Api(owner.client, added.json()["api_key"], added.json()["id"], owner.tenant_id)
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"signer": {"name": "Real CEO", "email": CEO, "title": "CEO"}}
    for caller in (owner, ceo):
        requested = await caller.post(f"/agreements/{aid}/signature-requests", signer)
        assert requested.status_code == 201, requested.text
        assert requested.json()["signing_url"] is None, "no embedded link for an unverified address"
    links = _signing_links(settings)
    assert [to for to, _ in links] == [CEO, CEO], "the links went to that inbox alone"
    # Whoever reads that inbox signs: the evidence says the signing link proved the mailbox, and when.
    await sign(ceo, links[-1][1], typed_name="Real CEO")
    [signature] = (await owner.get(f"/agreements/{aid}/evidence")).json()["signatures"]
    assert signature["email"] == CEO and signature["email_verification"] == "signing_link"
    assert signature["email_verified_at"] == signature["signed_at"]


async def test_an_unverified_owner_gets_her_own_link_by_email_until_she_is_verified(
    parties: tuple[Api, Api], settings: Settings
) -> None:
    owner, legal = parties
    me = await _me(owner)
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}}
    unverified = await owner.post(f"/agreements/{aid}/signature-requests", signer)
    assert unverified.status_code == 201 and unverified.json()["signing_url"] is None
    assert [to for to, _ in _signing_links(settings)] == [me["email"]]
    verified_me = await verify_email(owner)
    embedded = await owner.post(f"/agreements/{aid}/signature-requests", signer)
    assert embedded.status_code == 201 and embedded.json()["signing_url"].startswith("http://testserver.local/sign/")
    await sign(owner, embedded.json()["signing_url"])
    [signature] = (await owner.get(f"/agreements/{aid}/evidence")).json()["signatures"]
    assert signature["email_verification"] == "confirmation_link"
    assert signature["email_verified_at"] == verified_me["email_verified_at"]


async def test_a_new_confirmation_link_on_request(admin: Api, settings: Settings) -> None:
    owner, other = await admin.new_tenant(), await admin.new_tenant()
    member, colleague = await owner.new_user("member"), await owner.new_user("member")
    member_email = (await _me(member))["email"]
    sent = await owner.post(f"/users/{member.user_id}/verification")
    assert sent.status_code == 202, sent.text
    assert sent.json()["user_id"] == member.user_id and sent.json()["email"] == member_email
    assert sent.json()["expires_at"]
    first_link = next(m for m in read_log(settings.var_dir) if m["to"] == member_email)["body"]
    await verify_email(member)  # the newest link; confirming uses up the older one too
    used = re.search(r"/verify-email/[A-Za-z0-9_-]+", first_link)
    assert used and (await member.client.get(used.group(0))).status_code == 410
    assert (await owner.post(f"/users/{member.user_id}/verification")).status_code == 409  # verified already
    # Only for oneself, one's own tenant's users (owners and admins) and staff (the platform admin).
    assert (await other.post(f"/users/{colleague.user_id}/verification")).status_code == 404
    assert (await member.post(f"/users/{colleague.user_id}/verification")).status_code == 404
    assert (await colleague.post(f"/users/{colleague.user_id}/verification")).status_code == 202
    legal = await admin.new_staff("legal")
    assert (await owner.post(f"/users/{legal.user_id}/verification")).status_code == 404
    assert (await admin.post(f"/users/{legal.user_id}/verification")).status_code == 202
