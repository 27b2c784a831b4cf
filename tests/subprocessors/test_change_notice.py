"""Publishing a sub-processor change: notice to every tenant with an executed DPA, objections, deemed acceptance.

Each test has a fresh database of its own (tests/conftest.py); the notice checks still compare against what the
database says about *all* tenants, which is what a legal team would ask.
"""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from sqlalchemy import select

from dpa_service.agreements.models import Agreement
from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database, Scope
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from dpa_service.notifications.outbox import OutboxMessage
from dpa_service.notifications.webhooks import verify_signature
from dpa_service.subprocessors.deemed import record_deemed_acceptances
from dpa_service.subprocessors.publishing import PUBLISHED_TOPIC
from tests.helpers.agreements import to_status
from tests.helpers.api import Api
from tests.helpers.receiver import Receiver, drain
from tests.helpers.subprocessors import at, publish, vendor


async def endpoint_for(owner: Api, receiver: Receiver, base: str) -> str:
    path = f"/hooks/{owner.tenant_id}"
    response = await owner.post("/webhook-endpoints", {"url": base + path, "events": [PUBLISHED_TOPIC]})
    assert response.status_code == 201, response.text
    receiver.secrets[path] = response.json()["secret"]
    return path


async def test_publishing_a_change_notifies_every_tenant_with_an_executed_dpa_once_by_email_and_webhook(
    web: tuple[httpx.AsyncClient, Api], db: Database, settings: Settings, signed_receiver: tuple[Receiver, str]
) -> None:
    http, admin = web
    receiver, base = signed_receiver
    legal = await admin.new_staff("legal")
    first, second, unsigned = await admin.new_tenant(), await admin.new_tenant(), await admin.new_tenant()
    for owner in (first, second):
        await to_status(owner, legal, "executed")
    await to_status(unsigned, legal, "ready_for_signature")
    paths = {owner.tenant_id: await endpoint_for(owner, receiver, base) for owner in (first, second, unsigned)}

    change = await publish(legal)
    assert change["status"] == "pending"
    assert at(change["effective_at"]) - at(change["published_at"]) == timedelta(days=30)
    await drain(http, db)
    await drain(http, db)  # a second round sends nothing again

    async with db.transaction(Scope.system(), write=False) as session:
        notified = list(
            (
                await session.execute(
                    select(OutboxMessage.tenant_id).where(
                        OutboxMessage.dedupe_key.startswith(f"{PUBLISHED_TOPIC}:{change['id']}:")
                    )
                )
            ).scalars()
        )
        executed = set(
            (await session.execute(select(Agreement.tenant_id).where(Agreement.status == "executed"))).scalars()
        )
    assert sorted(map(str, notified)) == sorted(map(str, executed)), "one message per tenant with an executed DPA"
    assert {first.tenant_id, second.tenant_id} <= set(map(str, notified))
    assert unsigned.tenant_id not in set(map(str, notified))

    for owner in (first, second):
        about_this = [
            headers["dpa-event-id"]
            for path, headers, body in receiver.requests
            if path == paths[owner.tenant_id] and json.loads(body)["data"]["change_id"] == change["id"]
        ]
        assert len(about_this) == 1, f"exactly one webhook for {owner.tenant_id}: {about_this}"
        assert about_this[0] in receiver.accepted[paths[owner.tenant_id]]
    assert paths[unsigned.tenant_id] not in receiver.accepted
    assert receiver.rejected == 0

    # E-mail: the owners and admins, and the contact address of the DPA (Annex I.A, as clause 6.2 promises).
    mails = [m for m in read_log(settings.var_dir) if f"list version {change['version']}" in m["subject"]]
    for owner in (first, second):
        contact = (await owner.get("/tenant")).json()["contact_email"]
        for email in ((await owner.get("/me")).json()["email"], contact):
            assert [m["to"] for m in mails].count(email) == 1, email
            assert change["id"] in next(m["body"] for m in mails if m["to"] == email)
    outsiders = {(await unsigned.get("/me")).json()["email"], (await unsigned.get("/tenant")).json()["contact_email"]}
    assert not outsiders & {m["to"] for m in mails}

    # The receiver's check: the genuine delivery verifies; a tampered body or a stale timestamp does not.
    path, headers, body = next(
        r
        for r in receiver.requests
        if r[0] == paths[first.tenant_id] and json.loads(r[2])["data"]["change_id"] == change["id"]
    )
    secret = receiver.secrets[path]
    now = receiver.clock()
    forged = body.replace(b"Live", b"Dead")
    assert forged != body
    assert verify_signature(secret, headers["dpa-signature"], body, now=now)
    assert not verify_signature(secret, headers["dpa-signature"], forged, now=now)
    assert not verify_signature(secret, headers["dpa-signature"], body, now=now + 301)
    async with httpx.AsyncClient() as outsider:
        tampered = await outsider.post(base + path, content=forged, headers={"DPA-Signature": headers["dpa-signature"]})
        assert tampered.status_code == 401
        receiver.clock = lambda: now + 6 * 60  # type: ignore[method-assign]
        replayed = await outsider.post(
            base + path, content=body, headers={"DPA-Signature": headers["dpa-signature"], "DPA-Event-Id": "x"}
        )
        assert replayed.status_code == 401
    assert receiver.rejected == 2


