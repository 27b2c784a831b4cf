"""Migrations are the only way the schema is made: from empty to head on both databases, matching the models."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from dpa_service import migrate
from dpa_service.core.db import make_engine
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.models import TENANT_OWNED_TABLES, metadata


async def _diff_and_tables(url: str) -> tuple[list, set[str]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:

            def inspect_sync(sync_conn):
                context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                return compare_metadata(context, metadata), set(inspect(sync_conn).get_table_names())

            return await conn.run_sync(inspect_sync)
    finally:
        await engine.dispose()


def _upgrade(url: str, var_dir: Path) -> None:
    migrate.upgrade(Settings(var_dir=var_dir, database=DatabaseSettings(url=url)))


def test_sqlite_upgrade_from_empty_matches_the_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    _upgrade(url, tmp_path)
    diff, tables = asyncio.run(_diff_and_tables(url))
    assert diff == []
    assert set(TENANT_OWNED_TABLES) <= tables and "alembic_version" in tables
    _upgrade(url, tmp_path)  # a second upgrade is a no-op


@pytest.mark.skipif(not os.environ.get("DPA_TEST_POSTGRES_URL"), reason="needs DPA_TEST_POSTGRES_URL (CI sets it)")
def test_postgres_upgrade_from_empty_matches_the_models(tmp_path: Path) -> None:
    base = make_url(os.environ["DPA_TEST_POSTGRES_URL"])
    name = f"dpa_migrations_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        engine = make_engine(base.render_as_string(hide_password=False), pool_size=1)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        url = base.set(database=name).render_as_string(hide_password=False)
        _upgrade(url, tmp_path)
        diff, tables = asyncio.run(_diff_and_tables(url))
        assert diff == []
        assert set(TENANT_OWNED_TABLES) <= tables
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
