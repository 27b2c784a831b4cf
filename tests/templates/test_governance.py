"""Template governance: legal drafts, another legal user approves (four-eyes), content never changes."""

from __future__ import annotations

import secrets
import uuid

import pytest
from sqlalchemy import text

from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.template_versions.models import TemplateCreate
from dpa_service.template_versions.services import create_version, prepare_version
from tests.helpers.api import Api

SCHEMA = {
    "type": "object",
    "required": ["controller"],
    "additionalProperties": False,
    "properties": {
        "controller": {
            "type": "object",
            "required": ["legal_name"],
            "additionalProperties": False,
            "properties": {"legal_name": {"type": "string", "minLength": 1}},
        }
    },
}


def new_template(**overrides: object) -> dict:
    return {
        "key": f"test-dpa-{secrets.token_hex(3)}",
        "title": "Test DPA",
        "source": "<h1>DPA for {{ variables.controller.legal_name }}</h1>",
        "variables_schema": SCHEMA,
        "sample_variables": {"controller": {"legal_name": "Sample GmbH"}},
        **overrides,
    }


@pytest.fixture
async def legal(admin: Api) -> tuple[Api, Api]:
    return await admin.new_staff("legal"), await admin.new_staff("legal")


async def test_four_eyes_lifecycle(legal: tuple[Api, Api]) -> None:
    author, reviewer = legal
    created = await author.post("/templates", new_template())
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "draft" and body["version"] == 1 and body["author_id"] == author.user_id
    assert len(body["sha256"]) == 64
    tid = body["id"]

    submitted = await author.post(f"/templates/{tid}/submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "in_review"
    assert (await author.post(f"/templates/{tid}/approve")).status_code == 403
    approved = await reviewer.post(f"/templates/{tid}/approve")
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved" and approved.json()["approver_id"] == reviewer.user_id
    assert approved.json()["current"] is True
    retired = await reviewer.post(f"/templates/{tid}/retire")
    assert retired.status_code == 200 and retired.json()["status"] == "retired"


@pytest.mark.parametrize(
    ("reach", "action"),
    [
        ([], "approve"),
        ([], "retire"),
        (["submit"], "submit"),
        (["submit"], "retire"),
        (["submit", "approve"], "submit"),
        (["submit", "approve"], "approve"),
        (["submit", "approve", "retire"], "submit"),
        (["submit", "approve", "retire"], "approve"),
        (["submit", "approve", "retire"], "retire"),
    ],
)
async def test_illegal_transitions_are_409_and_change_nothing(
    legal: tuple[Api, Api], reach: list[str], action: str
) -> None:
    author, reviewer = legal
    tid = (await author.post("/templates", new_template())).json()["id"]
    for step in reach:
        assert (await (reviewer if step == "approve" else author).post(f"/templates/{tid}/{step}")).status_code == 200
    before = (await author.get(f"/templates/{tid}")).json()
    response = await reviewer.post(f"/templates/{tid}/{action}")
    assert response.status_code == 409, response.text
    assert (await author.get(f"/templates/{tid}")).json() == before


async def test_whoever_submits_a_synced_version_cannot_also_approve_it(legal: tuple[Api, Api], db: Database) -> None:
    author, reviewer = legal
    # as `dpa templates sync` does: no author
    actor = Actor.system("test")
    synced = await create_version(db, actor, await prepare_version(db, actor, TemplateCreate(**new_template())))
    tid = str(synced.id)
    assert (await author.post(f"/templates/{tid}/submit")).status_code == 200
    assert (await author.post(f"/templates/{tid}/approve")).status_code == 403
    assert (await reviewer.post(f"/templates/{tid}/approve")).status_code == 200


async def test_a_template_that_fails_on_its_sample_is_refused(legal: tuple[Api, Api]) -> None:
    author, _ = legal
    response = await author.post("/templates", new_template(source="<p>{{ variables.nope.deeper }}</p>"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "source"


async def test_non_legal_staff_read_approved_versions_only(admin: Api, legal: tuple[Api, Api]) -> None:
    author, _ = legal
    sales = await admin.new_staff("sales")
    draft = (await author.post("/templates", new_template())).json()
    assert (await sales.get(f"/templates/{draft['id']}")).status_code == 404
    assert (await admin.get(f"/templates/{draft['id']}")).status_code == 404
    assert draft["id"] not in {t["id"] for t in (await sales.get("/templates", limit=200)).json()["items"]}


async def test_only_legal_manages_templates(admin: Api, legal: tuple[Api, Api]) -> None:
    author, _ = legal
    owner = await admin.new_tenant()
    sales = await admin.new_staff("sales")
    for caller in (owner, sales, admin):
        assert (await caller.post("/templates", new_template())).status_code == 403
    tid = (await author.post("/templates", new_template())).json()["id"]
    for caller in (sales, admin):
        assert (await caller.post(f"/templates/{tid}/submit")).status_code == 403
        assert (await caller.get(f"/templates/{tid}/preview")).status_code == 403


async def test_subscribers_see_approved_versions_only(admin: Api, legal: tuple[Api, Api]) -> None:
    author, reviewer = legal
    owner = await admin.new_tenant()
    draft = (await author.post("/templates", new_template())).json()
    approved = (await author.post("/templates", new_template())).json()
    await author.post(f"/templates/{approved['id']}/submit")
    await reviewer.post(f"/templates/{approved['id']}/approve")

    assert (await owner.get(f"/templates/{draft['id']}")).status_code == 404
    assert (await owner.get(f"/templates/{approved['id']}")).status_code == 200
    listed = {t["id"] for t in (await owner.get("/templates", limit=200)).json()["items"]}
    assert approved["id"] in listed and draft["id"] not in listed
    staff_listed = {t["id"] for t in (await author.get("/templates", limit=200)).json()["items"]}
    assert {draft["id"], approved["id"]} <= staff_listed


async def test_a_change_is_a_new_version_and_approval_moves_current(legal: tuple[Api, Api]) -> None:
    author, reviewer = legal
    first = (await author.post("/templates", new_template())).json()
    key = first["key"]
    second = (await author.post("/templates", {"key": key, "title": "Test DPA", "source": "<h1>v2</h1>"})).json()
    assert second["version"] == 2 and second["sha256"] != first["sha256"]
    assert second["variables_schema"] == SCHEMA  # inherited from the key's latest version
    for version in (first, second):
        await author.post(f"/templates/{version['id']}/submit")
        await reviewer.post(f"/templates/{version['id']}/approve")
    versions = {t["version"]: t for t in (await author.get("/templates", key=key)).json()["items"]}
    assert versions[2]["current"] is True and versions[1]["current"] is False
    assert versions[1]["status"] == "approved"  # still valid for DPAs made with it
    await reviewer.post(f"/templates/{second['id']}/retire")
    versions = {t["version"]: t for t in (await author.get("/templates", key=key)).json()["items"]}
    assert versions[1]["current"] is True


async def test_bad_templates_are_refused_with_the_field_named(legal: tuple[Api, Api]) -> None:
    author, _ = legal
    broken = await author.post("/templates", new_template(source="{% if %}"))
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "source"
    bad_sample = await author.post("/templates", new_template(sample_variables={"controller": {}}))
    assert bad_sample.status_code == 422
    assert bad_sample.json()["errors"][0]["field"] == "sample_variables.controller.legal_name"
    bad_key = await author.post("/templates", new_template(key="Not A Key"))
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "key"


async def test_content_is_immutable_in_the_database(legal: tuple[Api, Api], db: Database) -> None:
    author, _ = legal
    tid = (await author.post("/templates", new_template())).json()["id"]
    with pytest.raises(Exception, match="immutable"):
        async with db.transaction(Scope.system()) as session:
            await session.execute(
                text("UPDATE template_versions SET source = 'tampered' WHERE id = :id"),
                {"id": uuid.UUID(tid) if db.is_postgres else uuid.UUID(tid).hex},
            )
    assert "tampered" not in (await author.get(f"/templates/{tid}")).json()["source"]


async def test_every_transition_is_audited(legal: tuple[Api, Api], admin: Api) -> None:
    author, reviewer = legal
    tid = (await author.post("/templates", new_template())).json()["id"]
    await author.post(f"/templates/{tid}/submit")
    await reviewer.post(f"/templates/{tid}/approve")
    await reviewer.post(f"/templates/{tid}/retire")
    events = [e for e in await admin.all("/audit-events") if e["target_id"] == tid]
    assert [e["action"] for e in events] == [
        "template.created",
        "template.submitted",
        "template.approved",
        "template.retired",
    ]
    assert [e["actor_id"] for e in events] == [author.user_id, author.user_id, reviewer.user_id, reviewer.user_id]


async def test_a_template_without_a_schema_accepts_any_variables_and_names_a_missing_one_when_rendered(
    legal: tuple[Api, Api], admin: Api
) -> None:
    """API.md makes `variables_schema` optional: the template gets a permissive one, and the variable its text
    needs is named (422) when an agreement's document is rendered without it."""
    author, reviewer = legal
    key = f"brand-new-{secrets.token_hex(3)}"
    source = (
        "<html><body><p>{{ variables.controller.legal_name }} under {{ variables.governing_law }}</p></body></html>"
    )
    created = await author.post("/templates", {"key": key, "title": "Short DPA", "source": source})
    assert created.status_code == 201, created.text
    assert created.json()["variables_schema"] == {"type": "object"}
    tid = created.json()["id"]
    assert (await author.post(f"/templates/{tid}/submit")).status_code == 200
    assert (await reviewer.post(f"/templates/{tid}/approve")).status_code == 200
    owner = await admin.new_tenant()
    draft = await owner.post("/agreements", {"template_key": key, "variables": {"controller": {"legal_name": "A"}}})
    assert draft.status_code == 201, draft.text
    document = await owner.get(f"/agreements/{draft.json()['id']}/document")
    assert document.status_code == 422, document.text
    assert document.json()["errors"][0]["field"] == "variables.governing_law"
