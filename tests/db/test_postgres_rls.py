"""Row-level security on PostgreSQL: the database itself keeps tenants apart, even from unfiltered SQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from dpa_service.core.db import Database, Scope
from dpa_service.models import TENANT_OWNED_TABLES
from tests.helpers.api import Api

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


async def test_unfiltered_select_sees_only_the_current_tenant(admin: Api, db: Database) -> None:
    tenant_a = await admin.new_tenant()
    tenant_b = await admin.new_tenant()
    await tenant_b.new_user("member")
    async with db.transaction(Scope.tenant(uuid.UUID(tenant_a.tenant_id))) as session:
        tenants = (await session.execute(text("SELECT id FROM tenants"))).scalars().all()
        users = (await session.execute(text("SELECT DISTINCT tenant_id FROM users"))).scalars().all()
        events = (await session.execute(text("SELECT DISTINCT chain FROM audit_events"))).scalars().all()
    assert [str(t) for t in tenants] == [tenant_a.tenant_id]
    assert [str(t) for t in users] == [tenant_a.tenant_id]
    assert events == [tenant_a.tenant_id]


async def test_no_tenant_set_means_no_rows(admin: Api, db: Database) -> None:
    await admin.new_tenant()
    async with db.engine.connect() as conn:
        for table in TENANT_OWNED_TABLES:
            assert (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one() == 0, table
    async with db.transaction(Scope()) as session:
        assert (await session.execute(text("SELECT count(*) FROM users"))).scalar_one() == 0


async def test_a_tenant_cannot_write_rows_for_another_tenant(admin: Api, db: Database) -> None:
    tenant_a = await admin.new_tenant()
    tenant_b = await admin.new_tenant()
    with pytest.raises(Exception, match="row-level security"):
        async with db.transaction(Scope.tenant(uuid.UUID(tenant_a.tenant_id))) as session:
            await session.execute(
                text(
                    "INSERT INTO users (id, tenant_id, email, name, role, created_at) "
                    "VALUES (:id, :tenant, 'x@x.example', 'X', 'owner', now())"
                ),
                {"id": uuid.uuid4(), "tenant": uuid.UUID(tenant_b.tenant_id)},
            )
    async with db.transaction(Scope.tenant(uuid.UUID(tenant_a.tenant_id))) as session:
        result = await session.execute(
            text("UPDATE tenants SET name = 'hijacked' WHERE id = :id"), {"id": uuid.UUID(tenant_b.tenant_id)}
        )
        assert result.rowcount == 0


async def test_every_tenant_table_forces_rls_and_the_app_role_cannot_bypass_it(db: Database) -> None:
    async with db.engine.connect() as conn:
        role = (await conn.execute(text("SELECT current_user"))).scalar_one()
        flags = (
            await conn.execute(text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"))
        ).one()
        tables = (
            await conn.execute(
                text(
                    """
                    SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner)
                    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE n.nspname = 'public' AND c.relkind = 'r' AND (
                        EXISTS (SELECT 1 FROM pg_attribute a
                                WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
                        OR c.relname = 'tenants')
                    """
                )
            )
        ).all()
        policies = set((await conn.execute(text("SELECT tablename FROM pg_policies"))).scalars())
    assert flags == (False, False), f"the app role {role} must be neither superuser nor BYPASSRLS"
    assert {t[0] for t in tables} >= set(TENANT_OWNED_TABLES)
    for name, enabled, forced, owner in tables:
        assert enabled and forced, f"{name} must ENABLE and FORCE row level security"
        assert owner != role, f"the app role must not own {name}"
        assert name in policies, f"{name} has no policy"
