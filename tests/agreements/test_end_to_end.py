"""The whole DPA lifecycle through HTTP only, from request to a sealed, verifiable executed PDF."""

from __future__ import annotations

import asyncio
import hashlib
import io
import shutil
import subprocess

import httpx
import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from dpa_service.app import create_app
from dpa_service.core.db import Database
from dpa_service.core.mailer import read_log
from dpa_service.core.settings import Settings
from tests.conftest import running
from tests.helpers.agreements import approve_standard_dpa, request_variables, token_of
from tests.helpers.api import Api, verify_email
from tests.templates.conftest import pdf_text, squash


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(admin_name="Olive Owner"), await admin.new_staff("legal")


@pytest.mark.shipped_dpa  # the whole path once on the DPA as legal ships it, all 18 pages
async def test_request_customize_review_sign_countersign_verify(
    parties: tuple[Api, Api], settings: Settings, client
) -> None:
    owner, legal = parties
    me = await verify_email(owner)  # she opened the confirmation link e-mailed to her: she may sign on screen
    tenant = (await owner.get("/tenant")).json()

    # Requested: the controller comes from the tenant profile.
    created = await owner.post(
        "/agreements",
        {"template_key": "standard-dpa", "variables": request_variables()},
        headers={"Idempotency-Key": "first-dpa"},
    )
    assert created.status_code == 201, created.text
    agreement = created.json()
    aid = agreement["id"]
    assert agreement["status"] == "draft" and agreement["template_version"] >= 1
    assert agreement["variables"]["controller"]["legal_name"] == tenant["legal_name"]

    # Customized with a merge patch and a custom clause.
    patched = await owner.patch(
        f"/agreements/{aid}",
        {
            "variables": {"processing": {"retention": "Deleted 12 months after the chat ends."}},
            "custom_clauses": [{"title": "Audit notice", "text": "Audits are announced 60 days ahead."}],
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["variables"]["processing"]["retention"] == "Deleted 12 months after the chat ends."
    assert patched.json()["variables"]["processing"]["subject_matter"]  # the rest is kept

    # Custom clauses go to legal, who sends it back; the Subscriber fixes it; legal approves.
    assert (await owner.post(f"/agreements/{aid}/submit")).json()["status"] == "in_legal_review"
    review = (await legal.get(f"/agreements/{aid}/review")).json()
    assert review["custom_clauses"][0]["title"] == "Audit notice"
    assert any(line.startswith("+") and "Audits are announced 60 days ahead." in line for line in review["diff"])
    sent_back = await legal.post(
        f"/agreements/{aid}/review", {"decision": "request_changes", "comment": "30 days is our standard"}
    )
    assert sent_back.json()["status"] == "changes_requested" and sent_back.json()["review_comment"]
    await owner.patch(
        f"/agreements/{aid}",
        {"custom_clauses": [{"title": "Audit notice", "text": "Audits are announced 30 days ahead."}]},
    )
    assert (await owner.post(f"/agreements/{aid}/submit")).json()["status"] == "in_legal_review"
    approved = await legal.post(f"/agreements/{aid}/review", {"decision": "approve", "comment": "ok"})
    assert approved.json()["status"] == "ready_for_signature"

    # The owner signs it herself (embedded signing), through the HTML form.
    draft = await owner.get(f"/agreements/{aid}/document")
    assert draft.status_code == 200 and draft.headers["content-type"] == "application/pdf"
    requested = await owner.post(
        f"/agreements/{aid}/signature-requests",
        {"provider": "builtin", "signer": {"name": me["name"], "email": me["email"].upper(), "title": "CEO"}},
    )
    assert requested.status_code == 201, requested.text
    signing_url = requested.json()["signing_url"]
    assert signing_url.startswith("http") and requested.json()["document_sha256"] == draft.headers["x-content-sha256"]
    assert any(token_of(signing_url) in mail["body"] for mail in read_log(settings.var_dir))

    token = token_of(signing_url)
    page = await client.get(f"/sign/{token}")
    assert page.status_code == 200 and draft.headers["x-content-sha256"] in page.text
    assert f"authorized to sign on behalf of {tenant['legal_name']}" in page.text
    shown = await client.get(f"/sign/{token}/document")
    assert hashlib.sha256(shown.content).hexdigest() == draft.headers["x-content-sha256"]
    signed = await client.post(
        f"/sign/{token}",
        data={
            "typed_name": "Olive Q. Owner",
            "consent": "true",
            "authority_confirmed": "true",
            "document_sha256": draft.headers["x-content-sha256"],
        },
    )
    assert signed.status_code == 200 and "signature is recorded" in signed.text
    assert (await owner.get(f"/agreements/{aid}")).json()["status"] == "signed"
    assert (
        await client.post(
            f"/sign/{token}", data={"typed_name": "again", "consent": "true", "authority_confirmed": "true"}
        )
    ).status_code == 410

    # Legal countersigns: the executed PDF is sealed and stored with its hash.
    executed = await legal.post(f"/agreements/{aid}/countersign")
    assert executed.status_code == 200, executed.text
    body = executed.json()
    assert body["status"] == "executed" and body["effective_date"] and len(body["document_sha256"]) == 64

    document = await owner.get(f"/agreements/{aid}/document")
    assert document.headers["x-content-sha256"] == body["document_sha256"]
    assert hashlib.sha256(document.content).hexdigest() == body["document_sha256"]
    text = squash(pdf_text(document.content))
    legal_me = (await legal.get("/me")).json()
    for expected in (
        "Olive Q. Owner",
        legal_me["name"],
        "Certificate of completion",
        "Signature page",
        draft.headers["x-content-sha256"],
        "by the signer opening the confirmation link e-mailed to it",  # how her address was verified
    ):
        assert squash(expected) in text, expected
    # The certificate carries the tenant's audit chain head just before the execution event, under the seal.
    events = await owner.all("/audit-events")
    executed_at = next(i for i, e in enumerate(events) if e["action"] == "agreement.countersign")
    before = events[executed_at - 1]
    assert squash(f"audit log up to event {before['seq']}, whose hash is {before['hash']}") in text
    assert events[executed_at]["data"]["document_sha256"] == body["document_sha256"]

    # The seal validates against the service certificate (pyHanko), and poppler agrees where installed.
    seal = client.app.state.seal
    reader = PdfFileReader(io.BytesIO(document.content))
    status = await async_validate_pdf_signature(
        reader.embedded_signatures[0], ValidationContext(trust_roots=[seal.certificate])
    )
    assert status.intact and status.valid and status.trusted
    if shutil.which("pdfsig"):
        path = settings.var_dir / "executed.pdf"
        path.write_bytes(document.content)
        out = await asyncio.to_thread(
            subprocess.run, ["pdfsig", str(path)], capture_output=True, text=True, check=False
        )
        assert "Signature is Valid" in out.stdout, out.stdout

    evidence = (await owner.get(f"/agreements/{aid}/evidence")).json()
    roles = {s["role"]: s for s in evidence["signatures"]}
    assert set(roles) == {"subscriber", "processor"} and evidence["executed_sha256"] == body["document_sha256"]
    assert roles["subscriber"]["typed_name"] == "Olive Q. Owner" and roles["subscriber"]["consent"] is True
    assert roles["subscriber"]["document_sha256"] == draft.headers["x-content-sha256"]
    assert roles["subscriber"]["ip"] and roles["subscriber"]["consent_text_sha256"]
    assert roles["subscriber"]["email_verification"] == "confirmation_link"
    assert roles["subscriber"]["email_verified_at"] == me["email_verified_at"]

    verified = await owner.client.post(
        "/api/v1/documents/verify",
        content=document.content,
        headers={"Authorization": f"Bearer {owner.key}", "Content-Type": "application/pdf"},
    )
    assert verified.json()["status"] == "verified" and verified.json()["agreement_id"] == aid
    flipped = bytearray(document.content)
    flipped[len(flipped) // 3] ^= 0x01
    tampered = await owner.client.post(
        "/api/v1/documents/verify",
        content=bytes(flipped),
        headers={"Authorization": f"Bearer {owner.key}", "Content-Type": "application/pdf"},
    )
    assert tampered.json()["status"] == "tampered"
    unknown = await owner.client.post(
        "/api/v1/documents/verify",
        content=draft.content,
        headers={"Authorization": f"Bearer {owner.key}", "Content-Type": "application/pdf"},
    )
    assert unknown.json()["status"] == "unknown"


async def test_a_link_for_someone_else_is_only_mailed(parties: tuple[Api, Api], settings: Settings) -> None:
    owner, _ = parties
    aid = (await owner.post("/agreements", {"variables": request_variables()})).json()["id"]
    await owner.post(f"/agreements/{aid}/submit")
    response = await owner.post(
        f"/agreements/{aid}/signature-requests",
        {"signer": {"name": "Cathy CFO", "email": "cfo@elsewhere.example", "title": "CFO"}},
    )
    assert response.status_code == 201 and response.json()["signing_url"] is None
    mails = [m for m in read_log(settings.var_dir) if m["to"] == "cfo@elsewhere.example"]
    assert len(mails) == 1 and "/sign/" in mails[0]["body"]


async def test_automatic_countersignature_by_the_named_signatory(parties: tuple[Api, Api], settings: Settings) -> None:
    owner, legal = parties
    legal_me = (await legal.get("/me")).json()
    app = create_app(settings.model_copy(update={"auto_countersign_email": legal_me["email"]}))
    # In this loop, like the app the fixtures started: a blocking test client would stall that one's writers.
    async with (
        running(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as auto_client,
    ):
        await verify_email(owner)  # embedded signing is for a verified address
        auto_owner = Api(auto_client, owner.key)
        aid = (await auto_owner.post("/agreements", {"variables": request_variables()})).json()["id"]
        await auto_owner.post(f"/agreements/{aid}/submit")
        me = (await auto_owner.get("/me")).json()
        url = (
            await auto_owner.post(
                f"/agreements/{aid}/signature-requests",
                {"signer": {"name": me["name"], "email": me["email"], "title": "CEO"}},
            )
        ).json()["signing_url"]
        signed = await auto_client.post(
            f"/sign/{token_of(url)}", json={"typed_name": "Olive", "consent": True, "authority_confirmed": True}
        )
        assert signed.status_code == 200 and signed.json()["status"] == "executed"
        evidence = (await auto_owner.get(f"/agreements/{aid}/evidence")).json()
        assert [s["email"] for s in evidence["signatures"] if s["role"] == "processor"] == [legal_me["email"]]
