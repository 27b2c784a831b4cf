"""Breach notices through the API (obligation i, clause 9.2 of the DPA): the 72-hour clock, bad input, updates in
phases, legal's acknowledgement, who may do what, and isolation between tenants. Both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dpa_service.core.clock import travel_to, utcnow
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated

AWARE = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "became_aware_at": "2026-03-02T09:30:00Z",
        "description": "An agent's API key was published in a public repository.",
        "data_categories": ["chat transcripts", "visitor e-mail addresses"],
        "subjects_estimate": 1200,
        "records_estimate": 5400,
        "consequences": "Transcripts may have been read.",
        "measures": "Key revoked; access logs under review.",
        "contact_email": "dpo@tenant.example",
        **overrides,
    }


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.fixture
async def owner(admin: Api) -> Api:
    return await admin.new_tenant()


@pytest.fixture
async def legal(admin: Api) -> Api:
    return await admin.new_staff("legal")


async def reported(owner: Api, **overrides: Any) -> dict[str, Any]:
    response = await owner.post("/breach-notices", body(**overrides))
    assert response.status_code == 201, response.text
    return response.json()


# Must show 2: the clock, table-driven. Reported this long after becoming aware -> late?
CLOCK = [
    (timedelta(hours=71, minutes=59), False),
    (timedelta(hours=72), False),  # the very second the 72 hours end is still within them
    (timedelta(hours=72, minutes=1), True),
    (timedelta(minutes=5), False),
    (timedelta(days=9), True),
]


async def test_the_72_hour_clock_decides_late_and_the_report_is_audited_with_it(owner: Api) -> None:
    for after, late in CLOCK:
        with travel_to(AWARE + after):
            notice = await reported(owner)
        assert notice["late"] is late, f"reported {after} after becoming aware"
        assert at(notice["deadline_at"]) == AWARE + timedelta(hours=72)
        assert at(notice["became_aware_at"]) == AWARE and at(notice["reported_at"]) == AWARE + after
        assert (notice["status"], notice["updates"], notice["acknowledged_at"]) == ("reported", [], None)
        assert notice["data_categories"] == ["chat transcripts", "visitor e-mail addresses"]
    events = [e for e in (await owner.get("/audit-events", limit=200)).json()["items"]
              if e["action"] == "breach_notice.reported"]  # fmt: skip
    assert [e["data"]["late"] for e in events] == [late for _, late in CLOCK]
    assert (await owner.get("/audit-events/verify")).json()["ok"] is True


async def test_a_future_awareness_and_other_bad_input_are_422_naming_the_field_and_write_nothing(owner: Api) -> None:
    future = (utcnow() + timedelta(minutes=10)).isoformat().replace("+00:00", "Z")
    cases = [
        ({"became_aware_at": future}, "became_aware_at"),
        ({"became_aware_at": "2026-03-02T09:30:00"}, "became_aware_at"),  # no timezone: which 09:30?
        ({"became_aware_at": "yesterday"}, "became_aware_at"),
        ({"became_aware_at": "0001-01-01T00:00:00+14:00"}, "became_aware_at"),  # before year 1 in UTC
        ({"became_aware_at": "9999-12-31T23:59:59-01:00"}, "became_aware_at"),  # after year 9999 in UTC
        ({"became_aware_at": "2018-05-24T23:59:59Z"}, "became_aware_at"),  # before the GDPR applied
        ({"subjects_estimate": True}, "subjects_estimate"),
        ({"subjects_estimate": "1200"}, "subjects_estimate"),
        ({"subjects_estimate": -1}, "subjects_estimate"),
        ({"records_estimate": "many"}, "records_estimate"),
        ({"data_categories": []}, "data_categories"),
        ({"data_categories": ["  "]}, "data_categories.0"),
        ({"data_categories": [f"c{i}" for i in range(51)]}, "data_categories"),
        ({"description": "   "}, "description"),
        ({"measures": "x" * 20_001}, "measures"),
        ({"contact_email": "not an address"}, "contact_email"),
    ]
    for change, field in cases:
        response = await owner.post("/breach-notices", body(**change))
        assert response.status_code == 422, (change, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (change, response.json())
    missing = body()
    del missing["measures"]
    response = await owner.post("/breach-notices", missing)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "measures"
    assert (await owner.get("/breach-notices")).json()["items"] == []
    stripped = await reported(owner, description="  Padded.  ", records_estimate=None, consequences=None)
    assert (stripped["description"], stripped["records_estimate"], stripped["consequences"]) == ("Padded.", None, None)
    first_day = await reported(owner, became_aware_at="2018-05-25T02:00:00+02:00")  # the GDPR's first day, in UTC
    assert first_day["became_aware_at"] == "2018-05-25T00:00:00Z" and first_day["late"] is True


async def test_updates_come_in_phases_and_legal_acknowledges_once_audited(owner: Api, legal: Api) -> None:
    notice = await reported(owner)
    nid = notice["id"]
    first = await owner.post(f"/breach-notices/{nid}/updates", {"text": "  Scope: 3 agents' accounts.  "})
    assert first.status_code == 201, first.text
    assert first.json()["text"] == "Scope: 3 agents' accounts." and first.json()["breach_notice_id"] == nid
    assert (await owner.post(f"/breach-notices/{nid}/updates", {"text": " "})).json()["errors"][0]["field"] == "text"

    acked = await legal.post(f"/breach-notices/{nid}/acknowledge")
    assert acked.status_code == 200, acked.text
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"] == legal.user_id
    assert at(acked.json()["acknowledged_at"]) <= utcnow()
    again = await legal.post(f"/breach-notices/{nid}/acknowledge")
    assert again.status_code == 409 and again.headers["content-type"].startswith("application/problem+json")

    later = await owner.post(f"/breach-notices/{nid}/updates", {"text": "No data was exfiltrated."})
    assert later.status_code == 201, "information may follow the acknowledgement"
    shown = (await owner.get(f"/breach-notices/{nid}")).json()
    assert [u["text"] for u in shown["updates"]] == ["Scope: 3 agents' accounts.", "No data was exfiltrated."]
    assert shown["status"] == "acknowledged" and (await legal.get(f"/breach-notices/{nid}")).json() == shown

    events = [e for e in (await owner.get("/audit-events", limit=200)).json()["items"] if e["target_id"] == nid]
    assert [e["action"] for e in events] == [
        "breach_notice.reported",
        "breach_notice.updated",
        "breach_notice.acknowledged",
        "breach_notice.updated",
    ]
    assert events[2]["actor_id"] == legal.user_id and events[0]["actor_id"] == owner.user_id


async def test_who_may_report_read_update_and_acknowledge(admin: Api, owner: Api, legal: Api) -> None:
    member, tenant_admin = await owner.new_user("member"), await owner.new_user("admin")
    sales = await admin.new_staff("sales")
    assert (await member.post("/breach-notices", body())).status_code == 403
    for staff in (legal, sales, admin):
        assert (await staff.post("/breach-notices", body())).status_code == 403, "staff cannot report for a tenant"
    nid = (await reported(tenant_admin))["id"]
    assert (await member.get(f"/breach-notices/{nid}")).status_code == 200, "members read their tenant's notices"
    assert [n["id"] for n in (await member.get("/breach-notices")).json()["items"]] == [nid]
    assert (await member.post(f"/breach-notices/{nid}/updates", {"text": "x"})).status_code == 403
    assert (await legal.post(f"/breach-notices/{nid}/updates", {"text": "x"})).status_code == 403
    assert (await sales.get("/breach-notices")).status_code == 403
    for subscriber in (owner, tenant_admin, member):
        assert (await subscriber.post(f"/breach-notices/{nid}/acknowledge")).status_code == 403
    assert (await legal.post(f"/breach-notices/{uuid.uuid4()}/acknowledge")).status_code == 404
    assert (await owner.get(f"/breach-notices/{nid}")).json()["status"] == "reported"


async def test_legal_lists_every_tenants_notices_filtered_and_paged(admin: Api, owner: Api, legal: Api) -> None:
    other = await admin.new_tenant()
    mine = [(await reported(owner))["id"], (await reported(owner))["id"]]
    theirs = (await reported(other))["id"]
    assert (await legal.post(f"/breach-notices/{mine[0]}/acknowledge")).status_code == 200
    assert [n["id"] for n in await legal.all("/breach-notices")] == [*mine, theirs]
    assert [n["id"] for n in await legal.all("/breach-notices", tenant_id=other.tenant_id)] == [theirs]
    assert [n["id"] for n in await legal.all("/breach-notices", status="reported")] == [mine[1], theirs]
    assert [n["id"] for n in await legal.all("/breach-notices", status="acknowledged", tenant_id=owner.tenant_id)] == [
        mine[0]
    ]
    first = (await legal.get("/breach-notices", limit=2)).json()
    second = (await legal.get("/breach-notices", limit=2, cursor=first["next_cursor"])).json()
    assert [n["id"] for n in first["items"] + second["items"]] == [*mine, theirs] and second["next_cursor"] is None
    bad = await legal.get("/breach-notices", status="lost")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "status"
    assert (await legal.get("/breach-notices", limit=201)).status_code == 422


async def test_another_tenant_cannot_reach_a_notice(admin: Api, owner: Api) -> None:
    intruder = await admin.new_tenant()
    notice = await reported(owner)
    nid = notice["id"]
    await owner.post(f"/breach-notices/{nid}/updates", {"text": "More."})
    await assert_isolated(
        owner,
        intruder,
        [
            Probe(
                "tenant A's breach notice",
                nid,
                direct=[
                    ("GET", f"/breach-notices/{nid}", None),
                    ("POST", f"/breach-notices/{nid}/updates", {"text": "Not yours."}),
                ],
                lists=["/breach-notices", f"/breach-notices?tenant_id={owner.tenant_id}"],
            )
        ],
    )
    assert len((await owner.get(f"/breach-notices/{nid}")).json()["updates"]) == 1
