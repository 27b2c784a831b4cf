"""The inquiry pages: legal asks on `/staff/inquiries` and follows the answers; a Subscriber answers on
`/app/inquiries`. The same services as the API (whose database behaviour tests/obligations/test_inquiries.py
checks on both databases)."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

import httpx
import pytest

from dpa_service.core.clock import travel_to
from dpa_service.obligations import inquiries_pages
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = [pytest.mark.html_face, pytest.mark.usefixtures("irish_processor")]  # html_face: SQLite only

ASKED = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)  # a Friday: due by default Monday 23 March (St Patrick's Day)
QUESTION = "Which of your agents may read chat transcripts?"


async def test_legal_asks_on_the_page_fixing_a_mistake_with_the_input_kept(
    client: httpx.AsyncClient, admin: Api
) -> None:
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant(name="Tenant Alpha")
    await admin.new_tenant(name="Tenant Beta")
    staff = await signed_in(client, legal)
    with travel_to(ASKED):
        form = await staff.get("/staff/inquiries/new")
        assert form.status_code == 200 and 'value="2026-03-23"' in form.text  # 10 Business Days, Irish holidays
        assert "Tenant Alpha (DE)" in form.text and "Every tenant with an executed DPA (0)" in form.text
        narrowed = await staff.get("/staff/inquiries/new", name="alpha")
        assert "Tenant Alpha" in narrowed.text and "Tenant Beta" not in narrowed.text
        fields = {"question": "", "due_at": "2026-03-23", "due_at_suggested": "2026-03-23", "recipients": "chosen",
                  "tenant_ids": owner.tenant_id, "name": ""}  # fmt: skip
        bad = await staff.post("/staff/inquiries", {**fields, "due_at": "2026-03-25"})
        assert bad.status_code == 422 and 'id="question-error"' in bad.text
        assert 'value="2026-03-25"' in bad.text and f'value="{owner.tenant_id}" checked' in bad.text
        early = await staff.post("/staff/inquiries", {**fields, "question": QUESTION, "due_at": "2026-03-20"})
        assert early.status_code == 422 and 'id="due_at-error"' in early.text and "2026-03-23T23:59:59Z" in early.text
        assert QUESTION in early.text
        none_chosen = await staff.post("/staff/inquiries", {**fields, "question": QUESTION, "tenant_ids": []})
        assert none_chosen.status_code == 422 and 'id="tenant_ids-error"' in none_chosen.text
        assert QUESTION in none_chosen.text

        done = await staff.post("/staff/inquiries", {**fields, "question": QUESTION})
        assert done.status_code == 303 and done.headers["location"].startswith("/staff/inquiries?batch_id=")
        listing = await staff.get(done.headers["location"])
    assert "Asked 1 tenant; the answer is due 2026-03-23." in listing.text  # the suggested date: the minimum
    assert "Tenant Alpha" in listing.text and ">open<" in listing.text and QUESTION in listing.text
    [inquiry] = (await owner.get("/inquiries")).json()["items"]
    assert inquiry["due_at"] == "2026-03-23T23:59:59Z"
    answered = await staff.get("/staff/inquiries", status="answered")
    assert QUESTION not in answered.text and "No inquiries answered." in answered.text


async def test_the_subscriber_answers_and_legal_sees_the_answer(client: httpx.AsyncClient, admin: Api) -> None:
    legal = await admin.new_staff("legal")
    owner, other = await admin.new_tenant(name="Tenant Alpha"), await admin.new_tenant()
    member = await owner.new_user("member")
    with travel_to(ASKED):
        ids = []
        for question, due in (("Who is your DPO?", "2026-04-30T23:59:59Z"), (QUESTION, "2026-03-30T23:59:59Z")):
            asked = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": question,
                                                    "due_at": due})  # fmt: skip
            ids += asked.json()["ids"]
        second, first = ids
        browser = await signed_in(client, owner)
        listing = await browser.get("/app/inquiries")
        assert listing.status_code == 200 and "Nothing to answer" not in listing.text
        assert listing.text.index(QUESTION) < listing.text.index("Who is your DPO?"), "soonest due first"
        assert "2026-03-30 23:59 UTC" in listing.text
        page = await browser.get(f"/app/inquiries/{first}")
        assert QUESTION in page.text and 'name="answer"' in page.text
        empty = await browser.post(f"/app/inquiries/{first}/responses", {"answer": " "})
        assert empty.status_code == 422 and 'id="answer-error"' in empty.text
        sent = await browser.post(
            f"/app/inquiries/{first}/responses", {"answer": "Only the support team.\nNo one else."}
        )
        assert sent.status_code == 303 and sent.headers["location"] == f"/app/inquiries/{first}"
        shown = await browser.get(sent.headers["location"])
        assert "Your answer was sent to the processor." in shown.text and ">answered<" in shown.text
        assert "Only the support team.\nNo one else." in shown.text

        reader = await signed_in(client, member)
        as_member = await reader.get(f"/app/inquiries/{second}")
        assert as_member.status_code == 200 and 'name="answer"' not in as_member.text
        assert (await reader.post(f"/app/inquiries/{second}/responses", {"answer": "x"})).status_code == 404
        intruder = await signed_in(client, other)
        assert (await intruder.get(f"/app/inquiries/{first}")).status_code == 404

        staff = await signed_in(client, legal)
        detail = await staff.get(f"/staff/inquiries/{first}")
        assert "Inquiry to Tenant Alpha" in detail.text and "Only the support team." in detail.text
        assert ">answered<" in detail.text
        assert (await browser.get("/staff/inquiries")).status_code == 404, "a staff page is not for Subscribers"


async def test_the_unanswered_inquiries_are_paged_overdue_first_then_soonest_due(
    client: httpx.AsyncClient, admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    legal, owner = await admin.new_staff("legal"), await admin.new_tenant(name="Tenant Alpha")
    questions = {"Q-late?": "2026-03-30", "Q-next?": "2026-04-10", "Q-last?": "2026-04-20"}
    with travel_to(ASKED):
        for question, due in questions.items():
            asked = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": question,
                                                    "due_at": f"{due}T23:59:59Z"})  # fmt: skip
            assert asked.status_code == 201, asked.text
    monkeypatch.setattr(inquiries_pages, "_PAGE_SIZE", 2)
    browser = await signed_in(client, owner)
    with travel_to(datetime(2026, 4, 1, 9, 0, tzinfo=UTC)):
        first = await browser.get("/app/inquiries")
        assert first.text.index("Q-late?") < first.text.index("Q-next?") and "Q-last?" not in first.text
        assert first.text.count(">overdue<") == 1
        [next_url] = re.findall(r'<a href="(/app/inquiries\?unanswered_cursor=[^"]+)">Next page</a>', first.text)
        second = await browser.get(html.unescape(next_url))
    assert second.status_code == 200 and "Q-last?" in second.text
    assert "Q-late?" not in second.text and "Q-next?" not in second.text
    assert "unanswered_cursor=" not in second.text, "the last page"
