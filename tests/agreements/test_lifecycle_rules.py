"""The agreement state machine: every illegal step is 409 and writes nothing; who may do what."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from dpa_service.agreements.models import SignatureRequest
from dpa_service.agreements.signing import expire_overdue
from dpa_service.core.clock import travel_to, utcnow
from dpa_service.core.db import Database, Scope
from tests.helpers.agreements import (
    approve_standard_dpa,
    new_agreement,
    request_own_signature,
    request_variables,
    sign,
    to_status,
)
from tests.helpers.api import Api, verify_email

STATUSES = [
    "draft",
    "in_legal_review",
    "changes_requested",
    "ready_for_signature",
    "out_for_signature",
    "signed",
    "executed",
    "voided",
    "superseded",
]

# What each action is allowed from (by the role that may attempt it); everything else must be 409.
ALLOWED = {
    "patch": {"draft", "changes_requested"},
    "submit": {"draft", "changes_requested"},
    "approve": {"in_legal_review"},
    "request_changes": {"in_legal_review"},
    "signature_request": {"ready_for_signature", "out_for_signature"},
    "countersign": {"signed"},
    "void_subscriber": {"draft", "in_legal_review", "changes_requested", "ready_for_signature", "out_for_signature"},
    "void_legal": {
        "draft",
        "in_legal_review",
        "changes_requested",
        "ready_for_signature",
        "out_for_signature",
        "signed",
    },
}


async def attempt(action: str, aid: str, owner: Api, legal: Api) -> Any:
    me = (await owner.get("/me")).json()
    calls = {
        "patch": lambda: owner.patch(f"/agreements/{aid}", {"variables": {"processing": {"retention": "x"}}}),
        "submit": lambda: owner.post(f"/agreements/{aid}/submit"),
        "approve": lambda: legal.post(f"/agreements/{aid}/review", {"decision": "approve", "comment": ""}),
        "request_changes": lambda: legal.post(
            f"/agreements/{aid}/review", {"decision": "request_changes", "comment": "x"}
        ),
        "signature_request": lambda: owner.post(
            f"/agreements/{aid}/signature-requests",
            {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
        ),
        "countersign": lambda: legal.post(f"/agreements/{aid}/countersign"),
        "void_subscriber": lambda: owner.post(f"/agreements/{aid}/void", {"reason": "x"}),
        "void_legal": lambda: legal.post(f"/agreements/{aid}/void", {"reason": "x"}),
    }
    return await calls[action]()


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal"), admin


async def test_every_illegal_transition_is_409_and_writes_nothing(parties: tuple[Api, Api, Api]) -> None:
    owner, legal, _admin = parties
    for status in STATUSES:
        agreement = await to_status(owner, legal, status)
        aid = agreement["id"]
        assert agreement["status"] == status
        for action, allowed_from in ALLOWED.items():
            if status in allowed_from:
                continue
            before = (await owner.get(f"/agreements/{aid}")).json()
            events = len((await owner.get("/audit-events", limit=200)).json()["items"])
            response = await attempt(action, aid, owner, legal)
            assert response.status_code == 409, f"{action} from {status}: {response.status_code} {response.text}"
            assert response.headers["content-type"].startswith("application/problem+json")
            assert (await owner.get(f"/agreements/{aid}")).json() == before, f"{action} from {status} changed it"
            assert len((await owner.get("/audit-events", limit=200)).json()["items"]) == events


async def test_roles_are_enforced(parties: tuple[Api, Api, Api]) -> None:
    owner, legal, admin = parties
    member = await owner.new_user("member")
    sales = await admin.new_staff("sales")
    aid = (await new_agreement(owner))["id"]
    assert (await legal.post("/agreements", {"variables": request_variables()})).status_code == 403
    assert (await owner.post(f"/agreements/{aid}/review", {"decision": "approve"})).status_code == 403
    assert (await owner.post(f"/agreements/{aid}/countersign")).status_code == 403
    await owner.post(f"/agreements/{aid}/submit")
    signer = {"signer": {"name": "M", "email": "m@x.example", "title": "T"}}
    assert (await member.post(f"/agreements/{aid}/signature-requests", signer)).status_code == 403
    assert (await sales.get(f"/agreements/{aid}")).status_code == 200
    assert (await sales.post(f"/agreements/{aid}/void")).status_code == 403
    assert (await admin.get("/agreements")).status_code == 403


async def test_request_changes_needs_a_comment(parties: tuple[Api, Api, Api]) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "in_legal_review"))["id"]
    response = await legal.post(f"/agreements/{aid}/review", {"decision": "request_changes", "comment": " "})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "comment"


async def test_variables_are_checked_and_every_failing_field_named(parties: tuple[Api, Api, Api]) -> None:
    owner, _, _ = parties
    variables = request_variables()
    variables["governing_law"] = "US"
    variables["transfers"]["mechanisms"] = ["made-up"]
    del variables["signatory"]["email"]
    variables["controller"] = {"legal_name": ""}
    response = await owner.post("/agreements", {"variables": variables})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {
        "variables.governing_law",
        "variables.transfers.mechanisms.0",
        "variables.signatory.email",
        "variables.controller.legal_name",
    } <= fields
    assert (await owner.get("/agreements")).json()["items"] == []
    bad_patch_target = await new_agreement(owner)
    patched = await owner.patch(f"/agreements/{bad_patch_target['id']}", {"variables": {"governing_law": "CN"}})
    assert patched.status_code == 422
    assert (await owner.get(f"/agreements/{bad_patch_target['id']}")).json()["variables"]["governing_law"] != "CN"


async def test_a_resend_voids_the_previous_link_and_links_are_single_use(parties: tuple[Api, Api, Api], client) -> None:
    owner, legal, _ = parties
    me = await verify_email(owner)
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    signer = {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}}
    first = (await owner.post(f"/agreements/{aid}/signature-requests", signer)).json()["signing_url"]
    second = (await owner.post(f"/agreements/{aid}/signature-requests", signer)).json()["signing_url"]
    old_token = first.rsplit("/", 1)[1]
    gone = await client.post(
        f"/sign/{old_token}", json={"typed_name": "X", "consent": True, "authority_confirmed": True}
    )
    assert gone.status_code == 410
    assert (await client.get(f"/sign/{old_token}")).status_code == 410
    assert (await client.get("/sign/not-a-real-token")).status_code == 404
    incomplete = await client.post(f"/sign/{second.rsplit('/', 1)[1]}", json={"typed_name": "", "consent": False})
    assert incomplete.status_code == 422
    assert {e["field"] for e in incomplete.json()["errors"]} == {"typed_name", "consent", "authority_confirmed"}
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "out_for_signature"
    await sign(owner, second)
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "signed"


async def test_expired_links_send_the_agreement_back_for_a_new_request(
    parties: tuple[Api, Api, Api],
    db: Database,
    client,
) -> None:
    owner, legal, _ = parties
    agreement = await to_status(owner, legal, "out_for_signature")
    async with db.transaction(Scope.system()) as session:
        await session.execute(
            update(SignatureRequest)
            .where(SignatureRequest.agreement_id == uuid.UUID(agreement["id"]))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    assert await expire_overdue(db) >= 1
    assert (await owner.get(f"/agreements/{agreement['id']}")).json()["status"] == "ready_for_signature"


async def test_docusign_is_refused_clearly_when_not_configured(parties: tuple[Api, Api, Api]) -> None:
    owner, legal, _ = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    response = await owner.post(
        f"/agreements/{aid}/signature-requests",
        {"provider": "docusign", "signer": {"name": "A", "email": "a@x.example", "title": "T"}},
    )
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "provider"


async def test_executing_a_new_dpa_supersedes_the_previous_one(parties: tuple[Api, Api, Api]) -> None:
    owner, legal, _ = parties
    old = await to_status(owner, legal, "superseded")
    assert old["status"] == "superseded" and old["superseded_by"]
    current = (await owner.get(f"/agreements/{old['superseded_by']}")).json()
    assert current["status"] == "executed"
    listed = (await owner.get("/agreements", status="executed")).json()["items"]
    assert [a["id"] for a in listed] == [current["id"]]


async def test_the_agreements_list_shows_exactly_what_each_agreement_shows(
    parties: tuple[Api, Api, Api], admin: Api
) -> None:
    """The list is encoded on a faster path than the single read: its items must be the same JSON."""
    owner, legal, _ = parties
    made = [await to_status(owner, legal, status) for status in ("draft", "executed", "voided")]
    listed = {item["id"]: item for item in (await owner.get("/agreements")).json()["items"]}
    for agreement in made:
        assert listed[agreement["id"]] == (await owner.get(f"/agreements/{agreement['id']}")).json()
    staff_view = (await legal.get("/agreements", tenant_id=owner.tenant_id, status="executed")).json()["items"]
    assert [item["id"] for item in staff_view] == [made[1]["id"]]
    page = (await owner.get("/agreements", limit=2)).json()
    rest = (await owner.get("/agreements", limit=2, cursor=page["next_cursor"])).json()
    assert [i["id"] for i in page["items"] + rest["items"]] == [a["id"] for a in made] and rest["next_cursor"] is None


async def test_updated_at_moves_with_every_change_and_the_signed_pdf_still_rebuilds(
    parties: tuple[Api, Api, Api],
) -> None:
    owner, legal, _ = parties
    created = await new_agreement(owner)
    aid = created["id"]
    edited = await owner.patch(f"/agreements/{aid}", {"variables": {"processing": {"retention": "6 months"}}})
    assert edited.status_code == 200 and edited.json()["updated_at"] > created["updated_at"]
    submitted = (await owner.post(f"/agreements/{aid}/submit")).json()
    assert submitted["status"] == "ready_for_signature"
    assert submitted["updated_at"] > edited.json()["updated_at"]
    # Sent today, signed and countersigned days later: the draft's date is the text's, so the PDF the signer saw
    # rebuilds to the same bytes and the countersignature goes through.
    signing_url = await request_own_signature(owner, aid)
    sent = (await owner.get(f"/agreements/{aid}")).json()
    assert sent["updated_at"] > submitted["updated_at"]
    with travel_to(utcnow() + timedelta(days=3)):
        await sign(owner, signing_url)
        signed = (await owner.get(f"/agreements/{aid}")).json()
        assert signed["status"] == "signed" and signed["updated_at"] > sent["updated_at"]
        executed = await legal.post(f"/agreements/{aid}/countersign")
    assert executed.status_code == 200, executed.text
    assert executed.json()["updated_at"] > signed["updated_at"]
