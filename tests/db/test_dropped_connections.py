"""A database restart drops every pooled connection: the next transaction and the next single read (the
authentication lookup) still succeed, on a fresh connection, instead of failing the request that meets the dead one.
(Pooled connections are not pinged before use: a dead one is found by the first statement and retried once.)"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from dpa_service.core.db import Database, Scope
from tests.helpers.api import Api

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


async def _drop_the_pool(owner_engine: AsyncEngine) -> int:
    async with owner_engine.connect() as conn:
        dropped = await conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        return int(dropped.scalar_one())


async def _tenant_whose_pool_was_dropped(admin: Api, db: Database, owner_engine: AsyncEngine) -> uuid.UUID:
    """A tenant, with both kinds of pooled connection to it (a transaction's, a single read's) dropped."""
    tenant = uuid.UUID((await admin.new_tenant()).tenant_id or "")
    scope = Scope.tenant(tenant)
    async with db.transaction(scope, write=False) as session, db.read_connection(scope) as conn:
        await session.execute(text("SELECT 1"))
        await conn.execute(text("SELECT 1"))
    assert await _drop_the_pool(owner_engine) >= 2
    return tenant


async def test_a_transaction_survives_its_connection_being_dropped(
    admin: Api, db: Database, owner_engine: AsyncEngine
) -> None:
    tenant = await _tenant_whose_pool_was_dropped(admin, db, owner_engine)
    scope = Scope.tenant(tenant)
    # A write transaction is the first to meet a dead connection.
    async with db.transaction(scope) as session:
        await session.execute(text("UPDATE tenants SET dpo_name = 'Dana' WHERE id = :id"), {"id": tenant})
    async with db.read_connection(scope) as conn:
        dpo = (await conn.execute(text("SELECT dpo_name FROM tenants WHERE id = :id"), {"id": tenant})).scalar()
    assert dpo == "Dana"


async def test_a_single_read_survives_its_connection_being_dropped(
    admin: Api, db: Database, owner_engine: AsyncEngine
) -> None:
    tenant = await _tenant_whose_pool_was_dropped(admin, db, owner_engine)
    scope = Scope.tenant(tenant)
    # The authentication lookup's path is the first to meet a dead connection.
    async with db.read_connection(scope) as conn:
        assert (await conn.execute(text("SELECT count(*) FROM tenants"))).scalar_one() == 1
    async with db.transaction(scope) as session:
        await session.execute(text("UPDATE tenants SET dpo_name = 'Dana' WHERE id = :id"), {"id": tenant})
    async with db.transaction(scope, write=False) as session:
        dpo = (await session.execute(text("SELECT dpo_name FROM tenants WHERE id = :id"), {"id": tenant})).scalar()
    assert dpo == "Dana"


async def test_a_failure_after_the_first_statement_is_not_retried(db: Database, owner_engine: AsyncEngine) -> None:
    """Only the scope's own statement is retried: once the block has run anything, a dropped connection fails it
    (its work may be half done on the server's side, so running it again is not the database's call)."""
    with pytest.raises(DBAPIError):  # asyncpg words it by where it was cut off: terminated, closed, mid-operation
        async with db.transaction(Scope.system(), write=False) as session:
            await session.execute(text("SELECT 1"))
            await _drop_the_pool(owner_engine)
            await session.execute(text("SELECT 1"))
    async with db.transaction(Scope.system(), write=False) as session:
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
