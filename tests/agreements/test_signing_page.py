"""The signing page as a signer sees it: the web layout under the shell's strict CSP, hashes and consent text that
wrap on a narrow screen, a readable expiry, and a form that signs without a CSRF token (the link is the secret)."""

from __future__ import annotations

import re
from importlib import resources

import httpx
import pytest

from dpa_service.core.db import Database
from dpa_service.web.security import CONTENT_SECURITY_POLICY
from tests.helpers.agreements import approve_standard_dpa, request_own_signature, to_status, token_of
from tests.helpers.api import Api


@pytest.fixture
async def token(admin: Api, db: Database) -> str:
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    agreement = await to_status(owner, legal, "ready_for_signature")
    return token_of(await request_own_signature(owner, agreement["id"]))


async def test_the_page_is_in_the_web_layout_under_the_strict_policy(client: httpx.AsyncClient, token: str) -> None:
    page = await client.get(f"/sign/{token}", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"  # the token is in the URL
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    html = page.text
    assert '<link rel="stylesheet" href="/static/app.css">' in html
    assert "<style" not in html and "style=" not in html, "inline styles break under the CSP"
    assert "Sign out" not in html, "the page belongs to the link, not to a session"
    assert html.count("<h1>") == 1 and "<h1>Review and sign</h1>" in html
    # The policy now lets the browser ask for /favicon.ico: that must not be a 404 in its console.
    assert (await client.get("/favicon.ico")).status_code == 204


async def test_hashes_and_consent_wrap_and_the_expiry_reads_plainly(client: httpx.AsyncClient, token: str) -> None:
    html = (await client.get(f"/sign/{token}")).text
    hashes = re.findall(r'<span class="hash">([0-9a-f]{64})</span>', html)
    assert len(hashes) == 2, "the PDF's and the consent text's fingerprints"
    consent = re.search(r'<div class="box consent" tabindex="0" role="region"[^>]*>(.*?)</div>', html, re.S)
    assert consent, "the consent text sits in a box a keyboard can scroll"
    paragraphs = re.findall(r"<p>(.*?)</p>", consent.group(1), re.S)
    assert len(paragraphs) >= 5 and not any("\n" in p for p in paragraphs), "it flows as paragraphs, not source lines"
    expiry = re.search(r"<dt>Link valid until</dt><dd>([^<]*)</dd>", html)
    assert expiry and re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC", expiry.group(1)), expiry
    css = (resources.files("dpa_service.web") / "static" / "app.css").read_text()
    signing = css[css.index("/* ---- signing page") : css.index("/* ---- end signing page")]
    assert ".signing .consent" in signing and "overflow-wrap: anywhere" in signing
    assert re.search(r"\.hash \{[^}]*overflow-wrap: anywhere; word-break: break-all", css)


async def test_the_form_signs_without_a_csrf_token(client: httpx.AsyncClient, token: str) -> None:
    missing = await client.post(f"/sign/{token}", data={"typed_name": "Olive Owner"})
    assert missing.status_code == 422 and missing.headers["content-type"] == "text/html; charset=utf-8"
    assert 'value="Olive Owner"' in missing.text, "the typed name is kept"
    assert '<a href="#consent">' in missing.text and 'id="consent"' in missing.text
    signed = await client.post(
        f"/sign/{token}", data={"typed_name": "Olive Owner", "consent": "true", "authority_confirmed": "true"}
    )
    assert signed.status_code == 200 and "<h1>Signed</h1>" in signed.text
    used = await client.get(f"/sign/{token}")
    assert used.status_code == 410 and "<h1>This signing link cannot be used</h1>" in used.text
    assert used.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
