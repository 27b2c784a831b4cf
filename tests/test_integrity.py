"""`dpa integrity check`'s rules: a service as it was left passes; evidence changed behind its back (by the database
owner, past the append-only triggers) fails, naming what was changed."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service import integrity
from dpa_service.core.db import Database
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import document_pool
from dpa_service.notifications.models import WebhookEndpointCreate
from dpa_service.notifications.services import create_endpoint
from tests.helpers.api import Api
from tests.helpers.evidence import as_the_owner, executed_service, flip_a_byte


# SQLite only for this one: on PostgreSQL the same checks run through `dpa integrity check` on a restored dump,
# with the same tampering (tests/test_backup_restore.py), and each run builds an executed DPA (seconds of rendering).
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_clean_service_passes_and_a_changed_document_is_named(
    backend: str, admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
) -> None:
    built = await executed_service(admin, db, settings)

    clean = await integrity.check(db, settings, pool=document_pool())
    assert clean.ok, clean.summary()
    assert clean.checked["agreement_documents"] == 1 and clean.checked["deletion_certificates"] == 1
    assert clean.checked["webhook_secrets"] == 1
    assert clean.checked["audit_chains"] >= 2 and clean.checked["audit_events"] > 5

    await flip_a_byte(owner_engine, "agreement_documents", "agreement_id", built["agreement"])
    await flip_a_byte(owner_engine, "deletion_certificates", "id", built["certificate"])
    tampered = await integrity.check(db, settings, pool=document_pool())
    assert not tampered.ok
    named = {(p.kind, p.id, p.problem.split(":")[0]) for p in tampered.problems}
    assert ("agreement_document", built["agreement"], "the stored bytes do not match their SHA-256") in named
    assert ("agreement_document", built["agreement"], "seal invalid") in named
    assert ("deletion_certificate", built["certificate"], "the stored bytes do not match their SHA-256") in named
    assert tampered.summary()["problems"] == tampered.problem_count == len(named)


async def test_an_audit_event_rewritten_and_a_foreign_service_secret_are_named(
    admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
) -> None:
    owner = await admin.new_tenant()
    principal = Principal(uuid.UUID(owner.user_id), uuid.UUID(owner.tenant_id), Role.OWNER, "o@x.example", "O", None)
    endpoint = await create_endpoint(
        db, Actor.of(principal), principal, WebhookEndpointCreate(url="https://hooks.example/dpa", events=["*"]),
        load_app_secret(settings),
    )  # fmt: skip
    async with owner_engine.begin() as conn:
        await as_the_owner(conn, "audit_events")
        await conn.execute(
            text("UPDATE audit_events SET action = 'tenant.renamed' WHERE chain = :chain AND seq = 1"),
            {"chain": owner.tenant_id},
        )
    # Restored with another installation's key directory: the webhook secrets were sealed under a different secret.
    elsewhere = settings.model_copy(update={"secret_key": SecretStr("another-installations-secret-0123456789abc")})

    report = await integrity.check(db, elsewhere, pool=document_pool())
    problems = {(p.kind, p.id): p.problem for p in report.problems}
    assert problems[("webhook_endpoint", str(endpoint.id))] == "its secret does not open under the service secret"
    assert problems[("audit_chain", owner.tenant_id)].startswith("broken at seq 1: the event's content")
    assert len(problems) == report.problem_count == 2
