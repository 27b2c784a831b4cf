"""Inquiries (obligation ii, clause 9.3 of the standard DPA) through the API, on both databases: legal asks one
tenant, a list or every tenant with an executed DPA; the due date is at least 10 Business Days away; Subscribers
answer; reminders and overdue notices go out once each through the outbox."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from dpa_service.audit.models import AuditEvent
from dpa_service.core.clock import travel_to
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import MailDelivery
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.notifications.worker import fan_out
from dpa_service.obligations import inquiries_notices as notices
from dpa_service.obligations.models import Inquiry, InquiryResponse
from dpa_service.tenants.models import Tenant
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated

# A Friday; Tuesday 17 March is St Patrick's Day in Ireland, the processor's country: ten Business Days end on
# Monday 23 March.
pytestmark = pytest.mark.usefixtures("irish_processor")  # the dates below count Irish holidays

ASKED = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
MINIMUM = "2026-03-23T23:59:59Z"
QUESTION = "Please confirm that chat transcripts older than 12 months may be deleted (clause 3.3)."


async def _topic_count(db: Database, topic: str) -> dict[uuid.UUID | None, int]:
    async with db.transaction(Scope.system(), write=False) as session:
        rows = await session.execute(
            select(OutboxMessage.tenant_id, func.count())
            .where(OutboxMessage.topic == topic)
            .group_by(OutboxMessage.tenant_id)
        )
        return dict(rows.all())


async def _ask(legal: Api, tenant_ids: object, **body: object) -> dict:
    response = await legal.post("/inquiries", {"tenant_ids": tenant_ids, "question": QUESTION, **body})
    assert response.status_code == 201, response.text
    return response.json()


async def _statuses(legal: Api) -> dict[str, int]:
    """How many inquiries legal's list shows in each status, every page followed."""
    counts: dict[str, int] = {}
    for status in ("open", "overdue", "answered"):
        counts[status], params = 0, {"status": status, "limit": 200}
        while True:
            page = (await legal.get("/inquiries", **params)).json()
            counts[status] += len(page["items"])
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
    return counts


async def test_a_fan_out_to_1000_tenants_asks_and_notifies_each_once_and_follows_each_answer(
    admin: Api, db: Database
) -> None:
    legal = await admin.new_staff("legal")
    answering = [await admin.new_tenant() for _ in range(3)]  # owners who answer; the others are rows only
    async with db.transaction(Scope.system()) as session:
        rows = [Tenant(name=f"T {i}", legal_name=f"T {i} GmbH", country="DE") for i in range(997)]
        session.add_all(rows)
        await session.flush()
        tenant_ids = [uuid.UUID(owner.tenant_id or "") for owner in answering] + [tenant.id for tenant in rows]
    with travel_to(ASKED):
        batch = await _ask(legal, [str(t) for t in tenant_ids])
    assert batch["count"] == 1000 and len(set(batch["ids"])) == 1000

    async with db.transaction(Scope.system(), write=False) as session:
        asked = (await session.execute(select(Inquiry.tenant_id, Inquiry.id, Inquiry.batch_id))).all()
        events = dict(
            (
                await session.execute(
                    select(AuditEvent.tenant_id, func.count())
                    .where(AuditEvent.action == "inquiry.asked")
                    .group_by(AuditEvent.tenant_id)
                )
            ).all()
        )
    assert sorted(t for t, _, _ in asked) == sorted(tenant_ids), "exactly one inquiry per tenant"
    assert {str(b) for _, _, b in asked} == {batch["batch_id"]}
    assert [str(i) for _, i, _ in sorted(asked, key=lambda row: tenant_ids.index(row[0]))] == batch["ids"]
    told = await _topic_count(db, notices.ASKED_TOPIC)
    assert told == dict.fromkeys(tenant_ids, 1), "exactly one notice per tenant"
    assert events == {**dict.fromkeys(tenant_ids, 1), None: 1}, "one event in each tenant's chain, one for legal"
    chain = (await legal.get("/audit-events/verify", tenant_id=str(tenant_ids[500]))).json()
    assert chain["ok"] and chain["events"] == 1

    due = datetime.fromisoformat(batch["due_at"].replace("Z", "+00:00"))
    with travel_to(due - timedelta(days=1)):
        for owner in answering:
            [inquiry] = (await owner.get("/inquiries")).json()["items"]
            answered = await owner.post(f"/inquiries/{inquiry['id']}/responses", {"answer": "Yes, delete them."})
            assert answered.status_code == 201, answered.text
        assert await _statuses(legal) == {"open": 997, "overdue": 0, "answered": 3}
    with travel_to(due + timedelta(minutes=1)):
        assert await _statuses(legal) == {"open": 0, "overdue": 997, "answered": 3}
        late = await legal.get(f"/inquiries/{batch['ids'][3]}")
        assert late.json()["status"] == "overdue" and late.json()["tenant_id"] == str(tenant_ids[3])


