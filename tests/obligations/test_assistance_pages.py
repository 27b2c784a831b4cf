"""The assistance pages: a Subscriber asks on /app/assistance and reads the answer there; legal sees open and late
requests first on /staff/assistance and answers."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from dpa_service.core.clock import travel_to, utcnow
from tests.helpers.api import Api
from tests.helpers.pages import signed_in

pytestmark = pytest.mark.html_face  # see tests/conftest.py: SQLite only


async def test_a_subscriber_asks_legal_answers_and_the_subscriber_reads_the_answer(
    client: httpx.AsyncClient, admin: Api
) -> None:
    owner = await admin.new_tenant(name="Tenant Asking")
    legal = await admin.new_staff("legal")
    browser = await signed_in(client, owner)

    page = await browser.get("/app/assistance")
    assert page.status_code == 200 and ">Assistance</a>" in page.text and 'action="/app/assistance"' in page.text
    bad = await browser.post("/app/assistance", {"kind": "dpia", "description": ""})
    assert bad.status_code == 422 and 'id="description-error"' in bad.text
    assert '<option value="dpia" selected>' in bad.text
    sent = await browser.post("/app/assistance", {"kind": "dpia", "description": "Help with the DPIA, please."})
    assert sent.status_code == 303
    [asked] = (await owner.get("/assistance-requests")).json()["items"]
    assert sent.headers["location"] == f"/app/assistance/{asked['id']}"
    detail = await browser.get(f"/app/assistance/{asked['id']}")
    assert "Help with the DPIA, please." in detail.text and "No answer yet." in detail.text
    assert asked["due_at"][:10] in (await browser.get("/app/assistance")).text

    member = await signed_in(client, await owner.new_user("member"))  # members ask too (API.md: "subscriber asks")
    assert 'action="/app/assistance"' in (await member.get("/app/assistance")).text
    by_member = await member.post("/app/assistance", {"kind": "other", "description": "Which region hosts us?"})
    assert (
        by_member.status_code == 303
        and "Which region hosts us?" in (await member.get(by_member.headers["location"])).text
    )

    assert (await browser.get("/staff/assistance")).status_code == 404
    with travel_to(utcnow() + timedelta(days=31)):  # past the due date (signed in then: sessions end too)
        staff = await signed_in(client, legal)
        queue = await staff.get("/staff/assistance")
        open_part = queue.text.split("<h2>Answered</h2>")[0]
        assert "Tenant Asking" in open_part and f'href="/staff/assistance/{asked["id"]}"' in open_part
        assert "status-late" in open_part
        empty = await staff.post(f"/staff/assistance/{asked['id']}/responses", {"text": " "})
        assert empty.status_code == 422 and 'id="text-error"' in empty.text
        answered = await staff.post(f"/staff/assistance/{asked['id']}/responses", {"text": "Our DPIA input: ..."})
        assert answered.status_code == 303
        queue = await staff.get("/staff/assistance")
        assert f'href="/staff/assistance/{asked["id"]}"' in queue.text.split("<h2>Answered</h2>")[1]

    shown = await browser.get(f"/app/assistance/{asked['id']}")
    assert "Our DPIA input: ..." in shown.text and "status-answered" in shown.text
