"""Re-papering campaigns through the API, on both databases (issue 13, Must show 2, 4 and the campaign half of 5).

When the EU-US Privacy Shield fell (CJEU, judgment of 16 July 2020, Case C-311/18 "Schrems II", as the mechanism
catalogue registry/transfer_mechanisms.yaml cites it), every DPA relying on it had to move to another mechanism,
e.g. the 2021 SCCs (Commission Implementing Decision (EU) 2021/914). Legal starts a campaign; every tenant whose
executed DPA relies on it gets one pre-filled draft and one notice; tenants sign, decline or let it run late.

Thousands of executed DPAs are clones of one executed through the real flow (tests/helpers/bulk.py).
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from dpa_service.agreements.models import Agreement
from dpa_service.audit.models import AuditEvent
from dpa_service.campaigns.models import CampaignAgreement
from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.notifications.models import MailDelivery
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.notifications.worker import fan_out
from tests.helpers.agreements import (
    approve_standard_dpa,
    new_agreement,
    ok,
    request_own_signature,
    request_variables,
    sign,
)
from tests.helpers.api import Api
from tests.helpers.bulk import clone_executed, new_tenants
from tests.helpers.isolation import Probe, assert_isolated

PS = "eu-us-privacy-shield"
SCC = "scc-2021"
REASON = "The EU-US Privacy Shield was invalidated by the CJEU on 16 July 2020 (C-311/18): move to the 2021 SCCs."
TOPIC = "campaign.draft_created"


def due(days: int = 60) -> str:
    return (utcnow().date() + timedelta(days=days)).isoformat()


def on(*mechanisms: str) -> dict[str, Any]:
    return {**request_variables(), "transfers": {"mechanisms": list(mechanisms)}}


# A DPA may rely on the Privacy Shield only if it was made while the Shield stood (2016-08-01 to 2020-07-16, CJEU
# C-311/18): such DPAs are made and executed on this day, with the injectable clock.
WHILE_THE_SHIELD_STOOD = datetime(2019, 6, 3, 9, 0, tzinfo=UTC)


async def executed(owner: Api, legal: Api, variables: dict[str, Any], **body: Any) -> dict[str, Any]:
    """A DPA executed the way users do it: requested, submitted, signed by the owner, countersigned (in 2019 when it
    relies on the Privacy Shield)."""
    if PS not in variables["transfers"]["mechanisms"]:
        return await _executed(owner, legal, variables, **body)
    with travel_to(WHILE_THE_SHIELD_STOOD):
        return await _executed(owner, legal, variables, **body)


async def _executed(owner: Api, legal: Api, variables: dict[str, Any], **body: Any) -> dict[str, Any]:
    agreement = await new_agreement(owner, variables=variables, **body)
    await ok(owner.post(f"/agreements/{agreement['id']}/submit"))
    await sign(owner, await request_own_signature(owner, agreement["id"]))
    return await ok(legal.post(f"/agreements/{agreement['id']}/countersign"))


async def start(legal: Api, **body: Any) -> dict[str, Any]:
    response = await legal.post(
        "/campaigns",
        {"replace_mechanism": PS, "replacement_mechanism": SCC, "reason": REASON, "due_on": due(), **body},
    )
    assert response.status_code == 201, response.text
    return response.json()


async def campaign_draft(owner: Api, campaign_id: str) -> dict[str, Any]:
    drafts = [a for a in (await owner.get("/agreements", status="draft")).json()["items"]]
    assert len(drafts) == 1, drafts
    return drafts[0]


async def _per_tenant(db: Database, query: Any) -> dict[uuid.UUID, int]:
    async with db.transaction(Scope.system(), write=False) as session:
        return dict((await session.execute(query)).all())


# The crowd the campaign reaches besides the three tenants the test follows: enough for several pages of every list
# (50 a page) and batched statements (bench/campaign.py measures 10,000); 2,000 cost CI over three minutes a
# database, 500 over a minute each on the 2-core CI machine.
CROWD = 247
REACHED = CROWD + 3


@pytest.fixture
async def legal(admin: Api, db: Database) -> Api:
    await approve_standard_dpa(db)
    return await admin.new_staff("legal")


async def test_a_campaign_over_250_tenants_on_privacy_shield_makes_one_draft_and_notice_each_and_counts_exactly(
    admin: Api, legal: Api, db: Database
) -> None:
    signer, reviewed, decliner, leaving = [await admin.new_tenant() for _ in range(4)]
    first = await executed(signer, legal, on(PS))
    actors = [uuid.UUID(t.tenant_id or "") for t in (reviewed, decliner, leaving)]
    [reviewed_old] = await clone_executed(
        db, first["id"], actors[:1], variables={**first["variables"], "transfers": {"mechanisms": ["adequacy", PS]}},
        custom_clauses=[{"title": "Audit window", "text": "30 days' notice."}],
    )  # fmt: skip
    [decliner_old, _] = await clone_executed(db, first["id"], actors[1:], variables=on(PS, SCC))
    crowd = await new_tenants(db, CROWD)
    await clone_executed(db, first["id"], crowd)
    elsewhere = await new_tenants(db, 5, prefix="Elsewhere")
    await clone_executed(db, first["id"], elsewhere, variables=on(SCC))  # not on Privacy Shield: not reached
    ends_on = (utcnow().date() + timedelta(days=90)).isoformat()
    exit_ = await leaving.post("/tenant/termination", {"ends_on": ends_on, "reason": "Switching"})
    assert exit_.status_code == 201, exit_.text
    on_ps = [uuid.UUID(signer.tenant_id or ""), *actors[:2], *crowd]  # CROWD + 3 reached; `leaving` is in exit

    preview = await ok(legal.post("/campaigns/preview", {"replace_mechanism": PS, "replacement_mechanism": SCC,
                                                         "reason": REASON, "due_on": due()}))  # fmt: skip
    assert preview["count"] == REACHED and len(preview["tenants"]) == 50
    campaign = await start(legal)
    assert (campaign["total"], campaign["created"]) == (REACHED, REACHED)
    assert campaign["skipped"] == [{"tenant_id": leaving.tenant_id, "reason": campaign["skipped"][0]["reason"]}]
    assert "exit" in campaign["skipped"][0]["reason"] and ends_on in campaign["skipped"][0]["reason"]

    drafts = await _per_tenant(db, select(Agreement.tenant_id, func.count()).where(Agreement.status == "draft")
                               .group_by(Agreement.tenant_id))  # fmt: skip
    notices = await _per_tenant(db, select(OutboxMessage.tenant_id, func.count()).where(OutboxMessage.topic == TOPIC)
                                .group_by(OutboxMessage.tenant_id))  # fmt: skip
    created = await _per_tenant(db, select(AuditEvent.tenant_id, func.count())
                                .where(AuditEvent.action == "agreement.created", AuditEvent.data["campaign_id"]
                                       .as_string() == campaign["id"]).group_by(AuditEvent.tenant_id))  # fmt: skip
    assert drafts == notices == created == dict.fromkeys(on_ps, 1), "one draft, one notice, one audit event each"
    chain = await ok(legal.get("/audit-events/verify", tenant_id=str(crowd[CROWD // 2])))
    assert chain["ok"] and chain["events"] == 1

    # Running it again, or starting the same campaign again, creates nothing.
    again = await ok(legal.post(f"/campaigns/{campaign['id']}/run"))
    assert (again["total"], again["created"]) == (REACHED, 0)
    twin = await legal.post("/campaigns", {"replace_mechanism": PS, "replacement_mechanism": SCC, "reason": "Again",
                                           "due_on": due(30)})  # fmt: skip
    assert twin.status_code == 409 and campaign["id"] in twin.json()["detail"]
    assert await _per_tenant(db, select(OutboxMessage.tenant_id, func.count()).where(OutboxMessage.topic == TOPIC)
                             .group_by(OutboxMessage.tenant_id)) == notices  # fmt: skip
    assert len((await legal.get("/campaigns")).json()["items"]) == 1

    # The drafts: variables carried, Privacy Shield replaced in its place, no code twice, custom clauses carried.
    mine = await campaign_draft(signer, campaign["id"])
    assert mine["variables"]["transfers"]["mechanisms"] == [SCC]
    assert {k: v for k, v in mine["variables"].items() if k != "transfers"} == {
        k: v for k, v in first["variables"].items() if k != "transfers"
    }
    theirs = await campaign_draft(decliner, campaign["id"])
    assert theirs["variables"]["transfers"]["mechanisms"] == [SCC]
    review = await campaign_draft(reviewed, campaign["id"])
    assert review["variables"]["transfers"]["mechanisms"] == ["adequacy", SCC]  # in the Shield's place
    assert review["custom_clauses"] == [{"title": "Audit window", "text": "30 days' notice."}]

    # Sales hold the old DPAs on contracts. The signer's relies on the Privacy Shield alone: outdated, and the gate
    # says why. The decliner's also selected the 2021 SCCs, which carry its transfers (Clause 12.2): still current.
    sales = await admin.new_staff("sales")
    contracts = {}
    for owner, old in ((signer, first["id"]),):
        body = {"tenant_id": owner.tenant_id, "reference": f"CRM-{old[:8]}", "title": "Enterprise plan"}
        contract = await ok_created(sales.post("/contracts", body))
        held = await ok(sales.post(f"/contracts/{contract['id']}/agreements", {"agreement_id": old}))
        assert held["dpa_status"] == "outdated" and "Privacy Shield" in held["dpa_detail"], held
        contracts[owner.tenant_id] = contract["id"]
    body = {"tenant_id": decliner.tenant_id, "reference": "CRM-decliner", "title": "Enterprise plan"}
    covered = await ok_created(sales.post("/contracts", body))
    covered = await ok(sales.post(f"/contracts/{covered['id']}/agreements", {"agreement_id": str(decliner_old)}))
    assert covered["dpa_status"] == "executed", covered

    # The signer signs; the tenant with custom clauses goes through legal's review first; one declines.
    await ok(signer.post(f"/agreements/{mine['id']}/submit"))
    await sign(signer, await request_own_signature(signer, mine["id"]))
    assert (await ok(reviewed.post(f"/agreements/{review['id']}/submit")))["status"] == "in_legal_review"
    await ok(legal.post(f"/agreements/{review['id']}/review", {"decision": "approve", "comment": ""}))
    await sign(reviewed, await request_own_signature(reviewed, review["id"]))
    declined = await ok(decliner.post(f"/agreements/{theirs['id']}/decline", {"reason": "We stopped US transfers."}))
    assert declined["status"] == "voided" and declined["void_reason"] == "We stopped US transfers."
    signed_only = await ok(legal.get(f"/campaigns/{campaign['id']}"))
    assert {k: signed_only[k] for k in ("total", "notified", "signed", "executed", "declined", "overdue")} == {
        "total": REACHED, "notified": REACHED, "signed": 2, "executed": 0, "declined": 1, "overdue": 0,
    }  # fmt: skip
    for agreement in (mine, review):
        await ok(legal.post(f"/agreements/{agreement['id']}/countersign"))

    progress = await ok(legal.get(f"/campaigns/{campaign['id']}"))
    counts = {k: progress[k] for k in ("total", "notified", "signed", "executed", "declined", "overdue", "pending")}
    assert counts == {"total": REACHED, "notified": REACHED, "signed": 2, "executed": 2, "declined": 1, "overdue": 0,
                      "pending": CROWD}  # fmt: skip
    with travel_to(datetime.combine(date.fromisoformat(progress["due_on"]) + timedelta(days=1), datetime.min.time(),
                                    UTC)):  # fmt: skip
        late = await ok(legal.get(f"/campaigns/{campaign['id']}"))
    assert late["overdue"] == CROWD, "neither executed nor declined after the due date"

    # The signer's contract now holds the new DPA too (attached when it superseded the old one): executed again.
    followed = await ok(sales.get(f"/contracts/{contracts[signer.tenant_id]}"))
    assert (followed["dpa_status"], followed["agreements"]) == ("executed", [first["id"], mine["id"]]), followed
    won = await sales.post(f"/contracts/{contracts[signer.tenant_id]}/close", {"outcome": "won"})
    assert won.status_code == 200, won.text

    # Executing the new DPA superseded the old one, as usual.
    for old, new, owner in ((first["id"], mine["id"], signer), (str(reviewed_old), review["id"], reviewed)):
        before = await ok(owner.get(f"/agreements/{old}"))
        assert (before["status"], before["superseded_by"]) == ("superseded", new)
    assert (await ok(decliner.get(f"/agreements/{decliner_old}")))["status"] == "executed"

    # Legal's drill-down: every agreement with its tenant and status, the decline with its reason.
    rows = await legal.all(f"/campaigns/{campaign['id']}/agreements")
    assert len(rows) == REACHED and len({r["tenant_id"] for r in rows}) == REACHED
    by_tenant = {r["tenant_id"]: r for r in rows}
    assert by_tenant[decliner.tenant_id]["decline_reason"] == "We stopped US transfers."
    assert by_tenant[signer.tenant_id]["status"] == "executed" and by_tenant[signer.tenant_id]["tenant_name"]
    assert by_tenant[signer.tenant_id]["previous_agreement_id"] == first["id"]


async def test_the_notice_is_one_email_to_the_owners_and_the_dpas_contact_with_the_reason_and_due_date(
    admin: Api, legal: Api, db: Database
) -> None:
    owner = await admin.new_tenant()
    first = await executed(owner, legal, on(PS))
    campaign = await start(legal)
    await fan_out(db)
    async with db.transaction(Scope.system(), write=False) as session:
        mails = (
            (
                await session.execute(
                    select(MailDelivery).where(
                        MailDelivery.tenant_id == uuid.UUID(owner.tenant_id or ""),
                        MailDelivery.subject.contains("new Data Processing"),
                    )
                )
            )
            .scalars()
            .all()
        )
    me = (await owner.get("/me")).json()
    assert sorted(m.recipient for m in mails) == sorted(
        {me["email"], first["variables"]["controller"]["contact_email"]}
    )
    draft = await campaign_draft(owner, campaign["id"])
    assert due() in mails[0].subject and REASON in mails[0].body
    assert f"/app/agreements/{draft['id']}" in mails[0].body


async def test_overlapping_campaigns_never_give_a_tenant_two_open_drafts(admin: Api, legal: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    first = await executed(owner, legal, on(PS, "adequacy"))
    others = await new_tenants(db, 2)
    await clone_executed(db, first["id"], others)
    one = await start(legal)
    assert one["total"] == 3
    two = await start(legal, replace_mechanism="adequacy", replacement_mechanism="bcr")
    assert (two["total"], two["created"]) == (0, 0)
    assert {s["tenant_id"] for s in two["skipped"]} == {owner.tenant_id, *map(str, others)}
    assert {s["reason"] for s in two["skipped"]} == {"has an open draft from another campaign"}

    draft = await campaign_draft(owner, one["id"])
    await ok(owner.post(f"/agreements/{draft['id']}/decline", {"reason": "Not now."}))
    rerun = await ok(legal.post(f"/campaigns/{two['id']}/run"))
    assert (rerun["total"], rerun["created"]) == (1, 1), "once its draft is declined the other campaign reaches it"
    again = await ok(legal.post(f"/campaigns/{one['id']}/run"))
    assert again["created"] == 0, "a tenant that declined is not asked again by the same campaign"
    [moved] = [a for a in (await owner.get("/agreements", status="draft")).json()["items"]]
    # The Shield is not carried: a DPA made today may not offer it (and this campaign does not replace it).
    assert moved["variables"]["transfers"]["mechanisms"] == ["bcr"]


async def test_a_template_campaign_moves_tenants_on_older_versions_of_the_key_to_the_approved_one(
    admin: Api, legal: Api, db: Database
) -> None:
    reviewer = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    first = await executed(owner, legal, on(SCC))
    versions = await new_versions(legal, reviewer, count=3)
    older, newer = await new_tenants(db, 3), await new_tenants(db, 1)
    await clone_executed(
        db,
        first["id"],
        older,
        template_id=uuid.UUID(versions[0]["id"]),
        template_key=versions[0]["key"],
        template_version=1,
    )
    await clone_executed(
        db,
        first["id"],
        newer,
        template_id=uuid.UUID(versions[1]["id"]),
        template_key=versions[0]["key"],
        template_version=2,
    )

    refused = await legal.post("/campaigns", {"template_id": versions[2]["id"], "reason": "v3", "due_on": due()})
    assert refused.status_code == 422 and [e["field"] for e in refused.json()["errors"]] == ["template_id"]
    campaign = await ok_created(
        legal.post("/campaigns", {"template_id": versions[1]["id"], "reason": "v2", "due_on": due()})
    )
    assert (campaign["total"], campaign["created"]) == (3, 3)
    rows = await legal.all(f"/campaigns/{campaign['id']}/agreements")
    assert {r["tenant_id"] for r in rows} == set(map(str, older))
    async with db.transaction(Scope.system(), write=False) as session:
        made = (
            await session.execute(
                select(Agreement.template_id, Agreement.variables).where(
                    Agreement.id.in_([uuid.UUID(r["agreement_id"]) for r in rows])
                )
            )
        ).all()
    assert {str(t) for t, _ in made} == {versions[1]["id"]} and all(v == first["variables"] for _, v in made)


async def ok_created(awaitable: Any) -> dict[str, Any]:
    response = await awaitable
    assert response.status_code == 201, response.text
    return response.json()


async def new_versions(author: Api, reviewer: Api, *, count: int) -> list[dict[str, Any]]:
    """Versions 1..count of a new template key, all approved but the last (a draft)."""
    key = f"test-dpa-{secrets.token_hex(3)}"
    body = {"key": key, "title": "Test DPA", "source": "<h1>DPA for {{ variables.controller.legal_name }}</h1>",
            "sample_variables": {"controller": {"legal_name": "Sample GmbH"}}}  # fmt: skip
    made = []
    for number in range(1, count + 1):
        version = await ok_created(author.post("/templates", body))
        if number < count:
            await ok(author.post(f"/templates/{version['id']}/submit"))
            version = await ok(reviewer.post(f"/templates/{version['id']}/approve"))
        made.append(version)
    return made


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"replace_mechanism": None, "replacement_mechanism": None}, "template_id"),
        ({"replace_mechanism": "no-such-mechanism"}, "replace_mechanism"),
        ({"replacement_mechanism": "swiss-us-privacy-shield"}, "replacement_mechanism"),
        ({"replacement_mechanism": "derogation-art49"}, "replacement_mechanism"),  # never a DPA mechanism
        ({"replacement_mechanism": "scc-2010"}, "replacement_mechanism"),  # closed to new contracts from 2021-09-27
        ({"replacement_mechanism": PS}, "replacement_mechanism"),
        ({"replacement_mechanism": None}, "replacement_mechanism"),
        ({"replacement_mechanism": "nope"}, "replacement_mechanism"),
        ({"due_on": "2020-07-16"}, "due_on"),
        ({"template_id": str(uuid.uuid4())}, "template_id"),
        ({"reason": "bad\u0000reason"}, "reason"),
        ({"reason": ""}, "reason"),
        ({"unknown": 1}, "unknown"),
    ],
)
async def test_bad_terms_are_422_naming_the_field_and_start_nothing(
    admin: Api, legal: Api, db: Database, body: dict[str, Any], field: str
) -> None:
    sent = {"replace_mechanism": PS, "replacement_mechanism": SCC, "reason": REASON, "due_on": due(), **body}
    sent = {k: v for k, v in sent.items() if v is not None}
    response = await legal.post("/campaigns", sent)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert (await legal.get("/campaigns")).json()["items"] == []
    async with db.transaction(Scope.system(), write=False) as session:
        assert await session.scalar(select(func.count()).select_from(CampaignAgreement)) == 0


async def test_subscribers_and_sales_cannot_start_or_read_campaigns(admin: Api, legal: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    await executed(owner, legal, on(PS))
    campaign = await start(legal)
    sales = await admin.new_staff("sales")
    body = {"replace_mechanism": PS, "replacement_mechanism": SCC, "reason": REASON, "due_on": due()}
    for caller in (owner, sales, await owner.new_user("admin")):
        assert (await caller.post("/campaigns", body)).status_code == 403
        assert (await caller.post("/campaigns/preview", body)).status_code == 403
        assert (await caller.get("/campaigns")).status_code == 403
        assert (await caller.get(f"/campaigns/{campaign['id']}")).status_code == 403
        assert (await caller.get(f"/campaigns/{campaign['id']}/agreements")).status_code == 403
        assert (await caller.post(f"/campaigns/{campaign['id']}/run")).status_code == 403
    assert (await legal.get(f"/campaigns/{uuid.uuid4()}")).status_code == 404


async def test_only_an_owner_or_admin_declines_and_only_a_campaign_draft_not_yet_signed(
    admin: Api, legal: Api, db: Database
) -> None:
    owner = await admin.new_tenant()
    await executed(owner, legal, on(PS))
    campaign = await start(legal)
    draft = await campaign_draft(owner, campaign["id"])
    member = await owner.new_user("member")
    assert (await member.post(f"/agreements/{draft['id']}/decline", {"reason": "no"})).status_code == 403
    assert (await legal.post(f"/agreements/{draft['id']}/decline", {"reason": "no"})).status_code == 403
    missing = await owner.post(f"/agreements/{draft['id']}/decline", {})
    assert missing.status_code == 422 and [e["field"] for e in missing.json()["errors"]] == ["reason"]

    intruder = await admin.new_tenant()
    await assert_isolated(owner, intruder, [
        Probe("campaign draft", draft["id"], direct=[("GET", f"/agreements/{draft['id']}", None),
                                                      ("POST", f"/agreements/{draft['id']}/decline", {"reason": "x"})],
              lists=["/agreements"]),
    ])  # fmt: skip

    own = await new_agreement(owner)  # a draft of its own, not a campaign's
    plain = await owner.post(f"/agreements/{own['id']}/decline", {"reason": "no"})
    assert plain.status_code == 409 and "void" in plain.json()["detail"]

    await ok(owner.post(f"/agreements/{draft['id']}/submit"))
    await sign(owner, await request_own_signature(owner, draft["id"]))
    late = await owner.post(f"/agreements/{draft['id']}/decline", {"reason": "changed our mind"})
    assert late.status_code == 409
    assert (await ok(owner.get(f"/agreements/{draft['id']}")))["status"] == "signed", "nothing changed"
    assert (await ok(legal.get(f"/campaigns/{campaign['id']}")))["declined"] == 0


async def test_a_new_draft_carries_no_mechanism_a_dpa_made_today_may_not_offer(
    admin: Api, legal: Api, db: Database
) -> None:
    """A 2019 DPA on the Privacy Shield and the 2010 SCCs: the campaign's draft swaps the Shield for the 2021 SCCs
    and leaves out the 2010 SCCs (closed to new contracts since 2021-09-27), so its Subscriber can submit it."""
    owner = await admin.new_tenant()
    await executed(owner, legal, on(PS, "scc-2010"))
    campaign = await start(legal)
    draft = await campaign_draft(owner, campaign["id"])
    assert draft["variables"]["transfers"]["mechanisms"] == [SCC]
    submitted = await owner.post(f"/agreements/{draft['id']}/submit")
    assert submitted.status_code == 200, submitted.text
