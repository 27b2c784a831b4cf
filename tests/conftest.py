"""Shared fixtures: every database test runs on SQLite and, when DPA_TEST_POSTGRES_URL is set, on PostgreSQL.

Every database test starts from a freshly migrated, empty database of its own, on both backends:

* SQLite: a database migrated once per pytest process (each xdist worker has its own tmp_path_factory), copied
  into a fresh file for each test.
* PostgreSQL: a template database migrated once per pytest process as the owner login, and a database copied
  from it for each test (CREATE DATABASE ... TEMPLATE), dropped after the test. The app serves through the
  non-owner role (SET ROLE), so row-level security really applies.

PostgreSQL databases are named `dpa_tpl_<worker>_<tag>` and `dpa_t_<worker>_<tag>_<n>`, where the tag is random
per process, so xdist workers and concurrent runs never collide. Each process holds an advisory lock on its tag
for as long as it runs; databases whose tag nobody holds any more (a killed run) are dropped at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import secrets
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from litestar import Litestar
from sqlalchemy.engine import URL, make_url

from dpa_service import migrate
from dpa_service.app import create_app
from dpa_service.core.db import Database, make_engine
from dpa_service.core.secrets import load_app_secret
from dpa_service.core.settings import DatabaseSettings, Settings
from dpa_service.http.rate_limits import rate_limit_stores
from dpa_service.web.sessions import session_stores
from tests.helpers.api import Api, bootstrap_admin

pytest_plugins = ["tests.helpers.receiver"]

POSTGRES_URL = os.environ.get("DPA_TEST_POSTGRES_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("DPA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BACKENDS = ["sqlite", *(["postgres"] if POSTGRES_URL else [])]


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not POSTGRES_URL:
        raise pytest.UsageError("CI must run the PostgreSQL tests: set DPA_TEST_POSTGRES_URL (see .ci/run).")
    config.addinivalue_line(
        "markers",
        "html_face: a test of a page's HTML face over services whose database behaviour (PostgreSQL row-level "
        "security included) the API tests check on both databases; it runs on SQLite only",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Page tests render the same service calls the API tests make on both databases; running each of them a
    second time on PostgreSQL added ~2 minutes to CI (past its 10 on 2 cores) and no database coverage. The
    sign-in and session tests, which own tables and lookups of their own, stay on both."""
    kept = [
        item
        for item in items
        if not (
            item.get_closest_marker("html_face")
            and getattr(getattr(item, "callspec", None), "params", {}).get("backend") == "postgres"
        )
    ]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def settings_for(url: str, var_dir: Path) -> Settings:
    # Tests run the outbox worker themselves (notifications.worker.run_once), so rounds are deterministic.
    return Settings(var_dir=var_dir, database=DatabaseSettings(url=url), run_worker=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("template")  # per xdist worker: each has its own base temp dir
    path = directory / "template.db"
    migrate.upgrade(settings_for(f"sqlite+aiosqlite:///{path}", directory))
    return path


# PostgreSQL test databases: names, and the advisory lock (classid LOCK_CLASS, objid TAG) that says a run is alive.
WORKER = re.sub(r"[^a-z0-9]", "", os.environ.get("PYTEST_XDIST_WORKER", "main").lower()) or "main"
TAG = secrets.randbelow(2**31 - 1) + 1  # objid 0 is the migration lock
LOCK_CLASS = 0x44504154  # "DPAT"
OURS = re.compile(r"^dpa_(?:tpl|t)_[a-z0-9]+_([0-9a-f]{8})(?:_\d+)?$")
# WAL_LOG (PostgreSQL 15's default) writes the copied blocks to the WAL; FILE_COPY copies files but checkpoints
# twice per copy, which on a busy machine made it about twice as slow (median ~0.5 s vs ~0.23 s for an 8.6 MB
# template, whole suite ~25 s longer).
STRATEGY = os.environ.get("DPA_TEST_PG_STRATEGY", "WAL_LOG")


class PostgresDatabases:
    """One process's template database, and the fresh per-test databases copied from it.

    Copying takes a few hundred milliseconds on a busy machine (mostly waiting for the disk), so the next test's
    database is copied while the current test runs, and a finished test's database is dropped in the background.
    """

    def __init__(self, admin: asyncpg.Connection, maker: asyncpg.Connection, base: URL, template: str) -> None:
        self.admin, self.maker, self.base, self.template = admin, maker, base, template
        self._numbers = itertools.count(1)
        self._spare: asyncio.Future[str] | None = None
        self._admin_lock = asyncio.Lock()
        self._drops: set[asyncio.Future[None]] = set()
        self.copied: list[float] = []  # seconds each CREATE DATABASE took
        self.waited: list[float] = []  # seconds each test waited for its database

    def url(self, database: str) -> str:
        return self.base.set(database=database).render_as_string(hide_password=False)

    async def _copy(self) -> str:
        name = f"dpa_t_{WORKER}_{TAG:08x}_{next(self._numbers)}"
        started = time.perf_counter()
        await self.maker.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}" STRATEGY {STRATEGY}')
        self.copied.append(time.perf_counter() - started)
        return name

    async def take(self) -> str:
        """A fresh database for one test (its name); the next one starts copying right away."""
        started = time.perf_counter()
        name = await (self._spare or asyncio.ensure_future(self._copy()))
        self._spare = asyncio.ensure_future(self._copy())
        self.waited.append(time.perf_counter() - started)
        return name

    def drop_later(self, name: str) -> None:
        task = asyncio.ensure_future(self.drop(name))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def drop(self, name: str) -> None:
        async with self._admin_lock:
            await self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def close(self) -> None:
        """Drop the spare and wait for the background drops (the template is the caller's)."""
        if self._spare is not None:
            with contextlib.suppress(Exception):
                await self.drop(await self._spare)
        await asyncio.gather(*self._drops, return_exceptions=True)


