"""Assistance requests through the API: due 30 days after they are made (the processor's policy), answered by legal,
`late` once the clock passes the due time unanswered, or when answered after it."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated
from tests.helpers.receiver import drain

DSR = {"kind": "data_subject_request", "description": "A visitor asks for every chat transcript about her."}


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def ask(api: Api, body: dict | None = None) -> dict:
    response = await api.post("/assistance-requests", body or DSR)
    assert response.status_code == 201, response.text
    return response.json()


async def test_a_request_is_due_in_30_days_answered_and_late_once_the_clock_passes(
    admin: Api, legal: Api, client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    owner = await admin.new_tenant()
    asked = await ask(owner)
    assert (asked["status"], asked["late"], asked["kind"], asked["tenant_id"]) == (
        "open",
        False,
        "data_subject_request",
        owner.tenant_id,
    )
    assert at(asked["due_at"]) - at(asked["requested_at"]) == timedelta(days=30)
    on_time = await ask(owner, {"kind": "dpia", "description": "Help with our DPIA for the chat widget."})
    assert (
        await legal.post(f"/assistance-requests/{on_time['id']}/responses", {"text": "Annex II"})
    ).status_code == 201

    await drain(client, db)
    legal_me = (await legal.get("/me")).json()
    told = [m for m in read_log(settings.var_dir) if m["subject"].startswith("Assistance requested")]
    assert {m["to"] for m in told} == {legal_me["email"]} and len(told) == 2  # legal, not the tenant's owner
    assert any(asked["id"] in m["body"] for m in told)

    with travel_to(utcnow() + timedelta(days=30, minutes=1)):
        overdue = (await owner.get(f"/assistance-requests/{asked['id']}")).json()
        assert (overdue["status"], overdue["late"], overdue["responses"]) == ("open", True, [])
        assert [r["id"] for r in (await legal.get("/assistance-requests", status="late")).json()["items"]] == [
            asked["id"]
        ]
        answered = await legal.post(f"/assistance-requests/{asked['id']}/responses", {"text": "Export attached."})
        assert answered.status_code == 201, answered.text
        assert answered.json()["request_id"] == asked["id"] and answered.json()["answered_by"] == legal.user_id

        detail = (await owner.get(f"/assistance-requests/{asked['id']}")).json()
        assert (detail["status"], detail["late"]) == ("answered", True)  # answered after its due time
        assert [r["text"] for r in detail["responses"]] == ["Export attached."]
        by_status = {
            status: [r["id"] for r in (await owner.get("/assistance-requests", status=status)).json()["items"]]
            for status in ("open", "answered", "late")
        }
        assert by_status == {"open": [], "answered": [asked["id"], on_time["id"]], "late": [asked["id"]]}

    actions = [e["action"] for e in await owner.all("/audit-events")]
    assert actions.count("assistance_request.created") == 2 and actions.count("assistance_request.answered") == 2
    await drain(client, db)
    owner_me = (await owner.get("/me")).json()
    answers = [m for m in read_log(settings.var_dir) if m["subject"].startswith("Answer to your assistance")]
    assert {m["to"] for m in answers} == {owner_me["email"]} and any("Export attached." in m["body"] for m in answers)


async def test_assistance_roles_bad_inputs_and_other_tenants(admin: Api, legal: Api) -> None:
    owner = await admin.new_tenant()
    intruder = await admin.new_tenant()
    member = await owner.new_user("member")
    tenant_admin = await owner.new_user("admin")
    sales = await admin.new_staff("sales")
    asked = await ask(tenant_admin)
    rid = asked["id"]

    # API.md: "subscriber asks": a member handling a data subject's request asks too.
    by_member = await ask(member)
    assert by_member["tenant_id"] == owner.tenant_id and by_member["requested_by"] == member.user_id
    assert (await legal.post("/assistance-requests", DSR)).status_code == 403
    assert (await owner.post(f"/assistance-requests/{rid}/responses", {"text": "self-answered"})).status_code == 403
    assert (await sales.get("/assistance-requests")).status_code == 403
    assert (await member.get(f"/assistance-requests/{rid}")).json()["id"] == rid  # members read

    def field(response: httpx.Response) -> list[str]:
        assert response.status_code == 422, response.text
        return [e["field"] for e in response.json()["errors"]]

    assert field(await owner.post("/assistance-requests", {**DSR, "kind": "complaint"})) == ["kind"]
    assert field(await owner.post("/assistance-requests", {**DSR, "description": "  "})) == ["description"]
    assert field(await owner.get("/assistance-requests", status="closed")) == ["status"]
    assert field(await legal.post(f"/assistance-requests/{rid}/responses", {"text": ""})) == ["text"]
    assert (await legal.post(f"/assistance-requests/{intruder.tenant_id}/responses", {"text": "x"})).status_code == 404
    assert len((await owner.get("/assistance-requests")).json()["items"]) == 2  # the two asked, nothing else

    await ask(intruder)
    mine = (await legal.get("/assistance-requests", tenant_id=owner.tenant_id)).json()["items"]
    assert [r["id"] for r in mine] == [rid, by_member["id"]]
    await assert_isolated(
        owner,
        intruder,
        [Probe("assistance request", rid, direct=[("GET", f"/assistance-requests/{rid}", None)],
               lists=["/assistance-requests"])],
    )  # fmt: skip
