"""The verified-addresses migration on an existing database: who already signed in by e-mail link counts as
verified (honestly: the used links say so), nobody else does, and two accounts sharing an address stop it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from dpa_service import migrate
from dpa_service.core.db import UTCDateTime, make_engine
from dpa_service.core.settings import DatabaseSettings, Settings

BEFORE = "57a566518524"  # the revision before the migration under test (the ledger backfill)
T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

users = sa.table(
    "users",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("name", sa.String()),
    sa.column("role", sa.String()),
    sa.column("created_at", UTCDateTime()),
)
tenants = sa.table(
    "tenants",
    sa.column("id", sa.Uuid()),
    sa.column("name", sa.String()),
    sa.column("legal_name", sa.String()),
    sa.column("country", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
links = sa.table(
    "sign_in_links",
    sa.column("id", sa.Uuid()),
    sa.column("tenant_id", sa.Uuid()),
    sa.column("user_id", sa.Uuid()),
    sa.column("email", sa.String()),
    sa.column("token_hash", sa.String()),
    sa.column("created_at", UTCDateTime()),
    sa.column("expires_at", UTCDateTime()),
    sa.column("used_at", UTCDateTime()),
)


def _upgrade(url: str, var_dir: Path, revision: str = "head") -> None:
    migrate.upgrade(Settings(var_dir=var_dir, database=DatabaseSettings(url=url)), revision)


async def _run(url: str, *statements: sa.Executable) -> list[sa.Row]:
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":  # the owner too is under FORCE ROW LEVEL SECURITY
                await conn.execute(sa.text("SELECT set_config('app.cross_tenant', 'on', true)"))
            rows: list[sa.Row] = []
            for statement in statements:
                result = await conn.execute(statement)
                rows = list(result.all()) if result.returns_rows else []
            return rows
    finally:
        await engine.dispose()


@contextmanager
def _database(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'existing.db'}"
        return
    base = make_url(os.environ["DPA_TEST_POSTGRES_URL"])
    name = f"dpa_verify_mig_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        engine = make_engine(base.render_as_string(hide_password=False), pool_size=1)
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text(statement))
        await engine.dispose()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


BACKENDS = ["sqlite", *(["postgres"] if os.environ.get("DPA_TEST_POSTGRES_URL") else [])]


@pytest.mark.parametrize("backend", BACKENDS)
def test_existing_users_are_unverified_unless_they_signed_in_by_email_link(backend: str, tmp_path: Path) -> None:
    with _database(backend, tmp_path) as url:
        _upgrade(url, tmp_path, BEFORE)
        tenant, signed_in, never, shared_a, shared_b = (uuid.uuid4() for _ in range(5))

        def user(user_id: uuid.UUID, email: str, tenant_id: uuid.UUID | None) -> sa.Executable:
            return users.insert().values(id=user_id, tenant_id=tenant_id, email=email, name="U", role="owner",
                                         created_at=T0)  # fmt: skip

        def link(user_id: uuid.UUID, email: str, used: datetime | None) -> sa.Executable:
            return links.insert().values(id=uuid.uuid4(), tenant_id=None, user_id=user_id, email=email,
                                         token_hash=uuid.uuid4().hex, created_at=T0,
                                         expires_at=T0 + timedelta(minutes=15), used_at=used)  # fmt: skip

        asyncio.run(
            _run(
                url,
                tenants.insert().values(
                    id=tenant, name="T", legal_name="T Ltd", country="DE", created_at=T0, updated_at=T0
                ),
                user(signed_in, "lee@processor.example", None),
                user(never, "sam@processor.example", None),
                link(signed_in, "lee@processor.example", T0 + timedelta(minutes=3)),
                link(signed_in, "lee@processor.example", None),  # expired unused: says nothing
                link(never, "sam@processor.example", None),
                # One address in a tenant and on the staff: which account is legitimate cannot be told here.
                user(shared_a, "shared@x.example", tenant),
                user(shared_b, "shared@x.example", None),
            )
        )
        with pytest.raises(RuntimeError, match=r"shared@x\.example \(2 accounts\)"):
            _upgrade(url, tmp_path)
        asyncio.run(_run(url, users.delete().where(users.c.id == shared_b)))
        _upgrade(url, tmp_path)
        rows = asyncio.run(
            _run(url, sa.text("SELECT email, email_verified_at, email_verification FROM users ORDER BY email"))
        )
    found = {email: (verified_at, method) for email, verified_at, method in rows}
    lee_at, lee_method = found["lee@processor.example"]
    assert lee_method == "sign_in_link" and lee_at is not None
    assert str(lee_at).startswith("2026-11-20 09:33:00")  # the first sign-in by link
    assert found["sam@processor.example"] == (None, None)
    assert found["shared@x.example"] == (None, None)
