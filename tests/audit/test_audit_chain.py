"""The audit log: one event per identity change, hash-chained per tenant, append-only, tamper-evident."""

from __future__ import annotations

import itertools
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service.audit.hashing import event_hash
from dpa_service.core.db import Database, Scope
from tests.helpers.api import Api


async def chain(api: Api, **params: str) -> list[dict]:
    return await api.all("/audit-events", **params)


async def test_every_identity_change_writes_exactly_one_event(admin: Api) -> None:
    platform_before = len(await chain(admin))
    owner = await admin.new_tenant()
    assert [e["action"] for e in await chain(owner)] == ["tenant.created"]

    member = await owner.new_user("member")
    key = (await owner.post("/api-keys", {"name": "ci"})).json()
    await owner.delete(f"/api-keys/{key['id']}")
    await owner.patch("/tenant", {"dpo_name": "Dana"})
    await owner.patch("/tenant", {"dpo_name": "Dana"})  # no change, no event
    events = await chain(owner)
    assert [e["action"] for e in events] == [
        "tenant.created",
        "user.created",
        "api_key.created",
        "api_key.revoked",
        "tenant.profile_updated",
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert events[1]["target_id"] == member.user_id and events[1]["actor_id"] == owner.user_id
    assert events[4]["data"]["changes"]["dpo_name"] == {"from": None, "to": "Dana"}
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))
    assert events[0]["actor_id"] == admin.user_id and events[0]["actor_role"] == "platform_admin"

    await admin.new_staff("legal")
    platform = await chain(admin)
    assert len(platform) == platform_before + 1 and platform[-1]["action"] == "staff.created"


async def test_events_record_who_when_and_from_where(admin: Api) -> None:
    owner = await admin.new_tenant()
    event = (await chain(owner))[0]
    assert event["at"].endswith("Z") and event["ip"] and event["user_agent"]
    assert len(event["hash"]) == 64 and event["hash"] == event["hash"].lower()


async def test_verify_reports_an_intact_chain(admin: Api) -> None:
    owner = await admin.new_tenant()
    await owner.new_user("admin")
    result = (await owner.get("/audit-events/verify")).json()
    assert result["ok"] is True and result["events"] == 2 and len(result["head"]) == 64
    staff_view = (await admin.get("/audit-events/verify", tenant_id=owner.tenant_id)).json()
    assert staff_view == result
    assert (await admin.get("/audit-events/verify")).json()["ok"] is True


async def test_who_may_read_the_audit_log(admin: Api) -> None:
    owner = await admin.new_tenant()
    other = await admin.new_tenant()
    sales = await admin.new_staff("sales")
    legal = await admin.new_staff("legal")
    assert (await sales.get("/audit-events")).status_code == 403
    assert [e["action"] for e in await chain(legal, tenant_id=owner.tenant_id or "")] == ["tenant.created"]
    # A Subscriber cannot reach another tenant's chain by asking for it.
    mine = await chain(other, tenant_id=owner.tenant_id or "")
    assert all(e["tenant_id"] == other.tenant_id for e in mine)


async def test_the_application_cannot_rewrite_history(admin: Api, db: Database) -> None:
    owner = await admin.new_tenant()
    for statement in ("UPDATE audit_events SET action = 'x'", "DELETE FROM audit_events"):
        with pytest.raises(Exception, match=r"append-only|permission denied"):
            async with db.transaction(Scope.tenant(uuid.UUID(owner.tenant_id))) as session:
                await session.execute(text(statement))
    assert len(await chain(owner)) == 1


# --- Tampering around the application, as someone with database access would -----------------------------


