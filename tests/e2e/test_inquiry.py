"""An inquiry in a real browser against a real `dpa serve`: legal asks a Subscriber a question (a mistake first,
shown beside its field with the rest kept), the Subscriber's owner sees it and answers, and legal reads the answer.
Every page on the way passes axe-core with no serious or critical violation."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import LiveServer
from tests.e2e.support import accessible, sign_in_by_email

OWNER = "owner@acme-retail.example"
LEGAL = "legal@processor.example"
QUESTION = "Please confirm who at Acme Retail may export chat transcripts."
ANSWER = "Only our two support leads, named in our access register."


def _person(browser: Any) -> Any:
    return browser.new_context(viewport={"width": 1200, "height": 900}).new_page()


def test_legal_asks_a_tenant_the_owner_answers_and_legal_reads_the_answer(
    live_server: LiveServer, browser: Any
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
    owner.fill("#answer", ANSWER)
    owner.get_by_role("button", name="Send the answer").click()
    owner.wait_for_load_state()
    assert "Your answer was sent to the processor." in owner.content() and ANSWER in owner.content()
    accessible(owner, seen)

    legal.get_by_role("link", name="Inquiries").click()
    legal.get_by_role("link", name=QUESTION).click()
    assert ANSWER in legal.content() and "answered" in legal.locator("dl.facts").inner_text()
    accessible(legal, seen)
