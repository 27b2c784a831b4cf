"""Evidence a service keeps, built as users would, and the database owner changing it behind the service's back
(for the integrity check and backup tests)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from dpa_service.core.clock import utcnow
from dpa_service.core.db import Database
from dpa_service.core.identity import Actor, Principal, Role
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import Settings
from dpa_service.notifications.models import WebhookEndpointCreate
from dpa_service.notifications.services import create_endpoint
from tests.helpers.agreements import approve_standard_dpa, to_status
from tests.helpers.api import Api


async def executed_service(admin: Api, db: Database, settings: Settings) -> dict[str, str]:
    """One executed DPA, one deletion certificate and one webhook endpoint, built as users would."""
    await approve_standard_dpa(db)
    owner, legal = await admin.new_tenant(), await admin.new_staff("legal")
    agreement = await to_status(owner, legal, "executed")
    ends_on = utcnow().date() - timedelta(days=33)
    ended = await legal.post("/tenant/termination", {"tenant_id": owner.tenant_id, "ends_on": ends_on.isoformat()})
    assert ended.status_code == 201, ended.text
    deleted_on = ends_on + timedelta(days=30)  # after the Subscriber's export window (clause 10.2)
    issued = await legal.post(
        "/tenant/deletion-certificate",
        {
            "tenant_id": owner.tenant_id,
            "deleted_on": deleted_on.isoformat(),
            "systems": ["chat"],
            "statement": "Erased.",
        },
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


async def as_the_owner(conn: AsyncConnection, table: str) -> None:
    """What the database owner can do in its own transaction: switch `table`'s triggers off (the append-only ones
    included) and read past row-level security, which binds the owner too."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))
        return
    triggers = await conn.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = :t"), {"t": table}
    )
    for (name,) in triggers.all():
        await conn.execute(text(f'DROP TRIGGER "{name}"'))


def stored_id(conn: AsyncConnection, ident: str) -> str:
    """A UUID as the backend stores it (SQLite: 32 hex digits)."""
    return ident if conn.dialect.name == "postgresql" else uuid.UUID(ident).hex


async def flip_a_byte(owner_engine: AsyncEngine, table: str, key: str, ident: str) -> None:
    """The owner changes one byte of a stored document, past its append-only trigger."""
    async with owner_engine.begin() as conn:
        await as_the_owner(conn, table)
        where = {"id": stored_id(conn, ident)}
        content = (await conn.execute(text(f"SELECT content FROM {table} WHERE {key} = :id"), where)).scalar_one()
        changed = bytearray(content)
        changed[len(changed) // 2] ^= 0x01
        updated = await conn.execute(
            text(f"UPDATE {table} SET content = :c WHERE {key} = :id"), {"c": bytes(changed), **where}
        )
        assert updated.rowcount == 1
