"""Agreements stay isolated, consistent under concurrency and crashes, and their sealed bytes tamper-evident."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service.agreements import execution
from dpa_service.agreements.models import Agreement, AgreementDocument, Signature, SignatureRequest
from dpa_service.core.db import Database, Scope
from dpa_service.core.identity import Actor, Principal, Role
from tests.helpers.agreements import approve_standard_dpa, new_agreement, request_own_signature, to_status, token_of
from tests.helpers.api import Api
from tests.helpers.isolation import Probe, assert_isolated


@pytest.fixture
async def parties(admin: Api, db: Database) -> tuple[Api, Api]:
    await approve_standard_dpa(db)
    return await admin.new_tenant(), await admin.new_staff("legal")


async def test_another_tenant_reaches_none_of_the_agreement_endpoints(parties: tuple[Api, Api], admin: Api) -> None:
    owner, legal = parties
    intruder = await admin.new_tenant()
    draft = await new_agreement(owner)
    executed = await to_status(owner, legal, "executed")
    signer = {"signer": {"name": "I", "email": "i@x.example", "title": "T"}}
    probes = [
        Probe(
            f"{label} agreement",
            agreement["id"],
            lists=["/agreements"],
            direct=[
                ("GET", f"/agreements/{agreement['id']}", None),
                ("GET", f"/agreements/{agreement['id']}/document", None),
                ("GET", f"/agreements/{agreement['id']}/evidence", None),
                ("PATCH", f"/agreements/{agreement['id']}", {"variables": {"governing_law": "IE"}}),
                ("POST", f"/agreements/{agreement['id']}/submit", None),
                ("POST", f"/agreements/{agreement['id']}/signature-requests", signer),
                ("POST", f"/agreements/{agreement['id']}/void", {"reason": "x"}),
            ],
        )
        for label, agreement in (("draft", draft), ("executed", executed))
    ]
    await assert_isolated(owner, intruder, probes)
    document = await owner.get(f"/agreements/{executed['id']}/document")
    verified = await intruder.client.post(
        "/api/v1/documents/verify",
        content=document.content,
        headers={"Authorization": f"Bearer {intruder.key}", "Content-Type": "application/pdf"},
    )
    assert verified.json()["status"] == "verified" and verified.json()["agreement_id"] is None
    anonymous = await intruder.client.post(
        "/api/v1/documents/verify", content=document.content, headers={"Content-Type": "application/pdf"}
    )
    assert anonymous.status_code == 200, "whoever holds the PDF may check it, without a key"
    assert anonymous.json()["status"] == "verified" and anonymous.json()["agreement_id"] is None
    bad_key = await intruder.client.post(
        "/api/v1/documents/verify",
        content=document.content,
        headers={"Authorization": "Bearer dpa_not-a-key", "Content-Type": "application/pdf"},
    )
    assert bad_key.status_code == 401


async def test_two_countersignatures_at_once_execute_once(parties: tuple[Api, Api], admin: Api, db: Database) -> None:
    owner, legal = parties
    other_legal = await admin.new_staff("legal")
    aid = (await to_status(owner, legal, "signed"))["id"]
    first, second = await asyncio.gather(
        legal.post(f"/agreements/{aid}/countersign"), other_legal.post(f"/agreements/{aid}/countersign")
    )
    assert sorted([first.status_code, second.status_code]) == [200, 409], (first.text, second.text)
    async with db.transaction(Scope.system(), write=False) as session:
        documents = await session.scalar(
            select(func.count()).select_from(AgreementDocument).where(AgreementDocument.agreement_id == uuid.UUID(aid))
        )
        processor_signatures = await session.scalar(
            select(func.count())
            .select_from(Signature)
            .where(Signature.agreement_id == uuid.UUID(aid), Signature.role == "processor")
        )
    assert documents == 1 and processor_signatures == 1


async def test_the_same_signing_form_posted_twice_at_once_signs_once(parties: tuple[Api, Api], db: Database) -> None:
    owner, legal = parties
    aid = (await to_status(owner, legal, "ready_for_signature"))["id"]
    url = await request_own_signature(owner, aid)
    form = {"typed_name": "Olive", "consent": True, "authority_confirmed": True}
    responses = await asyncio.gather(*(owner.client.post(f"/sign/{token_of(url)}", json=form) for _ in range(2)))
    assert sorted(r.status_code for r in responses) == [200, 410]
    async with db.transaction(Scope.system(), write=False) as session:
        count = await session.scalar(
            select(func.count()).select_from(Signature).where(Signature.agreement_id == uuid.UUID(aid))
        )
    assert count == 1


async def test_a_crash_between_seal_and_commit_leaves_it_signed_and_a_retry_completes(
    parties: tuple[Api, Api],
    db: Database,
    client,
) -> None:
    owner, legal = parties
    aid = uuid.UUID((await to_status(owner, legal, "signed"))["id"])
    me = (await legal.get("/me")).json()
    principal = Principal(uuid.UUID(me["id"]), None, Role.LEGAL, me["email"], me["name"], uuid.uuid4())
    actor = Actor(principal.user_id, "legal", None)

    async def crash() -> None:
        raise RuntimeError("power cut between sealing and commit")

    with pytest.raises(RuntimeError, match="power cut"):
        await execution.countersign(
            db, client.app.state.renderer, client.app.state.seal, actor, principal, aid, before_commit=crash
        )
    after_crash = (await owner.get(f"/agreements/{aid}")).json()
    assert after_crash["status"] == "signed" and after_crash["document_sha256"] is None
    async with db.transaction(Scope.system(), write=False) as session:
        assert (
            await session.scalar(
                select(func.count()).select_from(AgreementDocument).where(AgreementDocument.agreement_id == aid)
            )
            == 0
        )
        assert (
            await session.scalar(
                select(func.count())
                .select_from(Signature)
                .where(Signature.agreement_id == aid, Signature.role == "processor")
            )
            == 0
        )
    retried = await legal.post(f"/agreements/{aid}/countersign")
    assert retried.status_code == 200 and retried.json()["status"] == "executed"


async def test_a_changed_byte_in_the_stored_pdf_is_refused_and_reported_tampered(
    parties: tuple[Api, Api], owner_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    owner, legal = parties
    executed = await to_status(owner, legal, "executed")
    aid = executed["id"]
    original = (await owner.get(f"/agreements/{aid}/document")).content
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0x01
    async with owner_engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))
            await conn.execute(text("ALTER TABLE agreement_documents DISABLE TRIGGER agreement_documents_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER agreement_documents_no_update"))
        await conn.execute(
            text("UPDATE agreement_documents SET content = :c WHERE agreement_id = :a"),
            {"c": bytes(flipped), "a": uuid.UUID(aid) if postgres else uuid.UUID(aid).hex},
        )
        if postgres:
            await conn.execute(text("ALTER TABLE agreement_documents ENABLE TRIGGER agreement_documents_append_only"))
    with caplog.at_level(logging.CRITICAL):
        refused = await owner.get(f"/agreements/{aid}/document")
    assert refused.status_code == 500 and refused.content != bytes(flipped)
    assert "ALARM" in caplog.text and aid in caplog.text
    verdict = await owner.client.post(
        "/api/v1/documents/verify",
        content=bytes(flipped),
        headers={"Authorization": f"Bearer {owner.key}", "Content-Type": "application/pdf"},
    )
    assert verdict.json()["status"] == "tampered"


async def test_executed_documents_and_signatures_cannot_be_rewritten(
    parties: tuple[Api, Api], db: Database, owner_engine: AsyncEngine
) -> None:
    owner, legal = parties
    aid = uuid.UUID((await to_status(owner, legal, "executed"))["id"])
    for statement in (
        "UPDATE agreement_documents SET sha256 = 'x'",
        "DELETE FROM signatures",
        "UPDATE agreements SET template_sha256 = 'x'",
    ):
        with pytest.raises(Exception, match=r"append-only|immutable|permission denied"):
            async with db.transaction(Scope.tenant(uuid.UUID(owner.tenant_id))) as session:
                await session.execute(text(statement + (" WHERE 1=1")))
    executed = (await owner.get(f"/agreements/{aid}")).json()
    assert executed["status"] == "executed"

    # What was signed is write-once even for the database owner: set from NULL (as execution does), never changed
    # or cleared after.
    agreements, requests = Agreement.__table__, SignatureRequest.__table__  # type: ignore[attr-defined]

    async def as_owner(statement: Any) -> None:
        async with owner_engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # row-level security is forced on the owner too
                await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))
            await conn.execute(statement)

    draft = uuid.UUID((await new_agreement(owner))["id"])
    await as_owner(update(agreements).where(agreements.c.id == draft).values(document_sha256="a" * 64))
    for statement in (
        update(agreements).where(agreements.c.id == draft).values(document_sha256="b" * 64),
        update(agreements).where(agreements.c.id == aid).values(document_sha256="b" * 64),
        update(agreements).where(agreements.c.id == aid).values(document_sha256=None),
        update(agreements).where(agreements.c.id == aid).values(effective_date=date(2030, 1, 1)),
        update(requests).where(requests.c.agreement_id == aid).values(document_sha256="b" * 64),
    ):
        with pytest.raises(Exception, match="write-once"):
            await as_owner(statement)
    await as_owner(update(agreements).where(agreements.c.id == aid).values(review_comment="other columns change"))
    assert (await owner.get(f"/agreements/{aid}")).json()["document_sha256"] == executed["document_sha256"]
    assert (await owner.get(f"/agreements/{draft}")).json()["document_sha256"] == "a" * 64


def test_dpa_verify_checks_a_file_offline(tmp_path) -> None:
    env = {**os.environ, "DPA_VAR_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    pdf = tmp_path / "random.pdf"
    pdf.write_bytes(b"%PDF-1.7\n%not really\n")
    result = subprocess.run(
        [sys.executable, "-m", "dpa_service", "verify", str(pdf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert json.loads(result.stdout)["status"] == "unknown"
