"""Each persona's main path in a real browser, against a real `dpa serve`: a Subscriber requests, fixes, submits,
signs and downloads a DPA; legal reviews and countersigns, and approves a template version under the four-eyes
rule; a Subscriber objects to a sub-processor change; sales sees the executed DPA. Every page on the way passes
axe-core with no serious or critical violation, and the README's screenshots come from here."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import LiveServer
from tests.e2e.support import accessible, screenshot, sign_in_by_email, sign_in_with_key
from tests.helpers.agreements import request_variables

SAMPLE = request_variables()
OWNER = "owner@acme-retail.example"
LEGAL = "legal@processor.example"


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    return tmp_path


def _person(browser: Any) -> Any:
    """A person with a browser of their own (cookies are not shared with the other personas)."""
    context = browser.new_context(viewport={"width": 1200, "height": 900}, accept_downloads=True)
    return context.new_page()


def _fill_request_form(page: Any, *, retention: str) -> None:
    processing = SAMPLE["processing"]
    for name in ("subject_matter", "nature_and_purpose", "duration"):
        page.fill(f"#variables-processing-{name}", processing[name])
    page.fill("#variables-processing-data_subject_categories", "\n".join(processing["data_subject_categories"]))
    page.fill("#variables-processing-personal_data_categories", "\n".join(processing["personal_data_categories"]))
    page.fill("#variables-processing-retention", retention)
    page.fill("#variables-signatory-title", "Managing Director")
    page.get_by_label("Standard Contractual Clauses (2021)", exact=False).first.check()


def test_a_subscriber_requests_legal_reviews_both_sign_and_the_pdf_is_the_apis(
    live_server: LiveServer, browser: Any, shots: Path
) -> None:
    seen: list[str] = []
    subscriber = _person(browser)
    subscriber.goto(f"{live_server.url}/login")
    accessible(subscriber, seen)
    screenshot(subscriber, "login", shots)

    sign_in_by_email(subscriber, live_server, OWNER)
    assert subscriber.url.endswith("/app/") and subscriber.locator("h1").inner_text() == "Dashboard"
    accessible(subscriber, seen)
    screenshot(subscriber, "dashboard", shots)

    subscriber.get_by_role("link", name="Request a DPA").first.click()
    # Pre-filled from the tenant profile: the Subscriber does not retype who it is.
    assert subscriber.input_value("#variables-controller-legal_name") == "Acme Retail GmbH"
    accessible(subscriber, seen)
    _fill_request_form(subscriber, retention="")
    subscriber.fill("#custom_clauses-0-title", "Audit window")
    subscriber.fill("#custom_clauses-0-text", "The Subscriber may audit once a year on 30 days' notice.")
    subscriber.get_by_role("button", name="Save the draft").click()
    error = subscriber.locator("#variables-processing-retention-error")
    assert error.is_visible(), "the missing retention period is named beside its field"
    assert subscriber.input_value("#custom_clauses-0-title") == "Audit window", "nothing typed is lost"
    assert subscriber.input_value("#variables-processing-duration") == SAMPLE["processing"]["duration"]
    accessible(subscriber, seen)
    screenshot(subscriber, "request-form", shots)
    subscriber.fill("#variables-processing-retention", SAMPLE["processing"]["retention"])
    subscriber.get_by_role("button", name="Save the draft").click()
    subscriber.wait_for_load_state()
    assert "/app/agreements/" in subscriber.url, subscriber.locator(".error, .error-summary").all_inner_texts()
    agreement_url = subscriber.url
    agreement_id = agreement_url.rstrip("/").rsplit("/", 1)[-1]
    accessible(subscriber, seen)
    subscriber.get_by_role("button", name="Submit the DPA").click()
    assert "reviewing your custom clauses" in subscriber.content()

    legal = _person(browser)
    sign_in_by_email(legal, live_server, LEGAL)
    legal.goto(f"{live_server.url}/staff/reviews")
    accessible(legal, seen)
    screenshot(legal, "review-queue", shots)
    legal.get_by_role("link", name="Review the clauses of Acme Retail").first.click()
    assert "Audit window" in legal.content()
    accessible(legal, seen)
    legal.get_by_role("button", name="Approve the custom clauses").click()
    legal.wait_for_load_state()

    subscriber.goto(agreement_url)
    subscriber.fill("#signer-name", "Olivia Owner")
    subscriber.fill("#signer-email", OWNER)
    subscriber.fill("#signer-title", "Managing Director")
    subscriber.get_by_role("button", name="Send for signature").click()
    subscriber.wait_for_url("**/sign/*")  # the signer is the user: straight into the signing page
    assert subscriber.locator("h1").inner_text() == "Review and sign"
    accessible(subscriber, seen)
    screenshot(subscriber, "signing", shots)
    subscriber.fill("#typed_name", "Olivia Owner")
    subscriber.check("input[name=consent]")
    subscriber.check("input[name=authority_confirmed]")
    subscriber.get_by_role("button", name="Sign").first.click()
    subscriber.wait_for_load_state()
    assert subscriber.locator("h1").inner_text() == "Signed"

    legal.goto(f"{live_server.url}/staff/countersign")
    accessible(legal, seen)
    legal.get_by_role("button", name="Countersign for Acme Retail").first.click()
    legal.wait_for_load_state()

    subscriber.goto(agreement_url)
    assert "in force" in subscriber.content()
    accessible(subscriber, seen)
    with subscriber.expect_download() as download:
        subscriber.get_by_role("link", name="Download the executed PDF").click()
    pdf = Path(download.value.path()).read_bytes()
    with live_server.api(live_server.keys["tenants"]["Acme Retail"]["api_key"]) as api:
        executed = api.get(f"/agreements/{agreement_id}").json()
    assert executed["status"] == "executed"
    assert hashlib.sha256(pdf).hexdigest() == executed["document_sha256"], "the page's PDF is the API's"

    # The executed DPA brought the tenant's obligations as controller: the ledger says what each asks next.
    subscriber.get_by_role("link", name="Obligations").first.click()
    ledger = subscriber.locator("table").inner_text()
    for title in ("Notify the Processor of personal data breaches", "Delete end-user data after termination"):
        assert title in ledger
    accessible(subscriber, seen)
    screenshot(subscriber, "obligations", shots)
    legal.goto(f"{live_server.url}/staff/obligations?status=open")
    assert "Acme Retail" in legal.locator("main").inner_text()
    accessible(legal, seen)

    sales = _person(browser)
    sign_in_with_key(sales, live_server, live_server.keys["staff"]["sales"]["api_key"])
    assert sales.url.endswith("/staff/sales")
    row = sales.locator("tr", has_text="Acme Retail")
    assert "executed" in row.inner_text()
    accessible(sales, seen)
    screenshot(sales, "sales", shots)
    assert len(seen) >= 11


def test_legal_writes_a_template_version_and_only_another_lawyer_approves_it(
    live_server: LiveServer, browser: Any, shots: Path
) -> None:
    seen: list[str] = []
    with live_server.api(live_server.keys["staff"]["platform_admin"]["api_key"]) as admin:
        second = admin.post("/staff", json={"email": "lane@processor.example", "name": "Lane Lawyer", "role": "legal"})
        assert second.status_code == 201, second.text
        second_key = second.json()["api_key"]
    with live_server.api(live_server.keys["staff"]["legal"]["api_key"]) as api:
        standard = next(t for t in api.get("/templates").json()["items"] if t["key"] == "standard-dpa")
        source = api.get(f"/templates/{standard['id']}").json().get("source") or ""

    author = _person(browser)
    sign_in_by_email(author, live_server, LEGAL)
    author.goto(f"{live_server.url}/staff/templates")
    accessible(author, seen)
    author.get_by_role("link", name="New template version").first.click()
    accessible(author, seen)
    author.fill("#key", "standard-dpa")
    author.fill("#title", "Standard DPA (2027 edition)")
    author.get_by_role("button", name="Save draft").click()
    assert author.locator("#source-error").is_visible(), "an empty source is named beside its field"
    assert author.input_value("#title") == "Standard DPA (2027 edition)"
    author.fill("#source", source.replace("</body>", "<p>Edition 2027.</p></body>") if source else "<p>x</p>")
    author.get_by_role("button", name="Save draft").click()
    author.wait_for_load_state()
    version_url = author.url
    author.get_by_role("button", name="Submit for review").click()
    author.wait_for_load_state()
    assert author.get_by_role("button", name="Approve").is_disabled(), "the author cannot approve"
    assert "another legal user must approve it" in author.content()
    accessible(author, seen)
    screenshot(author, "templates", shots)

    reviewer = _person(browser)
    sign_in_with_key(reviewer, live_server, second_key)
    reviewer.goto(version_url)
    reviewer.get_by_role("button", name="Approve this version").click()
    reviewer.wait_for_load_state()
    assert "approved" in reviewer.locator("main").inner_text()
    accessible(reviewer, seen)


def test_a_subscriber_objects_to_a_pending_subprocessor_change(
    live_server: LiveServer, browser: Any, shots: Path
) -> None:
    seen: list[str] = []
    owner_key = live_server.keys["tenants"]["Globex Travel"]["api_key"]
    _executed_through_the_api(live_server, owner_key, "owner@globex-travel.example")
    with live_server.api(live_server.keys["staff"]["legal"]["api_key"]) as legal:
        change = legal.post("/subprocessor-changes", json=_change())
        assert change.status_code == 201, change.text
        version = change.json()["version"]

    subscriber = _person(browser)
    sign_in_by_email(subscriber, live_server, "owner@globex-travel.example")
    subscriber.goto(f"{live_server.url}/app/subprocessors")
    accessible(subscriber, seen)
    screenshot(subscriber, "subprocessors", shots)
    subscriber.get_by_role("button", name=f"Object to version {version}").click()
    assert subscriber.locator("p.error").first.is_visible(), "an objection needs a reason"
    subscriber.get_by_label(f"Reason for objecting to version {version}").fill(
        "Our customers' chats must not leave the EEA."
    )
    subscriber.get_by_role("button", name=f"Object to version {version}").click()
    subscriber.wait_for_load_state()
    accessible(subscriber, seen)
    with live_server.api(owner_key) as api:
        objections = api.get("/objections").json()["items"]
    assert [o["reason"] for o in objections] == ["Our customers' chats must not leave the EEA."]


def _change() -> dict[str, Any]:
    return {
        "add": [
            {
                "name": "Northwind Analytics Inc.",
                "entity": "Northwind Analytics Inc., Seattle",
                "purpose": "Chat analytics",
                "locations": ["US"],
                "data_categories": ["chat transcripts"],
                "transfer_mechanism": "eu-us-dpf",
            }
        ],
        "remove": [],
        "notice_days": 30,
        "reason": "Better analytics",
    }


def _signing_link_mailed_to(server: LiveServer, email: str) -> str:
    mail = next(m for m in reversed(server.mails()) if m["to"] == email and "/sign/" in (m["body"] or ""))
    found = re.search(r"http://\S+/sign/[A-Za-z0-9_-]+", mail["body"])
    assert found, mail["body"]
    return found.group(0)


def _executed_through_the_api(server: LiveServer, owner_key: str, owner_email: str) -> None:
    with server.api(owner_key) as api:
        created = api.post("/agreements", json={"template_key": "standard-dpa", "variables": request_variables()})
        assert created.status_code == 201, created.text
        agreement_id = created.json()["id"]
        assert api.post(f"/agreements/{agreement_id}/submit").status_code == 200
        signer = {"name": "Gina Globex", "email": owner_email, "title": "Director"}
        sent = api.post(
            f"/agreements/{agreement_id}/signature-requests", json={"provider": "builtin", "signer": signer}
        )
        assert sent.status_code == 201, sent.text
        verified = api.get("/me").json()["email_verified"]
        # A demo persona signed in with its key only is unverified: its own link goes to its inbox (the mail log).
        assert (sent.json()["signing_url"] is not None) == verified
        url = sent.json()["signing_url"] or _signing_link_mailed_to(server, owner_email)
    signed = httpx.post(
        url,
        content=json.dumps({"typed_name": "Gina Globex", "consent": True, "authority_confirmed": True}),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert signed.status_code == 200, signed.text
    with server.api(server.keys["staff"]["legal"]["api_key"]) as legal:
        assert legal.post(f"/agreements/{agreement_id}/countersign").status_code == 200
