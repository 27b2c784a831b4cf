"""A signer opens the link from their e-mail, reviews the exact PDF and signs in a real browser."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import httpx

from tests.e2e.conftest import LiveServer
from tests.helpers.agreements import request_variables


def _agreement_out_for_signature(server: LiveServer, signer_email: str) -> str:
    """A Subscriber's DPA sent to a colleague for signature, through the API; returns its id."""
    owner = server.keys["tenants"]["Acme Retail"]["api_key"]
    with server.api(owner) as api:
        created = api.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
        assert created.status_code == 201, created.text
        agreement_id = str(created.json()["id"])
        assert api.post(f"/agreements/{agreement_id}/submit").status_code == 200
        signer = {"name": "Carla Ceo", "email": signer_email, "title": "Managing Director"}
        sent = api.post(
            f"/agreements/{agreement_id}/signature-requests", json={"provider": "builtin", "signer": signer}
        )
        assert sent.status_code == 201, sent.text
        assert sent.json()["signing_url"] is None, "someone else's link goes to their inbox only"
    return agreement_id


def _link_in_mail(server: LiveServer, to: str) -> str:
    mail = next(m for m in reversed(server.mails()) if m["to"] == to)
    found = re.search(r"http://\S+/sign/\S+", mail["body"])
    assert found, mail["body"]
    return found.group(0)


def test_a_signer_reviews_the_exact_pdf_and_signs_in_the_browser(live_server: LiveServer, browser: Any) -> None:
    agreement_id = _agreement_out_for_signature(live_server, "carla@acme-retail.example")
    link = _link_in_mail(live_server, "carla@acme-retail.example")
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    response = page.goto(link)
    assert response is not None and response.status == 200
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert page.locator("h1").inner_text() == "Review and sign"
    shown_sha = page.locator("input[name=document_sha256]").get_attribute("value")
    pdf = httpx.get(page.locator("a[href$='/document']").first.get_attribute("href") or "")
    assert pdf.status_code == 200 and hashlib.sha256(pdf.content).hexdigest() == shown_sha, "the page names the PDF"

    page.fill("#typed_name", "Carla Ceo")
    page.click("button[type=submit]")  # the browser itself refuses: consent and authority are required
    assert page.locator("h1").inner_text() == "Review and sign"
    page.check("input[name=consent]")
    page.check("input[name=authority_confirmed]")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Signed"
    assert not problems, problems

    legal = live_server.keys["staff"]["legal"]["api_key"]
    with live_server.api(legal) as api:
        evidence = api.get(f"/agreements/{agreement_id}/evidence").json()
    subscriber = next(s for s in evidence["signatures"] if s["role"] == "subscriber")
    assert subscriber["typed_name"] == "Carla Ceo" and subscriber["document_sha256"] == shown_sha
    assert "Chrome" in (subscriber["user_agent"] or ""), "the evidence records the signer's browser"

    again = browser.new_page()
    used = again.goto(link)
    assert used is not None and used.status == 410, "the link works once"
    assert "already been used" in again.content()