async def test_all_asks_every_tenant_with_an_executed_dpa_and_no_other(admin: Api, db: Database) -> None:
    await approve_standard_dpa(db)
    legal = await admin.new_staff("legal")
    executed, other = await admin.new_tenant(), await admin.new_tenant()
    await to_status(executed, legal, "executed")
    batch = await _ask(legal, "all")
    assert batch["count"] == 1
    [inquiry] = (await executed.get("/inquiries")).json()["items"]
    assert inquiry["id"] == batch["ids"][0] and inquiry["status"] == "open"
    assert (await other.get("/inquiries")).json()["items"] == []
    await fan_out(db)  # the worker turns the notice into the owner's e-mail
    async with db.transaction(Scope.system(), write=False) as session:
        mails = (
            await session.execute(
                select(MailDelivery.tenant_id).where(MailDelivery.subject.contains("asks: please answer by"))
            )
        ).all()
    assert [str(tenant_id) for (tenant_id,) in mails] == [executed.tenant_id]


async def test_the_due_date_defaults_to_ten_business_days_and_earlier_is_422_naming_due_at(
    admin: Api, db: Database
) -> None:
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant(country="DE")
    with travel_to(ASKED):
        default = await _ask(legal, [owner.tenant_id])
        assert default["due_at"] == MINIMUM
        for due_at in ("2026-03-23T12:00:00Z", "2026-03-20T23:59:59Z"):
            early = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": QUESTION,
                                                    "due_at": due_at})  # fmt: skip
            assert early.status_code == 422 and [e["field"] for e in early.json()["errors"]] == ["due_at"]
            assert MINIMUM in early.json()["errors"][0]["message"]
        # Out of range in UTC (once a 500), and later than a year after asking (clause 9.3: "reasonable").
        for due_at in ("9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+14:00", "2027-03-07T00:00:00Z"):
            far = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": QUESTION,
                                                  "due_at": due_at})  # fmt: skip
            assert far.status_code == 422 and [e["field"] for e in far.json()["errors"]] == ["due_at"], far.text
        naive = await legal.post(
            "/inquiries", {"tenant_ids": [owner.tenant_id], "question": QUESTION, "due_at": "2026-04-30T12:00:00"}
        )
        assert naive.status_code == 422 and [e["field"] for e in naive.json()["errors"]] == ["due_at"]
        body = {"tenant_ids": [owner.tenant_id], "question": QUESTION, "due_at": "2026-04-30T12:00:00+02:00"}
        later = await legal.post("/inquiries", body, headers={"Idempotency-Key": "ask-1"})
        again = await legal.post("/inquiries", body, headers={"Idempotency-Key": "ask-1"})
    assert later.status_code == again.status_code == 201 and later.json() == again.json()
    assert later.json()["due_at"] == "2026-04-30T10:00:00Z"
    items = (await owner.get("/inquiries")).json()["items"]
    assert [i["due_at"] for i in items] == ["2026-04-30T10:00:00Z", MINIMUM], "nothing written by the refusals"


async def test_bad_recipients_are_422_naming_each_and_nothing_is_asked(admin: Api, db: Database) -> None:
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    cases = [
        ([owner.tenant_id, str(uuid.uuid4())], "tenant_ids.1"),
        ([owner.tenant_id, "not-an-id"], "tenant_ids.1"),
        ([owner.tenant_id, owner.tenant_id], "tenant_ids.1"),
        ([], "tenant_ids"),
        ("everyone", "tenant_ids"),
        ("all", "tenant_ids"),  # nobody has an executed DPA yet
        ([str(uuid.uuid4()) for _ in range(10_001)], "tenant_ids"),
    ]
    for tenant_ids, field in cases:
        response = await legal.post("/inquiries", {"tenant_ids": tenant_ids, "question": QUESTION})
        assert response.status_code == 422, (tenant_ids, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field], response.text
    blank = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": "  "})
    assert blank.status_code == 422 and [e["field"] for e in blank.json()["errors"]] == ["question"]
    assert (await legal.get("/inquiries")).json()["items"] == []
    assert await _topic_count(db, notices.ASKED_TOPIC) == {}


async def test_answers_and_statuses_as_the_clock_passes_the_due_date(admin: Api, db: Database) -> None:
    legal = await admin.new_staff("legal")
    prompt, late = await admin.new_tenant(), await admin.new_tenant()
    with travel_to(ASKED):
        batch = await _ask(legal, [prompt.tenant_id, late.tenant_id])
        first, second = batch["ids"]
        answered = await prompt.post(f"/inquiries/{first}/responses", {"answer": "Yes, delete them."})
        assert answered.status_code == 201, answered.text
        assert (answered.json()["status"], answered.json()["late"]) == ("answered", False)
        more = await prompt.post(f"/inquiries/{first}/responses", {"answer": "Except those under legal hold."})
        assert [a["answer"] for a in more.json()["answers"]] == ["Yes, delete them.", "Except those under legal hold."]
        assert more.json()["answered_at"] == answered.json()["answered_at"], "the first answer dates it"
    with travel_to(datetime(2026, 3, 24, 9, 0, tzinfo=UTC)):  # the day after the due date
        assert (await late.get(f"/inquiries/{second}")).json()["status"] == "overdue"
        assert [i["id"] for i in (await legal.get("/inquiries", status="overdue")).json()["items"]] == [second]
        assert [i["id"] for i in (await legal.get("/inquiries", status="answered")).json()["items"]] == [first]
        assert (await legal.get("/inquiries", status="open")).json()["items"] == []
        mine = (await legal.get("/inquiries", tenant_id=late.tenant_id)).json()["items"]
        assert [(i["id"], i["tenant_id"]) for i in mine] == [(second, late.tenant_id)]
        overdue_answer = await late.post(f"/inquiries/{second}/responses", {"answer": "Sorry for the delay: yes."})
        assert overdue_answer.status_code == 201
        body = overdue_answer.json()
        assert (body["status"], body["late"], body["answers"][0]["late"]) == ("answered", True, True)
        assert body["answered_at"] > body["due_at"] == MINIMUM
    assert (await legal.get("/inquiries", status="overdue")).json()["items"] == []
    events = (await late.get("/audit-events")).json()["items"]
    assert [e["action"] for e in events][-2:] == ["inquiry.asked", "inquiry.answered"]
    assert events[-1]["data"]["late"] is True and events[-1]["target_id"] == second