async def _tamper(engine: AsyncEngine, *statements: str) -> None:
    """Run statements as the owner with the append-only triggers switched off (as a superuser could)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT set_config('app.cross_tenant', 'on', true)"))
            await conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
        else:
            await conn.execute(text("DROP TRIGGER audit_events_no_update"))
            await conn.execute(text("DROP TRIGGER audit_events_no_delete"))
        for statement in statements:
            await conn.execute(text(statement))
        if conn.dialect.name == "postgresql":
            await conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only"))


async def _tenant_with_events(admin: Api, count: int) -> Api:
    owner = await admin.new_tenant()
    for _ in range(count - 1):
        await owner.post("/api-keys", {"name": "k"})
    assert len(await chain(owner)) == count
    return owner


def _where(owner: Api, seq: int) -> str:
    return f"chain = '{owner.tenant_id}' AND seq = {seq}"


async def _broken_seq(owner: Api) -> int | None:
    result = (await owner.get("/audit-events/verify")).json()
    assert result["ok"] is (result["broken_seq"] is None)
    return result["broken_seq"]


async def test_verify_names_the_edited_event(admin: Api, owner_engine: AsyncEngine) -> None:
    owner = await _tenant_with_events(admin, 4)
    await _tamper(owner_engine, f"UPDATE audit_events SET action = 'api_key.deleted' WHERE {_where(owner, 3)}")
    assert await _broken_seq(owner) == 3


async def test_verify_names_the_deleted_event(admin: Api, owner_engine: AsyncEngine) -> None:
    owner = await _tenant_with_events(admin, 4)
    await _tamper(owner_engine, f"DELETE FROM audit_events WHERE {_where(owner, 2)}")
    assert await _broken_seq(owner) == 2


async def test_verify_notices_a_removed_tail(admin: Api, owner_engine: AsyncEngine) -> None:
    owner = await _tenant_with_events(admin, 4)
    await _tamper(owner_engine, f"DELETE FROM audit_events WHERE {_where(owner, 4)}")
    assert await _broken_seq(owner) == 4


async def test_verify_names_an_inserted_event(admin: Api, owner_engine: AsyncEngine) -> None:
    owner = await _tenant_with_events(admin, 3)
    # Make room after seq 1 and slip a forged event in, re-numbering the rest.
    await _tamper(
        owner_engine,
        f"UPDATE audit_events SET seq = seq + 100 WHERE chain = '{owner.tenant_id}' AND seq > 1",
        f"UPDATE audit_events SET seq = seq - 99 WHERE chain = '{owner.tenant_id}' AND seq > 100",
        f"""INSERT INTO audit_events (id, chain, tenant_id, seq, at, action, target_type, data, prev_hash, hash)
            SELECT '{uuid.uuid4().hex if owner_engine.dialect.name == "sqlite" else uuid.uuid4()}', chain, tenant_id,
                   2, at, 'tenant.forged', 'tenant', data, hash, hash
            FROM audit_events WHERE {_where(owner, 1)}""",
    )
    assert await _broken_seq(owner) == 2


async def test_verify_names_reordered_events(admin: Api, owner_engine: AsyncEngine) -> None:
    owner = await _tenant_with_events(admin, 4)
    await _tamper(
        owner_engine,
        f"UPDATE audit_events SET seq = 99 WHERE {_where(owner, 2)}",
        f"UPDATE audit_events SET seq = 2 WHERE {_where(owner, 3)}",
        f"UPDATE audit_events SET seq = 3 WHERE {_where(owner, 99)}",
    )
    assert await _broken_seq(owner) == 2


async def test_hash_is_sha256_of_the_canonical_event_and_prev_hash(admin: Api, db: Database) -> None:
    from sqlalchemy import select

    from dpa_service.audit.models import AuditEvent

    owner = await admin.new_tenant()
    async with db.transaction(Scope.tenant(uuid.UUID(owner.tenant_id)), write=False) as session:
        query = select(AuditEvent).where(AuditEvent.tenant_id == uuid.UUID(owner.tenant_id))
        event = (await session.execute(query)).scalar_one()
    assert event_hash(event) == event.hash and event.prev_hash == "0" * 64
