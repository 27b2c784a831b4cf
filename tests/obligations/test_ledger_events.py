"""The ledger follows what the tenant and the processor actually do, through their own endpoints: a late breach
notice (overdue for a year), an unanswered and then an answered inquiry, a termination, the end of the main
agreement and the deletion attested after it. Both databases; the ledger stands on a draft agreement so that no PDF
is sealed (ledger_support)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database
from dpa_service.obligations.ledger_rules import add_months
from tests.helpers.api import Api
from tests.obligations.ledger_support import by_code, ledger_for


async def _row(api: Api, code: str) -> dict[str, Any]:
    response = await api.get("/obligations")
    assert response.status_code == 200, response.text
    return by_code(response.json()["items"])[code]


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _breach(became_aware_at: datetime) -> dict[str, Any]:
    return {
        "became_aware_at": became_aware_at.isoformat().replace("+00:00", "Z"),
        "description": "A chat agent's password was phished.",
        "data_categories": ["chat transcripts"],
        "subjects_estimate": 40,
        "measures": "Password reset, sessions revoked.",
    }


async def test_breach_notices_move_the_72_hour_obligation_to_met_and_a_late_one_to_overdue(
    admin: Api, db: Database
) -> None:
    owner = await admin.new_tenant()
    await ledger_for(db, owner, executed_at=utcnow() - timedelta(days=30))
    assert (await _row(owner, "breach_notice_72h"))["status"] == "open"

    on_time = await owner.post("/breach-notices", _breach(utcnow() - timedelta(hours=5)))
    assert on_time.status_code == 201 and on_time.json()["late"] is False
    assert (await _row(owner, "breach_notice_72h"))["status"] == "met"

    late = await owner.post("/breach-notices", _breach(utcnow() - timedelta(hours=80)))
    assert late.status_code == 201 and late.json()["late"] is True
    reported = _at(late.json()["reported_at"])
    row = await _row(owner, "breach_notice_72h")
    assert row["status"] == "overdue" and f"reported late on {reported.date()}" in row["detail"], row
    legal = await admin.new_staff("legal")
    overdue = (await legal.get("/obligations", status="overdue")).json()["items"]
    assert [(item["tenant_id"], item["code"]) for item in overdue] == [(owner.tenant_id, "breach_notice_72h")]
    # Overdue for twelve months after the late report, then the usual rule again: an earlier notice was on time.
    year = add_months(reported, 12)
    with travel_to(year - timedelta(minutes=1)):
        assert (await _row(owner, "breach_notice_72h"))["status"] == "overdue"
    with travel_to(year + timedelta(minutes=1)):
        row = await _row(owner, "breach_notice_72h")
        assert row["status"] == "met" and f"reported late on {reported.date()}" in row["detail"], row


async def test_an_inquiry_is_open_until_its_due_date_overdue_after_and_met_once_answered(
    admin: Api, db: Database
) -> None:
    owner, prompt, legal = await admin.new_tenant(), await admin.new_tenant(), await admin.new_staff("legal")
    await ledger_for(db, owner)
    await ledger_for(db, prompt)
    asked = await legal.post("/inquiries", {"tenant_ids": [owner.tenant_id, prompt.tenant_id],
                                            "question": "Which agents use SSO?"})  # fmt: skip
    assert asked.status_code == 201, asked.text
    [inquiry] = (await owner.get("/inquiries")).json()["items"]
    due = _at(inquiry["due_at"])
    [theirs] = (await prompt.get("/inquiries")).json()["items"]
    assert (await prompt.post(f"/inquiries/{theirs['id']}/responses", {"answer": "All of them."})).status_code == 201

    row = await _row(owner, "answer_inquiries")
    assert (row["status"], _at(row["due_at"])) == ("open", due)
    with travel_to(due + timedelta(minutes=1)):
        assert (await _row(owner, "answer_inquiries"))["status"] == "overdue"
        assert (await _row(prompt, "answer_inquiries"))["status"] == "met"
        overdue = (await legal.get("/obligations", status="overdue", code="answer_inquiries")).json()["items"]
        assert [(item["tenant_id"], _at(item["due_at"])) for item in overdue] == [(owner.tenant_id, due)]
        answered = await owner.post(f"/inquiries/{inquiry['id']}/responses", {"answer": "All of them, since May."})
        assert answered.status_code == 201, answered.text
        row = await _row(owner, "answer_inquiries")
    assert (row["status"], row.get("due_at")) == ("met", None)


async def test_a_termination_gives_the_deletion_obligation_its_due_date_and_the_attestation_meets_it(
    admin: Api, db: Database
) -> None:
    owner, staying, legal = await admin.new_tenant(), await admin.new_tenant(), await admin.new_staff("legal")
    await ledger_for(db, owner)
    await ledger_for(db, staying)
    assert (await _row(owner, "delete_end_user_data"))["status"] == "not_applicable"
    deletion = "/obligations/delete_end_user_data/attestations"
    early = await owner.post(deletion, {"statement": "Nothing to delete yet."})
    assert early.status_code == 409 and "record the end first" in early.json()["detail"], early.text

    ends_on = utcnow().date() + timedelta(days=3)
    recorded = await owner.post("/tenant/termination", {"ends_on": ends_on.isoformat(), "reason": "Switching"})
    assert recorded.status_code == 201, recorded.text
    due = datetime.combine(ends_on + timedelta(days=30), datetime.max.time(), tzinfo=UTC).replace(microsecond=0)
    row = await _row(owner, "delete_end_user_data")
    assert (row["status"], _at(row["due_at"])) == ("open", due)
    each = (await legal.get("/obligations", code="delete_end_user_data")).json()["items"]
    assert {i["tenant_id"]: (i["status"], i["due_at"] and _at(i["due_at"])) for i in each} == {
        owner.tenant_id: ("open", due),
        staying.tenant_id: ("not_applicable", None),
    }

    # Once the end has passed, the obligations about the processing through the service no longer apply, and
    # attesting them is refused; the deletion (clause 9.7, which clause 14.2 keeps) runs on.
    with travel_to(datetime.combine(ends_on + timedelta(days=1), datetime.min.time(), tzinfo=UTC)):
        rows = by_code((await owner.get("/obligations")).json()["items"])
        for code in ("records_of_processing", "personnel_awareness"):
            assert rows[code]["status"] == "not_applicable", rows[code]
            assert f"the main agreement ended on {ends_on}" in rows[code]["detail"]
        assert rows["delete_end_user_data"]["status"] == "open"
        refused = await owner.post("/obligations/records_of_processing/attestations", {"statement": "Kept."})
        assert refused.status_code == 409 and f"ended on {ends_on}" in refused.json()["detail"], refused.text
        assert (await _row(staying, "records_of_processing"))["status"] == "open"

    with travel_to(due + timedelta(seconds=1)):
        assert (await _row(owner, "delete_end_user_data"))["status"] == "overdue"
        attested = await owner.post(
            deletion, {"statement": "Exports and contact lists deleted; widget removed.", "evidence": "ticket OPS-981"}
        )
        assert attested.status_code == 201, attested.text
        assert (await _row(owner, "delete_end_user_data"))["status"] == "met"
    refused = await owner.post("/agreements", {"template_key": "standard-dpa", "variables": {}})
    assert refused.status_code == 409, refused.text