async def test_a_reminder_and_an_overdue_notice_go_out_once_each_however_often_the_job_runs(
    admin: Api, db: Database
) -> None:
    legal = await admin.new_staff("legal")
    quiet, answered = await admin.new_tenant(), await admin.new_tenant()
    with travel_to(ASKED):
        first, second = (await _ask(legal, [quiet.tenant_id, answered.tenant_id]))["ids"]
        assert await notices.send_due_notices(db) == {notices.REMINDER_TOPIC: 0, notices.OVERDUE_TOPIC: 0}
    other = Database(db.settings)  # a second process's connection pool
    try:
        with travel_to(datetime(2026, 3, 22, 12, 0, tzinfo=UTC)):  # 36 hours before the due date
            await asyncio.gather(notices.send_due_notices(db), notices.send_due_notices(other))
            await notices.send_due_notices(db)
            assert (await quiet.get(f"/inquiries/{first}")).json()["reminded_at"] is not None
            await answered.post(f"/inquiries/{second}/responses", {"answer": "Done."})
        with travel_to(datetime(2026, 3, 24, 0, 0, 1, tzinfo=UTC)):
            await asyncio.gather(notices.send_due_notices(db), notices.send_due_notices(other))
            await notices.send_due_notices(db)
    finally:
        await other.dispose()
    quiet_id, answered_id = uuid.UUID(quiet.tenant_id), uuid.UUID(answered.tenant_id)
    assert await _topic_count(db, notices.REMINDER_TOPIC) == {quiet_id: 1, answered_id: 1}
    assert await _topic_count(db, notices.OVERDUE_TOPIC) == {quiet_id: 1}, "an answered inquiry is not overdue"
    actions = [e["action"] for e in (await quiet.get("/audit-events")).json()["items"]]
    assert actions[-3:] == ["inquiry.asked", "inquiry.reminder_sent", "inquiry.overdue_notice_sent"]


async def test_only_legal_asks_and_only_the_tenants_owners_and_admins_answer(admin: Api) -> None:
    legal, sales = await admin.new_staff("legal"), await admin.new_staff("sales")
    owner = await admin.new_tenant()
    member, tenant_admin = await owner.new_user("member"), await owner.new_user("admin")
    [inquiry] = (await _ask(legal, [owner.tenant_id]))["ids"]
    assert (await owner.post("/inquiries", {"tenant_ids": [owner.tenant_id], "question": "?"})).status_code == 403
    assert (await sales.get("/inquiries")).status_code == 403
    for caller in (member, legal):
        response = await caller.post(f"/inquiries/{inquiry}/responses", {"answer": "yes"})
        assert response.status_code == 403, response.text
    assert (await member.get(f"/inquiries/{inquiry}")).json()["status"] == "open", "members read"
    assert (await tenant_admin.post(f"/inquiries/{inquiry}/responses", {"answer": "yes"})).status_code == 201
    empty = await owner.post(f"/inquiries/{inquiry}/responses", {"answer": ""})
    assert empty.status_code == 422 and [e["field"] for e in empty.json()["errors"]] == ["answer"]


async def test_another_tenants_inquiries_are_not_found(admin: Api, db: Database, client: httpx.AsyncClient) -> None:
    legal = await admin.new_staff("legal")
    tenant_a, tenant_b = await admin.new_tenant(), await admin.new_tenant()
    mine, theirs = (await _ask(legal, [tenant_a.tenant_id, tenant_b.tenant_id]))["ids"]
    await assert_isolated(
        tenant_a,
        tenant_b,
        [
            Probe(
                "tenant A's inquiry",
                mine,
                lists=["/inquiries"],
                direct=[
                    ("GET", f"/inquiries/{mine}", None),
                    ("POST", f"/inquiries/{mine}/responses", {"answer": "not mine to give"}),
                ],
            )
        ],
    )
    async with db.transaction(Scope.system(), write=False) as session:
        assert (await session.execute(select(func.count()).select_from(InquiryResponse))).scalar_one() == 0
    assert [i["id"] for i in (await tenant_b.get("/inquiries")).json()["items"]] == [theirs]
