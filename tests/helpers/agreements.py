"""Build agreements in any state through the public API, the way users would."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor
from dpa_service.template_versions import services as templates
from dpa_service.template_versions.bundle import shipped_bundles
from tests.helpers.api import Api, verify_email


async def approve_standard_dpa(db: Database) -> None:
    """Approve the database's draft of standard-dpa: its short edition, or the shipped one for tests marked
    `shipped_dpa` or `first_start` (tests/helpers/short_dpa.py); idempotent, so a fixture and its test may both
    call it."""
    await templates.sync_from_files(db, Actor.system("test"), only_new_keys=True)
    if await templates.current_version(db, Scope.system(), "standard-dpa") is None:
        drafts = await templates.list_versions(db, _staff(), key="standard-dpa", status="draft", cursor=None, limit=10)
        reviewer = Actor(user_id=uuid.uuid4(), role="legal", tenant_id=None)
        await templates.transition(db, Actor.system("test"), drafts.items[-1].id, "submit")
        await templates.transition(db, reviewer, drafts.items[-1].id, "approve")


def _staff() -> Any:
    from dpa_service.core.identity import Principal, Role

    return Principal(uuid.uuid4(), None, Role.LEGAL, "t@x.example", "T", uuid.uuid4())


def request_variables() -> dict[str, Any]:
    """What a Subscriber sends: everything but the controller, which comes from its profile."""
    sample = copy.deepcopy(next(b for b in shipped_bundles() if b.key == "standard-dpa").sample_variables)
    sample.pop("controller")
    return sample


async def new_agreement(owner: Api, **body: Any) -> dict[str, Any]:
    response = await owner.post(
        "/agreements", {"template_key": "standard-dpa", "variables": request_variables(), **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


async def to_status(owner: Api, legal: Api, status: str, *, mechanisms: list[str] | None = None) -> dict[str, Any]:
    """An agreement of `owner`'s tenant brought to `status` through the API (on `mechanisms`, when given)."""
    custom = status in {"in_legal_review", "changes_requested"}
    variables = request_variables()
    if mechanisms is not None:
        variables["transfers"] = {**variables["transfers"], "mechanisms": mechanisms}
    agreement = await new_agreement(
        owner, variables=variables, custom_clauses=[{"title": "Audit window", "text": "30 days"}] if custom else []
    )
    aid = agreement["id"]
    if status == "draft":
        return agreement
    if status == "voided":
        return await ok(owner.post(f"/agreements/{aid}/void", {"reason": "test"}))
    submitted = await ok(owner.post(f"/agreements/{aid}/submit"))
    if status == "in_legal_review":
        return submitted
    if status == "changes_requested":
        return await ok(legal.post(f"/agreements/{aid}/review", {"decision": "request_changes", "comment": "shorter"}))
    if status == "ready_for_signature":
        return submitted
    # Embedded signing needs a verified address: from "signed" on, the owner confirms hers first (the real path).
    me = await verify_email(owner) if status != "out_for_signature" else (await owner.get("/me")).json()
    requested = await owner.post(
        f"/agreements/{aid}/signature-requests",
        {"provider": "builtin", "signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
    )
    assert requested.status_code == 201, requested.text
    if status == "out_for_signature":
        return (await owner.get(f"/agreements/{aid}")).json()
    await sign(owner, requested.json()["signing_url"])
    if status == "signed":
        return (await owner.get(f"/agreements/{aid}")).json()
    executed = await ok(legal.post(f"/agreements/{aid}/countersign"))
    if status == "executed":
        return executed
    assert status == "superseded", status
    await to_status(owner, legal, "executed")
    return (await owner.get(f"/agreements/{aid}")).json()


async def request_own_signature(owner: Api, agreement_id: str) -> str:
    """The caller asks to sign the agreement themselves (embedded signing: its address is verified first, through
    the confirmation link e-mailed to it) and gets the signing URL."""
    me = await verify_email(owner)
    response = await owner.post(
        f"/agreements/{agreement_id}/signature-requests",
        {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
    )
    assert response.status_code == 201, response.text
    assert response.json()["signing_url"], "a verified caller signing for themself gets the embedded link"
    return response.json()["signing_url"]


def token_of(signing_url: str) -> str:
    match = re.search(r"/sign/([^/?#]+)$", signing_url)
    assert match, signing_url
    return match.group(1)


async def sign(api: Api, signing_url: str, typed_name: str = "Olive Owner") -> Any:
    response = await api.client.post(
        f"/sign/{token_of(signing_url)}",
        json={"typed_name": typed_name, "consent": True, "authority_confirmed": True},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def ok(awaitable: Any) -> dict[str, Any]:
    response = await awaitable
    assert response.status_code == 200, response.text
    return response.json()