def _append(path: Path, line: str) -> None:
    with path.open("a") as out:
        out.write(line)


def _asyncpg_dsn(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def _drop_stale_databases(conn: asyncpg.Connection) -> None:
    """Drop the test databases of runs that are gone (nobody holds their tag's lock any more)."""
    held = await conn.fetch(
        "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND granted",
        LOCK_CLASS,
    )
    alive = {int(row["objid"]) for row in held}
    for (name,) in await conn.fetch("SELECT datname FROM pg_database WHERE datname ~ '^dpa_(tpl|t)_'"):
        match = OURS.match(name)
        if match and int(match.group(1), 16) not in alive:
            with contextlib.suppress(asyncpg.PostgresError):  # another worker dropped it first
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
async def postgres_ready(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PostgresDatabases]:
    """This process's migrated template database (migrated as the owner login, like production)."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need DPA_TEST_POSTGRES_URL (CI sets it; see .ci/run)")
    base = make_url(POSTGRES_URL)
    admin = await asyncpg.connect(_asyncpg_dsn(base), timeout=30)
    template = f"dpa_tpl_{WORKER}_{TAG:08x}"
    databases = None
    try:
        await admin.execute("SELECT pg_advisory_lock($1, $2)", LOCK_CLASS, TAG)  # held until this process ends
        await _drop_stale_databases(admin)
        await admin.execute(f'CREATE DATABASE "{template}"')
        # The application role and its membership are cluster-wide: workers migrate one at a time.
        await admin.execute("SELECT pg_advisory_lock($1, 0)", LOCK_CLASS)
        try:
            var_dir = tmp_path_factory.mktemp("pg-template")
            url = base.set(database=template).render_as_string(hide_password=False)
            await asyncio.to_thread(migrate.upgrade, settings_for(url, var_dir))
        finally:
            await admin.execute("SELECT pg_advisory_unlock($1, 0)", LOCK_CLASS)
        # Nothing may be connected to a template while it is copied: refuse connections (autovacuum's too).
        await admin.execute(f'ALTER DATABASE "{template}" ALLOW_CONNECTIONS false')
        databases = PostgresDatabases(admin, await asyncpg.connect(_asyncpg_dsn(base), timeout=30), base, template)
        yield databases
        if databases.copied and (report := os.environ.get("DPA_TEST_PG_TIMINGS")):  # a file to append to
            line = " ".join(f"{t:.4f}" for t in databases.copied)
            waited = " ".join(f"{t:.4f}" for t in databases.waited)
            await asyncio.to_thread(_append, Path(report), f"{WORKER} {STRATEGY} copied {line}\n")
            await asyncio.to_thread(_append, Path(report), f"{WORKER} {STRATEGY} waited {waited}\n")
    finally:
        try:
            if databases is not None:
                await databases.close()
                await databases.maker.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def postgres_url(postgres_ready: PostgresDatabases) -> AsyncIterator[str]:
    """A freshly migrated, empty PostgreSQL database for this test alone (the owner login's URL)."""
    name = await postgres_ready.take()
    try:
        yield postgres_ready.url(name)
    finally:
        postgres_ready.drop_later(name)  # WITH (FORCE): whatever the test left connected goes too


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if backend == "postgres":
        return settings_for(request.getfixturevalue("postgres_url"), tmp_path)
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


_APPS: dict[tuple[Any, ...], Litestar] = {}


def app_for(settings: Settings) -> Litestar:
    """An app for this test's settings. Building one registers some 150 handlers (~0.4 s of CPU), so each xdist
    worker builds one per shape of the settings that wiring reads (environment, rate limit, Redis) and hands it to
    each test with that test's own state: settings (database, var dir), service secret, and fresh stores, so no
    session or rate-limit count leaks from one test to the next. Tests that need wiring of their own call
    create_app themselves."""
    shape = (settings.environment, settings.rate_limit_per_minute, settings.redis_url, settings.public_base_url)
    app = _APPS.get(shape)
    if app is None or settings.redis_url:
        app = _APPS[shape] = create_app(settings.model_copy())
        return app
    app.state.settings = settings.model_copy()
    app.state.secret = load_app_secret(settings)
    for name, store in {**rate_limit_stores(None), **session_stores(settings)}.items():
        app.stores.register(name, store, allow_override=True)
    return app


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app in the test's own event loop, so concurrent requests really overlap.

    (Litestar's AsyncTestClient runs the app behind a blocking portal, which serializes requests.)
    """
    app = app_for(settings)
    async with running(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


@pytest.fixture
async def admin(client: httpx.AsyncClient, db: Database) -> Api:
    """A platform admin (made through the same service `dpa bootstrap` uses)."""
    return await bootstrap_admin(client, db)


@pytest.fixture
async def redis_url() -> str:
    """Redis for the tests that need it: skipped with a reason when absent, a failure in CI."""
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:
        if IN_CI:
            raise AssertionError(f"CI must run the Redis tests, but {REDIS_URL} is not reachable") from exc
        pytest.skip(f"Redis is not reachable at {REDIS_URL} (set DPA_TEST_REDIS_URL); CI runs this test")
    finally:
        await client.aclose()
    return REDIS_URL