async def test_objection_window_deemed_acceptance_and_the_authorized_set(
    web: tuple[httpx.AsyncClient, Api], db: Database
) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    objector, silent, unsigned = await admin.new_tenant(), await admin.new_tenant(), await admin.new_tenant()
    pinned = (await to_status(objector, legal, "executed"))["subprocessor_list_version"]
    await to_status(silent, legal, "executed")
    before = (await objector.get("/tenant/subprocessors")).json()
    assert before["authorized_version"] == pinned
    listed = (await objector.get(f"/subprocessors/versions/{pinned}")).json()
    assert [i["name"] for i in before["items"]] == [i["name"] for i in listed["items"]]

    added = vendor()
    change = await publish(legal, add=[added])
    deadline = at(change["effective_at"])
    view = (await objector.get("/tenant/subprocessors")).json()
    assert view["authorized_version"] == pinned, "a pending change authorizes nothing yet"
    pending = next(p for p in view["pending_changes"] if p["id"] == change["id"])
    assert at(pending["effective_at"]) == deadline and pending["objection"] is None

    member = await objector.new_user("member")
    assert (await member.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "no"})).status_code == 403
    objection = await objector.post(
        f"/subprocessor-changes/{change['id']}/objections", {"reason": "Our customers forbid US machine translation"}
    )
    assert objection.status_code == 201, objection.text
    assert objection.json()["status"] == "open"
    again = await objector.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "still no"})
    assert again.status_code == 409
    no_dpa = await unsigned.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "we object"})
    assert no_dpa.status_code == 409 and "executed DPA" in no_dpa.json()["detail"]

    with travel_to(deadline + timedelta(minutes=1)):
        late = await silent.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "too late"})
        assert late.status_code == 409
        assert (await legal.get(f"/subprocessor-changes/{change['id']}")).json()["status"] == "effective"

        # Reads are right before the job has run: the silent tenant is deemed to have accepted at the deadline.
        silent_view = (await silent.get("/tenant/subprocessors")).json()
        assert silent_view["authorized_version"] == change["version"]
        assert added["name"] in [i["name"] for i in silent_view["items"]]
        deemed = next(a for a in silent_view["accepted_changes"] if a["change_id"] == change["id"])
        assert deemed["kind"] == "deemed" and deemed["id"] is None and at(deemed["accepted_at"]) == deadline

        # The objection stops the chain at the version the change builds on (earlier changes, if any, were
        # deemed accepted).
        objector_view = (await objector.get("/tenant/subprocessors")).json()
        assert objector_view["authorized_version"] == change["base_version"] >= pinned
        assert added["name"] not in [i["name"] for i in objector_view["items"]]
        assert [c["id"] for c in objector_view["objected_changes"]] == [change["id"]]

        assert await record_deemed_acceptances(db) >= 1
        recorded = next(
            a
            for a in (await silent.get("/tenant/subprocessors")).json()["accepted_changes"]
            if a["change_id"] == change["id"]
        )
        assert recorded["id"] is not None and at(recorded["accepted_at"]) == deadline
        assert await record_deemed_acceptances(db) == 0, "the job is idempotent"
        assert not any(
            a["change_id"] == change["id"]
            for a in (await objector.get("/tenant/subprocessors")).json()["accepted_changes"]
        )
        actions = [e["action"] for e in (await silent.get("/audit-events", limit=200)).json()["items"]]
        assert "subprocessor_change.deemed_accepted" in actions

    # Legal sees every objection; a tenant only its own.
    listed = (await legal.get("/objections", change_id=change["id"])).json()["items"]
    assert [o["tenant_id"] for o in listed] == [objector.tenant_id]
    assert [o["id"] for o in (await objector.get("/objections")).json()["items"]] == [objection.json()["id"]]
    assert (await silent.get("/objections")).json()["items"] == []
    oid = objection.json()["id"]
    assert (await objector.post(f"/objections/{oid}/resolve", {"resolution": "ok"})).status_code == 403
    bad = await legal.post(f"/objections/{oid}/resolve", {"resolution": "Discussed", "outcome": "maybe"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "outcome"
    resolved = await legal.post(
        f"/objections/{oid}/resolve",
        {
            "resolution": "Translation runs in the EU region for this customer; objection withdrawn",
            "outcome": "withdrawn",
        },
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved" and resolved.json()["outcome"] == "withdrawn"
    assert (await legal.post(f"/objections/{oid}/resolve", {"resolution": "Once more"})).status_code == 409
    with travel_to(deadline + timedelta(minutes=2)):
        after = (await objector.get("/tenant/subprocessors")).json()
    assert after["authorized_version"] == change["version"]
    assert next(a for a in after["accepted_changes"] if a["change_id"] == change["id"])["kind"] == "objection_withdrawn"
    actions = [e["action"] for e in (await objector.get("/audit-events", limit=200)).json()["items"]]
    assert {"subprocessor_change.objected", "subprocessor_objection.resolved"} <= set(actions)


async def test_an_express_acceptance_counts_once_the_change_takes_effect(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    pinned = (await to_status(owner, legal, "executed"))["subprocessor_list_version"]
    change = await publish(legal, notice_days=45)
    accepted = await owner.post(f"/subprocessor-changes/{change['id']}/acceptance")
    assert accepted.status_code == 201 and accepted.json()["kind"] == "express"
    assert (await owner.post(f"/subprocessor-changes/{change['id']}/acceptance")).status_code == 409
    objection = await owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "changed my mind"})
    assert objection.status_code == 409
    assert (await owner.get("/tenant/subprocessors")).json()["authorized_version"] == pinned
    with travel_to(at(change["effective_at"]) + timedelta(seconds=1)):
        assert (await owner.get("/tenant/subprocessors")).json()["authorized_version"] == change["version"]


async def test_a_tenant_without_an_executed_dpa_has_no_authorized_list(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    owner = await admin.new_tenant()
    view = (await owner.get("/tenant/subprocessors")).json()
    assert view["authorized_version"] is None and view["items"] == [] and view["pending_changes"] == []
    assert (await (await admin.new_staff("legal")).get("/tenant/subprocessors")).status_code == 403


async def test_changes_take_effect_in_order(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    slow = await publish(legal, notice_days=90)
    urgent = await publish(legal, notice_days=2, urgent=True, reason="Vendor breach: replace at once")
    assert urgent["version"] == slow["version"] + 1
    assert at(urgent["effective_at"]) >= at(slow["effective_at"]), "a version never takes effect before its base"
    assert utcnow() < at(urgent["effective_at"])


async def test_a_dpa_executed_while_a_change_is_pending_gets_its_notice_and_can_object(
    web: tuple[httpx.AsyncClient, Api], db: Database, settings: Settings
) -> None:
    http, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    signed = await to_status(owner, legal, "signed")
    change = await publish(legal)
    executed = await legal.post(f"/agreements/{signed['id']}/countersign")
    assert executed.status_code == 200, executed.text
    await drain(http, db)
    contact = (await owner.get("/tenant")).json()["contact_email"]
    notices = [m for m in read_log(settings.var_dir) if f"list version {change['version']}" in m["subject"]]
    assert [m["to"] for m in notices].count(contact) == 1, "told at execution, since it was not told at publication"
    objection = await owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Not for us"})
    assert objection.status_code == 201


async def test_countersigning_after_a_newer_list_took_effect_needs_a_new_signature(
    web: tuple[httpx.AsyncClient, Api],
) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    signed = await to_status(owner, legal, "signed")
    change = await publish(legal, notice_days=2, urgent=True, reason="Urgent replacement")
    with travel_to(at(change["effective_at"]) + timedelta(minutes=1)):
        refused = await legal.post(f"/agreements/{signed['id']}/countersign")
        assert refused.status_code == 409 and "new signature" in refused.json()["detail"]
        assert (await owner.get(f"/agreements/{signed['id']}")).json()["status"] == "signed"


async def test_the_tenant_hears_how_its_objection_was_resolved(
    web: tuple[httpx.AsyncClient, Api], db: Database, settings: Settings
) -> None:
    http, admin = web
    legal = await admin.new_staff("legal")
    owner = await admin.new_tenant()
    await to_status(owner, legal, "executed")
    change = await publish(legal)
    objection = (await owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Not for us"})).json()
    resolution = "We will not route your chats through Acme Translate."
    resolved = await legal.post(f"/objections/{objection['id']}/resolve", {"resolution": resolution})
    assert resolved.status_code == 200 and resolved.json()["outcome"] == "upheld"
    await drain(http, db)
    email = (await owner.get("/me")).json()["email"]
    mail = next(m for m in read_log(settings.var_dir) if m["to"] == email and "Your objection" in m["subject"])
    assert resolution in mail["body"] and "upheld" in mail["subject"]


async def test_a_tenant_may_withdraw_its_own_objection_and_thereby_accept(web: tuple[httpx.AsyncClient, Api]) -> None:
    _, admin = web
    legal = await admin.new_staff("legal")
    owner, other = await admin.new_tenant(), await admin.new_tenant()
    await to_status(owner, legal, "executed")
    change = await publish(legal)
    objection = (await owner.post(f"/subprocessor-changes/{change['id']}/objections", {"reason": "Not yet"})).json()
    member = await owner.new_user("member")
    assert (await member.post(f"/objections/{objection['id']}/withdraw")).status_code == 403
    assert (await other.post(f"/objections/{objection['id']}/withdraw")).status_code == 404
    withdrawn = await owner.post(f"/objections/{objection['id']}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["outcome"] == "withdrawn" and withdrawn.json()["resolved_by"] == owner.user_id
    assert (await owner.post(f"/objections/{objection['id']}/withdraw")).status_code == 409
    accepted = next(
        a for a in (await owner.get("/tenant/subprocessors")).json()["pending_changes"] if a["id"] == change["id"]
    )["accepted"]
    assert accepted["kind"] == "objection_withdrawn" and accepted["accepted_by"] == owner.user_id
