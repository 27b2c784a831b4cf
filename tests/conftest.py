"""Shared fixtures: every database test runs on SQLite and, when DPA_TEST_POSTGRES_URL is set, on PostgreSQL.

SQLite: a database migrated once per session, copied into a fresh file for each test.
PostgreSQL: the schema is reset and migrated once per session as the owner login; the app then serves
through the non-owner role (SET ROLE), so row-level security really applies. Tests make their own tenants,
so they never see each other's rows through a tenant key.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import text

from dpa_service import migrate
from dpa_service.app import create_app
from dpa_service.core.db import Database, make_engine
from dpa_service.core.settings import DatabaseSettings, Settings
from tests.helpers.api import Api, bootstrap_admin

pytest_plugins = ["tests.helpers.receiver"]

POSTGRES_URL = os.environ.get("DPA_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI must run the PostgreSQL tests: set DPA_TEST_POSTGRES_URL (see .ci/run).")


def settings_for(url: str, var_dir: Path) -> Settings:
    # Tests run the outbox worker themselves (notifications.worker.run_once), so rounds are deterministic.
    return Settings(var_dir=var_dir, database=DatabaseSettings(url=url), run_worker=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template")
    path = directory / "template.db"
    migrate.upgrade(settings_for(f"sqlite+aiosqlite:///{path}", directory))
    return path


@pytest.fixture(scope="session")
def postgres_ready() -> str:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need DPA_TEST_POSTGRES_URL (CI sets it; see .ci/run)")

    async def reset() -> None:
        engine = make_engine(POSTGRES_URL)
        async with engine.begin() as conn:
            await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            await conn.execute(text("CREATE SCHEMA public"))
        await engine.dispose()

    asyncio.run(reset())
    migrate.upgrade(settings_for(POSTGRES_URL, Path("/tmp")))
    return POSTGRES_URL


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "postgres":
        return settings_for(request.getfixturevalue("postgres_ready"), tmp_path)
    template: Path = request.getfixturevalue("sqlite_template")
    path = tmp_path / "dpa.db"
    shutil.copyfile(template, path)
    return settings_for(f"sqlite+aiosqlite:///{path}", tmp_path)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture
async def owner_engine(settings: Settings):
    engine = make_engine(settings.database.url)
    yield engine
    await engine.dispose()


@asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[None]:
    """Start and stop the app's lifespan in one task of its own (it opens task groups that must close there)."""
    started, stop = asyncio.Event(), asyncio.Event()

    async def host() -> None:
        async with app.lifespan():
            started.set()
            await stop.wait()

    task = asyncio.create_task(host())
    waiter = asyncio.create_task(started.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()  # startup failed: raise its error
    try:
        yield
    finally:
        stop.set()
        await task


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in the test's own event loop, so concurrent requests really overlap.

    (Litestar's AsyncTestClient runs the app behind a blocking portal, which serializes requests.)
    """
    app = create_app(settings.model_copy())
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: Database) -> Api:
    """A platform admin (made through the same service `dpa bootstrap` uses)."""
    return await bootstrap_admin(client, db)
