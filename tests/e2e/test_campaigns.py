"""A re-papering campaign in a real browser against a real `dpa serve`: legal starts one away from the EU-US Privacy
Shield (invalidated by the CJEU on 16 July 2020, C-311/18), sees the preview of the tenants it reaches, confirms,
and sees its progress; the Subscriber finds the new DPA waiting on its dashboard, with the reason and due date.

Every page on the way passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import LiveServer
from tests.e2e.support import accessible, screenshot, sign_in_by_email
from tests.helpers.agreements import request_variables

OWNER = "owner@acme-retail.example"
LEGAL = "legal@processor.example"
# A live server runs on today's clock, when no new DPA may rely on the Privacy Shield (the unit tests re-paper those,
# made in 2019): here legal moves DPAs off the Data Privacy Framework instead.
REASON = "We move every DPA to the 2021 SCCs, so that your transfers do not rest on the Data Privacy Framework alone."


def _person(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1200, "height": 900}).new_page()


def _executed_on_the_dpf(server: LiveServer) -> str:
    """Acme Retail's DPA relying on the EU-US Data Privacy Framework, executed through the API (request, sign,
    countersign)."""
    variables = {**request_variables(), "transfers": {"mechanisms": ["eu-us-dpf"]}}
    with server.api(server.keys["tenants"]["Acme Retail"]["api_key"]) as api:
        created = api.post("/agreements", json={"template_key": "standard-dpa", "variables": variables})
        assert created.status_code == 201, created.text
        agreement_id = created.json()["id"]
        assert api.post(f"/agreements/{agreement_id}/submit").status_code == 200
        signer = {"name": "Alex Acme", "email": OWNER, "title": "Director"}
        sent = api.post(f"/agreements/{agreement_id}/signature-requests", json={"signer": signer})
        assert sent.status_code == 201, sent.text
        url = sent.json()["signing_url"]
    if url is None:  # the demo owner signed in with a key only: the link went to the inbox (the mail log)
        mail = next(m for m in reversed(server.mails()) if m["to"] == OWNER and "/sign/" in (m["body"] or ""))
        found = re.search(r"http://\S+/sign/[A-Za-z0-9_-]+", mail["body"])
        assert found, mail["body"]
        url = found.group(0)
    signed = httpx.post(url, content=json.dumps({"typed_name": "Alex Acme", "consent": True,
                                                 "authority_confirmed": True}),
                        headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
    assert signed.status_code == 200, signed.text
    with server.api(server.keys["staff"]["legal"]["api_key"]) as legal:
        assert legal.post(f"/agreements/{agreement_id}/countersign").status_code == 200
    return agreement_id


def test_legal_starts_a_campaign_after_a_preview_and_the_subscriber_sees_the_new_dpa_waiting(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    seen: list[str] = []
    _executed_on_the_dpf(live_server)
    due_on = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()

    legal = _person(browser)
    sign_in_by_email(legal, live_server, LEGAL)
    legal.get_by_role("link", name="Campaigns").click()
    accessible(legal, seen)
    legal.get_by_role("link", name="Start a campaign").click()
    legal.select_option("#replace_mechanism", "eu-us-dpf")
    legal.select_option("#replacement_mechanism", "scc-2021")
    legal.fill("#reason", REASON)
    legal.fill("#due_on", due_on)
    legal.get_by_role("button", name="Preview the tenants it reaches").click()
    legal.wait_for_load_state()
    preview = legal.locator("section[aria-labelledby=preview]")
    assert "It will reach 1 tenant" in preview.inner_text() and "Acme Retail" in preview.inner_text()
    accessible(legal, seen)
    screenshot(legal, "campaign-preview", tmp_path)
    legal.get_by_role("button", name="Start the campaign for 1 tenant").click()
    legal.wait_for_load_state()
    assert "Campaign started: 1 new DPA sent" in legal.content()
    assert legal.locator("#count-total").inner_text() == "1" and legal.locator("#count-notified").inner_text() == "1"
    assert legal.locator("#count-signed").inner_text() == "0"
    assert "Acme Retail" in legal.locator("table").inner_text()
    accessible(legal, seen)
    screenshot(legal, "campaign-progress", tmp_path)

    owner = _person(browser)
    sign_in_by_email(owner, live_server, OWNER)
    waiting = owner.locator("section[aria-labelledby=campaign-waiting]")
    assert REASON in waiting.inner_text() and due_on in waiting.inner_text()
    accessible(owner, seen)
    screenshot(owner, "campaign-dashboard", tmp_path)
    waiting.get_by_role("link", name="Review the new DPA").click()
    owner.wait_for_load_state()
    assert "Why the processor asks you to sign this DPA" in owner.content()
    assert owner.get_by_role("button", name="Decline the new DPA").is_visible()
    accessible(owner, seen)
    assert len(seen) == 5
