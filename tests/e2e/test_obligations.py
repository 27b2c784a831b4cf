"""The Subscriber's obligations in a real browser against a real `dpa serve` (one server for both paths):

* a Subscriber's owner files a breach notice (a future time is refused beside its field, nothing typed is lost),
  legal is e-mailed, finds it in the queue and acknowledges it;
* legal asks a Subscriber a question (a mistake first, shown beside its field with the rest kept), the owner sees
  it and answers, and legal reads the answer.

Every page on the way passes axe-core with no serious or critical violation.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LiveServer
from tests.e2e.support import accessible, screenshot, sign_in_by_email

OWNER = "owner@acme-retail.example"
LEGAL = "legal@processor.example"
QUESTION = "Please confirm who at Acme Retail may export chat transcripts."
ANSWER = "Only our two support leads, named in our access register."


def _person(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1200, "height": 900}).new_page()


def _local(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M")


def _mail_to(server: LiveServer, to: str, subject: str) -> list[dict[str, Any]]:
    """The e-mails the in-process worker sent so far (it runs on its own, so wait a little for it)."""
    deadline = time.monotonic() + 20
    while True:
        found = [m for m in server.mails() if m["to"] == to and m["subject"].startswith(subject)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def test_a_subscriber_files_a_breach_notice_and_legal_acknowledges_it(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    seen: list[str] = []
    owner = _person(browser)
    sign_in_by_email(owner, live_server, OWNER)
    owner.get_by_role("link", name="Breach notices").click()
    assert owner.locator("h1").inner_text() == "Breach notices" and "72 hours" in owner.content()
    accessible(owner, seen)

    owner.fill("#became_aware_at", _local(datetime.now(UTC) + timedelta(days=1)))
    owner.fill("#description", "An agent's API key was pasted into a public forum.")
    owner.fill("#data_categories", "chat transcripts\nvisitor e-mail addresses")
    owner.fill("#subjects_estimate", "250")
    owner.fill("#measures", "Key revoked; sessions ended.")
    owner.get_by_role("button", name="Report the breach").click()
    assert owner.locator("#became_aware_at-error").is_visible(), "the future time is named beside its field"
    assert owner.input_value("#description") == "An agent's API key was pasted into a public forum."
    assert owner.input_value("#subjects_estimate") == "250", "nothing typed is lost"
    accessible(owner, seen)
    screenshot(owner, "breach-notice-form", tmp_path)
    owner.fill("#became_aware_at", _local(datetime.now(UTC) - timedelta(hours=3)))
    owner.get_by_role("button", name="Report the breach").click()
    owner.wait_for_load_state()
    assert "/app/breach-notices/" in owner.url, owner.locator(".error, .error-summary").all_inner_texts()
    assert "reported on time" in owner.locator(".flash").inner_text()
    accessible(owner, seen)

    [mail] = _mail_to(live_server, LEGAL, "Breach notice from Acme Retail")
    notice_id = owner.url.rstrip("/").rsplit("/", 1)[-1]
    assert f"/staff/breach-notices/{notice_id}" in mail["body"]

    legal = _person(browser)
    sign_in_by_email(legal, live_server, LEGAL)
    legal.get_by_role("link", name="Breach notices").click()
    waiting = legal.locator("table[aria-labelledby=section-reported]")
    assert "Acme Retail" in waiting.inner_text()
    accessible(legal, seen)
    screenshot(legal, "breach-notices-legal", tmp_path)
    waiting.get_by_role("link", name="Breach notice from Acme Retail").first.click()
    assert "An agent's API key was pasted into a public forum." in legal.content()
    accessible(legal, seen)
    legal.get_by_role("button", name="Acknowledge the breach notice from Acme Retail").click()
    legal.wait_for_load_state()
    assert "Acknowledged; the tenant is told." in legal.content()
    accessible(legal, seen)

    owner.reload()
    assert "acknowledged" in owner.locator("dl.facts").inner_text()
    assert len(seen) == 6


def test_legal_asks_a_tenant_the_owner_answers_and_legal_reads_the_answer(
    live_server: LiveServer, browser: Any, tmp_path: Path
) -> None:
    seen: list[str] = []
    legal = _person(browser)
    sign_in_by_email(legal, live_server, LEGAL)
    legal.get_by_role("link", name="Inquiries").click()
    legal.get_by_role("link", name="New inquiry").click()
    assert legal.input_value("#due_at"), "the due date is offered: the DPA's minimum"
    legal.get_by_label("Acme Retail (DE)").check()
    legal.get_by_role("button", name="Send the inquiry").click()
    assert legal.locator("#question-error").is_visible(), "the missing question is named beside its field"
    assert legal.get_by_label("Acme Retail (DE)").is_checked(), "the chosen tenant is kept"
    accessible(legal, seen)
    legal.fill("#question", QUESTION)
    legal.get_by_role("button", name="Send the inquiry").click()
    legal.wait_for_load_state()
    assert "Asked 1 tenant" in legal.content() and "Acme Retail" in legal.content()
    accessible(legal, seen)

    owner = _person(browser)
    sign_in_by_email(owner, live_server, OWNER)
    owner.get_by_role("link", name="Inquiries").click()
    assert "Nothing to answer" not in owner.content()
    accessible(owner, seen)
    owner.get_by_role("link", name=QUESTION).click()
    screenshot(owner, "inquiry-answer", tmp_path)
    owner.fill("#answer", ANSWER)
    owner.get_by_role("button", name="Send the answer").click()
    owner.wait_for_load_state()
    assert "Your answer was sent to the processor." in owner.content() and ANSWER in owner.content()
    accessible(owner, seen)

    legal.get_by_role("link", name="Inquiries").click()
    legal.get_by_role("link", name=QUESTION).click()
    assert ANSWER in legal.content() and "answered" in legal.locator("dl.facts").inner_text()
    accessible(legal, seen)
