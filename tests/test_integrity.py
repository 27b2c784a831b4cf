"""`dpa integrity check`'s rules, on both databases: a service as it was left passes; a document changed behind its
back (by the database owner, past the append-only trigger) fails, naming what was changed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service import integrity
from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import Settings
from dpa_service.documents.renderer import document_pool
from dpa_service.notifications.models import WebhookEndpointCreate
from dpa_service.notifications.services import create_endpoint
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api


@pytest.fixture(params=["sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """SQLite here: on PostgreSQL the same checks run through `dpa integrity check` on a restored dump, with the
    same tampering (tests/test_backup_restore.py), and each run builds an executed DPA (seconds of rendering)."""
    return str(request.param)


async def executed_service(admin: Api, db: Database, settings: Settings) -> dict[str, str]:
    """One executed DPA, one deletion certificate and one webhook endpoint, built as users would."""
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    agreement = await to_status(owner, legal, "executed")
    ends_on = utcnow().date() - timedelta(days=3)
    ended = await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()})
    assert ended.status_code == 201, ended.text
    issued = await legal.post(
        "/tenant/deletion-certificate",
        {"tenant_id": owner.tenant_id, "deleted_on": ends_on.isoformat(), "systems": ["chat"], "statement": "Erased."},
    )
    assert issued.status_code == 201, issued.text
    principal = Principal(uuid.UUID(owner.user_id), uuid.UUID(owner.tenant_id), Role.OWNER, "o@x.example", "O", None)
    await create_endpoint(
        db,
        Actor.of(principal),
        principal,
        WebhookEndpointCreate(url="https://hooks.example/dpa", events=["*"]),
        load_app_secret(settings),
    )
    return {"agreement": agreement["id"], "certificate": issued.json()["id"], "tenant": owner.tenant_id}


async def flip_a_byte(owner_engine: AsyncEngine, table: str, key: str, ident: str) -> None:
    """What the database owner can do: switch the table's triggers off and change a stored document."""
    async with owner_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))  # RLS binds the owner too
        else:
            triggers = await conn.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"), {"t": table}
            )
            for (name,) in triggers.all():
                await conn.execute(text(f'DROP TRIGGER "{name}"'))
        ident_value = ident if conn.dialect.name == "postgresql" else uuid.UUID(ident).hex
        content = (
            await conn.execute(text(f"SELECT content FROM {table} WHERE {key} = :id"), {"id": ident_value})
        ).scalar_one()
        changed = bytearray(content)
        changed[len(changed) // 2] ^= 0x01
        updated = await conn.execute(
            text(f"UPDATE {table} SET content = :c WHERE {key} = :id"), {"c": bytes(changed), "id": ident_value}
        )
        assert updated.rowcount == 1


async def test_a_clean_service_passes_and_a_changed_document_is_named(
    admin: Api, db: Database, settings: Settings, owner_engine: AsyncEngine
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
