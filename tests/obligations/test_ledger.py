"""The obligations ledger through HTTP: made when a DPA is executed, moved on by a newer one, statuses derived from
the rules and the clock, attestations by owners and admins only, isolated per tenant."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database
from dpa_service.core.identity import Principal, Role
from dpa_service.obligations import ledger
from dpa_service.obligations.ledger_rules import add_months
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated
from tests.obligations.ledger_support import CODES, by_code, ledger_for

EXTRA = {
    "code": "security_contact",
    "title": "Keep a security contact for the Processor",
    "clause": "9.2",
    "summary": "Name a security contact the Processor can reach at any time about incidents.",
    "deadline": {"rule": "continuous"},
}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _ledger(api: Api, **params: Any) -> dict[str, dict[str, Any]]:
    response = await api.get("/obligations", **params)
    assert response.status_code == 200, response.text
    return by_code(response.json()["items"])


async def test_executing_dpas_makes_the_ledger_and_a_new_version_adds_its_obligation_keeping_history(
    admin: Api, db: Database
) -> None:
    await approve_standard_dpa(db)
    owner, legal, reviewer = await admin.new_tenant(), await admin.new_staff("legal"), await admin.new_staff("legal")
    assert (await owner.get("/obligations")).json() == {"items": [], "next_cursor": None}

    first = await to_status(owner, legal, "executed")
    rows = await _ledger(owner)
    assert list(rows) == CODES
    year = add_months(_at(first["executed_at"]), 12)
    assert {code: (item["status"], item["due_at"] and _at(item["due_at"])) for code, item in rows.items()} == {
        "breach_notice_72h": ("open", None),
        "answer_inquiries": ("open", None),
        "records_of_processing": ("open", year),
        "transfer_prior_notice": ("open", None),  # the DPA's own transfers need no notice
        "personnel_awareness": ("open", year),
        "delete_end_user_data": ("not_applicable", None),
    }
    assert {(i["agreement_id"], i["tenant_id"]) for i in rows.values()} == {(first["id"], owner.tenant_id)}
    assert [i["clause"] for i in rows.values()] == ["9.2", "9.3", "9.4", "9.5", "9.6", "9.7"]
    attested = await owner.post("/obligations/records_of_processing/attestations", {"statement": "We keep them."})
    assert attested.status_code == 201, attested.text
    assert (await _ledger(owner))["records_of_processing"]["status"] == "met"

    # Legal writes a version with one more obligation; another legal user approves it.
    current = (await legal.get(f"/templates/{first['template_id']}")).json()
    body = {"key": "standard-dpa", "title": current["title"], "source": current["source"],
            "obligations": [*current["obligations"], EXTRA]}  # fmt: skip
    draft = await legal.post("/templates", body)
    assert draft.status_code == 201, draft.text
    assert draft.json()["obligations"][-1] == EXTRA
    assert (await legal.post(f"/templates/{draft.json()['id']}/submit")).status_code == 200
    assert (await reviewer.post(f"/templates/{draft.json()['id']}/approve")).status_code == 200

    second = await to_status(owner, legal, "executed")
    assert second["template_id"] == draft.json()["id"]
    rows = await _ledger(owner)
    assert list(rows) == [*CODES, "security_contact"]
    assert {item["agreement_id"] for item in rows.values()} == {second["id"]}
    assert rows["security_contact"]["status"] == "open" and rows["security_contact"]["due_at"] is None
    # The attestation is of the tenant and the code: the newer DPA's row counts it, and the annual clock runs on
    # from the first DPA (no reset by signing again).
    assert rows["records_of_processing"]["status"] == "met"
    assert _at(rows["personnel_awareness"]["due_at"]) == year

    history = await _ledger(owner, agreement_id=first["id"])
    assert list(history) == CODES
    assert {(i["status"], i["superseded_by"], i["ended_at"]) for i in history.values()} == {
        ("not_applicable", second["id"], second["executed_at"])
    }
    assert history["records_of_processing"]["last_attested_at"] == attested.json()["attested_at"]
    instantiated = [e for e in await owner.all("/audit-events") if e["action"] == "obligations.instantiated"]
    assert [e["target_id"] for e in instantiated] == [first["id"], second["id"]]

    everyone = (await legal.get("/obligations", limit=200)).json()["items"]
    assert {i["code"] for i in everyone if i["tenant_id"] == owner.tenant_id} == {*CODES, "security_contact"}
    assert len((await legal.get("/obligations", tenant_id=owner.tenant_id)).json()["items"]) == 7


async def test_bad_obligation_entries_in_a_new_template_version_are_422_naming_the_field(admin: Api) -> None:
    legal = await admin.new_staff("legal")
    entry = {"code": "keep_logs", "title": "Keep logs", "clause": "9.9", "summary": "Keep access logs.",
             "deadline": {"rule": "continuous", "every_months": 6}}  # fmt: skip
    cases = [
        ([{**entry, "deadline": {"rule": "whenever"}}], "obligations.0.deadline.rule"),
        ([{**entry, "deadline": {"rule": "within_hours_of_awareness"}}], "obligations.0.deadline.hours"),
        ([{**entry, "deadline": {"rule": "continuous", "days": 30}}], "obligations.0.deadline.days"),
        ([{**entry, "code": "Keep Logs"}], "obligations.0.code"),
        ([{**entry, "title": ""}], "obligations.0.title"),
        ([entry, entry], "obligations.1.code"),
    ]
    body = {"key": "obligation-check", "title": "Check", "source": "<p>{{ controller.legal_name }}</p>"}
    for obligations, field in cases:
        response = await legal.post("/templates", {**body, "obligations": obligations})
        assert response.status_code == 422, (field, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (field, response.json())
    assert (await legal.get("/templates", key="obligation-check")).json()["items"] == []
    made = await legal.post("/templates", {**body, "obligations": [entry]})
    assert made.status_code == 201 and made.json()["obligations"] == [entry]


async def test_owners_and_admins_attest_members_and_legal_cannot(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    await ledger_for(db, owner)
    member, tenant_admin, legal = (
        await owner.new_user("member"),
        await owner.new_user("admin"),
        await admin.new_staff("legal"),
    )
    body = {"statement": "  Our records cover the chat service.  ", "evidence": "ROPA-2026", "period": "2026"}
    path = "/obligations/records_of_processing/attestations"
    assert (await member.post(path, body)).status_code == 403
    assert (await legal.post(path, body)).status_code == 403
    by_admin = await tenant_admin.post(path, body)
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["statement"] == "Our records cover the chat service."
    assert by_admin.json()["attested_by"] == tenant_admin.user_id and by_admin.json()["code"] == "records_of_processing"
    once = await owner.post(path, body, headers={"Idempotency-Key": "attest-1"})
    again = await owner.post(path, body, headers={"Idempotency-Key": "attest-1"})
    assert once.status_code == again.status_code == 201 and once.json()["id"] == again.json()["id"]
    assert (await owner.post("/obligations/no_such_thing/attestations", body)).status_code == 404

    history = (await member.get(path)).json()["items"]
    assert [a["id"] for a in history] == [by_admin.json()["id"], once.json()["id"]]
    assert [a["id"] for a in (await legal.get(path, tenant_id=owner.tenant_id)).json()["items"]] == [
        a["id"] for a in history
    ]
    audited = [e for e in await owner.all("/audit-events") if e["action"] == "obligation.attested"]
    assert len(audited) == 2 and audited[0]["data"]["code"] == "records_of_processing"
    assert (await admin.get("/obligations")).status_code == 403
    assert (await (await admin.new_staff("sales")).get("/obligations")).status_code == 403


async def test_bad_attestations_and_filters_are_422_naming_the_field(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    await ledger_for(db, owner)
    records, personnel = (
        "/obligations/records_of_processing/attestations",
        "/obligations/personnel_awareness/attestations",
    )
    cases = [
        (records, {"statement": "   "}, "statement"),
        (records, {"statement": "x" * 5001}, "statement"),
        (records, {"statement": "ok", "evidence": "e" * 2001}, "evidence"),
        (records, {"statement": "ok", "period": "<script>"}, "period"),
        (records, {"statement": "ok", "personnel_count": 3}, "personnel_count"),
        (personnel, {"statement": "Everyone was briefed."}, "personnel_count"),
        (personnel, {"statement": "Everyone was briefed.", "personnel_count": 0}, "personnel_count"),
        (personnel, {"statement": "Everyone was briefed.", "personnel_count": True}, "personnel_count"),
        (personnel, {"statement": "Everyone was briefed.", "personnel_count": "7"}, "personnel_count"),
        (personnel, {"statement": "Everyone was briefed.", "personnel_count": 7.0}, "personnel_count"),
        (personnel, {"statement": "ok", "personnel_count": 2, "signed_by": "me"}, "signed_by"),
    ]
    for path, body, field in cases:
        response = await owner.post(path, body)
        assert response.status_code == 422, (body, response.text)
        assert field in {e["field"] for e in response.json()["errors"]}, (body, response.json())
    for path in (records, personnel):
        assert (await owner.get(path)).json()["items"] == []
    bad_status = await owner.get("/obligations", status="late")
    assert bad_status.status_code == 422 and bad_status.json()["errors"][0]["field"] == "status"


async def test_attesting_what_events_keep_is_409_saying_what_keeps_it(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    await ledger_for(db, owner)
    kept_by = {
        "breach_notice_72h": ("breach notice", "/app/breach-notices"),
        "answer_inquiries": ("answering each of the processor's inquiries", "/app/inquiries"),
        "transfer_prior_notice": ("transfer notice naming the destination, the recipient", "/app/transfers/notices"),
    }
    for code, (how, where) in kept_by.items():
        path = f"/obligations/{code}/attestations"
        refused = await owner.post(path, {"statement": "We keep it."})
        assert refused.status_code == 409, refused.text
        assert how in refused.json()["detail"] and where in refused.json()["detail"], refused.json()
        assert (await owner.get(path)).json()["items"] == []
    assert {row["code"]: row["last_attested_at"] for row in (await _ledger(owner)).values()} == dict.fromkeys(CODES)


async def test_obligations_and_attestations_are_isolated(admin: Api, db: Database) -> None:
    tenant_a, tenant_b = await admin.new_tenant(), await admin.new_tenant()
    agreement = await ledger_for(db, tenant_a)
    path = "/obligations/records_of_processing/attestations"
    attestation = await tenant_a.post(path, {"statement": "We keep records."})
    row = (await _ledger(tenant_a))["records_of_processing"]
    lists = [
        "/obligations",
        f"/obligations?tenant_id={tenant_a.tenant_id}",
        f"/obligations?agreement_id={agreement['id']}",
    ]
    await assert_isolated(
        tenant_a,
        tenant_b,
        [
            Probe(
                "A's ledger row",
                row["id"],
                direct=[("GET", path, None), ("POST", path, {"statement": "x"})],
                lists=lists,
            ),
            Probe("A's attestation", attestation.json()["id"], lists=lists),
        ],
    )
    assert (await tenant_b.get("/obligations", tenant_id=tenant_a.tenant_id)).json()["items"] == []


async def test_legal_sees_who_is_overdue_on_what_filtered_and_paged(
    admin: Api, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_time, behind = await admin.new_tenant(), await admin.new_tenant()
    await ledger_for(db, on_time)
    await ledger_for(db, behind, executed_at=utcnow() - timedelta(days=400))
    legal = await admin.new_staff("legal")
    first = (await legal.get("/obligations", status="overdue", limit=1)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    rest = (await legal.get("/obligations", status="overdue", limit=1, cursor=first["next_cursor"])).json()
    overdue = first["items"] + rest["items"]
    assert {(i["tenant_id"], i["code"]) for i in overdue} == {
        (behind.tenant_id, "records_of_processing"),
        (behind.tenant_id, "personnel_awareness"),
    }
    assert rest["next_cursor"] is None
    narrowed = (await legal.get("/obligations", status="overdue", code="personnel_awareness")).json()["items"]
    assert [i["tenant_id"] for i in narrowed] == [behind.tenant_id]
    assert (await on_time.get("/obligations", status="overdue")).json()["items"] == []
    not_applicable = (await legal.get("/obligations", status="not_applicable")).json()["items"]
    assert {(i["tenant_id"], i["code"]) for i in not_applicable} == {
        (on_time.tenant_id, "delete_end_user_data"),
        (behind.tenant_id, "delete_end_user_data"),
    }
    # No N+1: every tenant's ledger costs the statements one tenant's does (one per table).
    staff = Principal(uuid.uuid4(), None, Role.LEGAL, "legal@processor.example", "Legal", None)
    one = await _statements(db, ledger.list_obligations(db, staff, tenant_id=uuid.UUID(behind.tenant_id or "")))
    assert await _statements(db, ledger.list_obligations(db, staff)) == one <= 10

    # A status filter reads a few rounds of rows per request, not all of them: a page may come back short, even
    # empty, with the cursor at the last row read, and following the cursors finds every match once.
    monkeypatch.setattr(ledger, "_SCAN", 3)
    monkeypatch.setattr(ledger, "_ROUNDS", 2)  # six rows a request: the on-time tenant's ledger, then the other's
    pages: list[list[str]] = []
    cursor: dict[str, str] = {}
    while True:
        page = (await legal.get("/obligations", status="overdue", limit=1, **cursor)).json()
        pages.append([i["code"] for i in page["items"]])
        if not page["next_cursor"]:
            break
        cursor = {"cursor": page["next_cursor"]}
    assert pages == [[], ["records_of_processing"], ["personnel_awareness"]]


async def _statements(db: Database, work: Awaitable[Any]) -> int:
    counted: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        counted.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await work
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    return len(counted)


async def test_personnel_awareness_is_attested_yearly_with_the_count_briefed(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    start = utcnow()
    await ledger_for(db, owner, executed_at=start)
    due = add_months(start, 12)
    assert _at((await _ledger(owner))["personnel_awareness"]["due_at"]) == due
    path = "/obligations/personnel_awareness/attestations"
    with travel_to(due + timedelta(days=1)):
        late = await _ledger(owner)
        assert late["personnel_awareness"]["status"] == "overdue" and _at(late["personnel_awareness"]["due_at"]) == due
        assert late["records_of_processing"]["status"] == "overdue"
        made = await owner.post(path, {"statement": "Briefed everyone using the chat.", "personnel_count": 12})
        assert made.status_code == 201, made.text
        assert made.json()["period"] == str(utcnow().year) and made.json()["personnel_count"] == 12
        kept = (await _ledger(owner))["personnel_awareness"]
        assert kept["status"] == "met" and _at(kept["due_at"]) == add_months(_at(made.json()["attested_at"]), 12)
    with travel_to(add_months(_at(made.json()["attested_at"]), 12) + timedelta(minutes=1)):
        assert (await _ledger(owner))["personnel_awareness"]["status"] == "overdue"


async def test_transfers_outside_the_eea_need_a_notice_before_they_start(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    await ledger_for(db, owner, executed_at=utcnow() - timedelta(days=10))
    today = utcnow().date()

    async def transfer(importer: str, country: str, start: date, kind: str = "other") -> str:
        body = {"importer": importer, "importer_kind": kind, "destination_country": country, "mechanism": "scc-2021",
                "data_categories": ["chat transcripts"], "start_date": start.isoformat()}  # fmt: skip
        response = await owner.post("/transfers", body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    notice = {"destination_country": "IN", "recipient": "Support Ltd", "purpose": "customer support",
              "mechanism": "scc-2021", "planned_date": today.isoformat()}  # fmt: skip
    assert (await owner.post("/transfer-notices", notice)).status_code == 201
    await transfer("SUPPORT  ltd", "IN", today)  # the recipient named, case and spacing aside
    await transfer("Hosting SAS", "FR", today - timedelta(days=1))  # inside the EEA: no notice needed
    await transfer("The processor", "US", today - timedelta(days=1), kind="processor")  # the DPA covers it
    kept = (await _ledger(owner))["transfer_prior_notice"]
    assert kept["status"] == "met", kept

    # Clause 9.5: the notice names the recipient too, so one for Support Ltd in India covers no one else there.
    started = today - timedelta(days=2)
    unnoticed = await transfer("Analytics Inc.", "IN", started)
    missed = (await _ledger(owner))["transfer_prior_notice"]
    assert missed["status"] == "overdue" and missed["transfers_without_notice"] == [unnoticed]
    assert f"Not met for the transfer to Analytics Inc. (India) from {started}" in missed["detail"]
    assert "Support" not in missed["detail"]
